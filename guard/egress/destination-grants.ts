// An agent's destination grants: where its tool calls may send HTTP requests. Hosts go through the
// WHATWG URL parser on both sides (grant and request), so every spelling of an address
// (0x7f000001, 2130706433, 0177.0.0.1, 127.1, %31%32%37.0.0.1) compares as the one the socket
// would reach. Anything not matching a grant is refused (fail closed).
//
//   api.example.com           that host, the scheme's default port (http:80, https:443)
//   api.example.com:8443      that host, that port, http or https
//   *.example.com             any subdomain (not example.com itself), default ports
//   https://api.example.com   scheme pinned (optionally with :port)
//   127.0.0.1:8025, [::1]:8025  an exact IP; an internal one only this way, and with its port
//
// Imports contract only: the API checks grants with it at agent creation, the egress layer per hop.
import { SandgateError } from '../../contract/errors.ts';
import { canonicalIp, classifyIp } from './ip-ranges.ts';

export type Scheme = 'http' | 'https';

export const DEFAULT_PORTS: Readonly<Record<Scheme, number>> = { http: 80, https: 443 };

export interface DestinationGrant {
  /** The grant as written, quoted in decisions. */
  source: string;
  kind: 'host' | 'wildcard' | 'ip';
  /** Lower-case, no trailing dot; the parent domain for 'wildcard'; canonical IP without brackets for 'ip'. */
  host: string;
  /** Undefined: http or https. */
  scheme?: Scheme;
  /** Undefined: the default port of the request's scheme. */
  port?: number;
}

/** Where a request goes, normalised the same way as grants. */
export interface Destination {
  scheme: Scheme;
  host: string;
  port: number;
}

const FORMS = 'expected host, host:port, *.domain, [ipv6]:port or http(s)://host[:port]';
const GRANT = /^(?:(https?):\/\/)?(\*\.)?(\[[0-9a-f:.]+\]|[^\s:/?#@[\]\\]+)(?::(\d{1,5}))?\/?$/i;
const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;

function invalid(source: string, why: string): never {
  throw new SandgateError('validation_failed', `destination grant "${source}": ${why}`);
}

/** Lower-case, trailing dot dropped, IP literals canonical and unbracketed. Input: a URL's hostname. */
export function normalizeHost(hostname: string): string {
  const lower = hostname.toLowerCase();
  const host = lower.endsWith('.') ? lower.slice(0, -1) : lower;
  return canonicalIp(host) ?? host;
}

export function parseDestinationGrant(source: string): DestinationGrant {
  if (typeof source !== 'string' || source.length === 0 || source.length > 300)
    invalid(String(source), 'empty or too long');
  const m = GRANT.exec(source);
  if (!m) invalid(source, FORMS);
  const [, scheme, star, hostPart, portText] = m;
  let hostname: string;
  try {
    hostname = new URL(`http://${hostPart}/`).hostname;
  } catch {
    invalid(source, `"${hostPart}" is not a valid host name or IP address`);
  }
  const host = normalizeHost(hostname);
  const port = portText === undefined ? undefined : Number(portText);
  if (port !== undefined && (port < 1 || port > 65535)) invalid(source, 'port must be 1-65535');
  const grant: DestinationGrant = { source, kind: 'host', host };
  if (scheme) grant.scheme = scheme.toLowerCase() as Scheme;
  if (port !== undefined) grant.port = port;

  const ip = classifyIp(host);
  if (ip.family !== 0) {
    if (star) invalid(source, 'a wildcard cannot apply to an IP address');
    // A mapped address has two spellings; one canonical spelling per address keeps matching exact.
    if (ip.family === 6 && host.startsWith('::ffff:'))
      invalid(source, 'name the IPv4 address instead of its IPv4-mapped IPv6 form');
    if (ip.internal && port === undefined)
      invalid(
        source,
        `${host} is an internal address (${ip.range}): the grant must name its port, e.g. ${ip.family === 6 ? `[${host}]` : host}:8080`,
      );
    grant.kind = 'ip';
    return grant;
  }
  const labels = host.split('.');
  if (host.length > 253 || !labels.every((l) => LABEL.test(l))) invalid(source, `"${host}" is not a valid host name`);
  if (star) {
    // *.com would grant a whole top-level domain; a wildcard needs a registrable parent.
    if (labels.length < 2)
      invalid(source, 'a wildcard needs a parent domain with at least two labels, e.g. *.example.com');
    grant.kind = 'wildcard';
  }
  return grant;
}

export function parseDestinationGrants(sources: readonly string[]): DestinationGrant[] {
  return sources.map(parseDestinationGrant);
}

/** The first grant that allows this destination, or undefined. Hosts must already be normalised. */
export function matchGrant(grants: readonly DestinationGrant[], dest: Destination): DestinationGrant | undefined {
  const isIp = canonicalIp(dest.host) !== undefined;
  return grants.find((g) => {
    if (g.scheme !== undefined && g.scheme !== dest.scheme) return false;
    if ((g.port ?? DEFAULT_PORTS[dest.scheme]) !== dest.port) return false;
    if (g.kind === 'wildcard') return !isIp && dest.host.endsWith(`.${g.host}`);
    return g.host === dest.host;
  });
}
