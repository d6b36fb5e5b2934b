// Which IP addresses a tool call may reach without naming them. Only plain global unicast is
// "public"; everything else (loopback, private, link-local incl. cloud metadata, CGNAT, multicast,
// reserved, and the IPv6 transition ranges that can smuggle an IPv4 address) is "internal" and
// reachable only through a grant that names the exact address. Unknown or unparsable → internal.
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

export interface IpClass {
  /** Canonical text: dotted IPv4, RFC 5952 IPv6 (no brackets). Empty when not an IP. */
  address: string;
  family: 4 | 6 | 0;
  /** ipaddr.js range name ('unicast', 'loopback', 'private', ...), or 'invalid'. For IPv4-mapped IPv6 the embedded IPv4's range. */
  range: string;
  internal: boolean;
}

// Global unicast IPv6 is allocated from 2000::/3 only; ipaddr.js calls everything it has no name
// for 'unicast', including e.g. the deprecated IPv4-compatible ::a.b.c.d, so check the prefix too.
const GLOBAL_V6 = ipaddr.parseCIDR('2000::/3');

export function classifyIp(text: string): IpClass {
  // net.isIP is strict (no '0x7f.1' or '2130706433'); ipaddr.parse alone would accept those forms.
  const family = isIP(text);
  if (family !== 4 && family !== 6) return { address: '', family: 0, range: 'invalid', internal: true };
  let addr = ipaddr.parse(text);
  let range: string = addr.range();
  if (addr.kind() === 'ipv6') {
    const v6 = addr as ipaddr.IPv6;
    if (v6.isIPv4MappedAddress()) {
      // ::ffff:127.0.0.1 reaches 127.0.0.1 on a dual-stack socket: judge the embedded address.
      addr = v6.toIPv4Address();
      range = addr.range();
      return { address: v6.toString(), family: 6, range, internal: range !== 'unicast' };
    }
    // ipaddr.js's catch-all 'unicast' also covers space outside 2000::/3: name it for the reason.
    if (range === 'unicast' && !v6.match(GLOBAL_V6)) range = 'nonGlobal';
    return { address: v6.toString(), family: 6, range, internal: range !== 'unicast' || v6.zoneId !== undefined };
  }
  return { address: addr.toString(), family: 4, range, internal: range !== 'unicast' };
}

export const isInternalIp = (text: string): boolean => classifyIp(text).internal;

/** Canonical form of an IP literal (brackets allowed), or undefined when it is not one. */
export function canonicalIp(text: string): string | undefined {
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  const c = classifyIp(bare);
  return c.family === 0 ? undefined : c.address;
}
