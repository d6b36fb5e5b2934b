// The only way a tool handler reaches the network. Every hop (the first URL and each redirect) is
// checked: http(s) only, no userinfo, host:port granted, and the IP the socket connects to is
// public, or internal and named exactly by an IP grant. The IP check runs inside undici's connect
// hook on the address we resolved ourselves and then connect to, so DNS rebinding gets no second
// resolution to exploit. A fresh undici Client per hop: no pooled socket, proxy env, cookie jar or
// ambient credential is ever used. Refusals and failures are results, never exceptions.

import { lookup as dnsLookup } from 'node:dns/promises';
import { StringDecoder } from 'node:string_decoder';
import { buildConnector, Client } from 'undici';
import { type ResultError, type ResultErrorCode, resultError } from '../../../contract/errors.ts';
import {
  DEFAULT_PORTS,
  type Destination,
  type DestinationGrant,
  matchGrant,
  normalizeHost,
  parseDestinationGrants,
  type Scheme,
} from '../../../guard/egress/destination-grants.ts';
import { classifyIp } from '../../../guard/egress/ip-ranges.ts';

export interface LookupAddress {
  address: string;
  family: number;
}
/** Resolves a host name to every address it has. Injectable so tests can play hostile DNS. */
export type Lookup = (hostname: string) => Promise<LookupAddress[]>;

export interface SafeFetchOptions {
  method: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  /** Grant strings (see destination-grants.ts) or already parsed grants. */
  grants: readonly (string | DestinationGrant)[];
  maxResponseBytes: number;
  /** For the whole call: DNS, connect, every redirect hop and reading the body. */
  timeoutMs: number;
  maxRedirects?: number;
  lookup?: Lookup;
}

export interface EgressDecision {
  url: string;
  host: string;
  ip?: string;
  port: number;
  allowed: boolean;
  reason: string;
}

export type EgressErrorCode = Extract<ResultErrorCode, 'egress_refused' | 'egress_failed' | 'egress_timeout'>;

export interface SafeFetchResult {
  /** True when a final response arrived, whatever its status. */
  ok: boolean;
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  truncated: boolean;
  decisions: EgressDecision[];
  error?: { code: EgressErrorCode; message: string };
}

const defaultLookup: Lookup = (hostname) => dnsLookup(hostname, { all: true, order: 'verbatim' });

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
// Set by undici or the transport, or they would let the caller steer the request past the check
// (Host changes the TLS server name and the virtual host; proxy-* and upgrade change the protocol).
const DROPPED_HEADERS = new Set([
  'host',
  'connection',
  'keep-alive',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
  'content-length',
]);
// Credentials meant for one origin are not forwarded to another on redirect.
const ORIGIN_BOUND_HEADERS = ['authorization', 'cookie'];

/** Thrown inside the connect hook; the request then fails without any socket being opened. */
class EgressRefusal extends Error {
  readonly code = 'EGRESS_REFUSED';
}

interface Hop {
  url: URL;
  dest: Destination;
  grant: DestinationGrant;
  decision: EgressDecision;
}

function redact(url: URL): string {
  if (!url.username && !url.password) return url.href;
  const copy = new URL(url.href);
  copy.username = '***';
  copy.password = '';
  return copy.href;
}

/** Everything decidable from the URL alone. Returns the decision and, when allowed, the hop. */
function checkUrl(raw: string, grants: readonly DestinationGrant[]): { decision: EgressDecision; hop?: Hop } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return {
      decision: { url: raw.slice(0, 2048), host: '', port: 0, allowed: false, reason: 'not a valid absolute URL' },
    };
  }
  const scheme = url.protocol.slice(0, -1);
  const host = normalizeHost(url.hostname);
  const port = url.port ? Number(url.port) : (DEFAULT_PORTS[scheme as Scheme] ?? 0);
  const refuse = (reason: string) => ({ decision: { url: redact(url), host, port, allowed: false, reason } });
  if (scheme !== 'http' && scheme !== 'https')
    return refuse(`scheme "${url.protocol}" is not allowed (only http: and https:)`);
  // http://allowed.example@127.0.0.1/ goes to 127.0.0.1; credentials in URLs are refused outright.
  if (url.username || url.password) return refuse('URLs with userinfo (user:password@) are refused');
  const dest: Destination = { scheme, host, port };
  const grant = matchGrant(grants, dest);
  const ip = classifyIp(host);
  if (!grant) {
    // Say what the host really is: 0x7f000001 and 127.1 show up here as 127.0.0.1 (loopback).
    const note = ip.family === 0 ? '' : ip.internal ? ` (${ip.address} is an internal address: ${ip.range})` : '';
    return refuse(`${scheme}://${ip.family === 6 ? `[${host}]` : host}:${port} is not granted${note}`);
  }
  const decision: EgressDecision = { url: url.href, host, port, allowed: true, reason: `granted by "${grant.source}"` };
  if (ip.family !== 0) {
    decision.ip = ip.address;
    const why = addressRefusal(ip.address, grant);
    if (why) return refuse(why);
  }
  return { decision, hop: { url, dest, grant, decision } };
}

/** Why this address may not be connected to under this grant, or undefined when it may. */
function addressRefusal(address: string, grant: DestinationGrant): string | undefined {
  const ip = classifyIp(address);
  if (!ip.internal) return undefined;
  if (grant.kind === 'ip' && grant.host === ip.address) return undefined;
  return `${ip.address || address} is an internal address (${ip.range}); only a grant naming that exact IP allows it`;
}

/**
 * The addresses a hop may connect to. A host name must resolve to public addresses only: an answer
 * that mixes public and internal addresses is refused as a whole (a legitimate public name has no
 * reason to do that; a rebinding attacker does), never trimmed to its public part.
 */
async function resolveHop(hop: Hop, lookup: Lookup, signal: AbortSignal): Promise<string> {
  const ip = classifyIp(hop.dest.host);
  if (ip.family !== 0) return ip.address; // literal, already checked in checkUrl
  // A resolver that never answers must not outlive the deadline (undici waits for the connect hook).
  signal.throwIfAborted();
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  const answers = await Promise.race([lookup(hop.dest.host), aborted]).finally(() =>
    signal.removeEventListener('abort', onAbort),
  );
  if (answers.length === 0) throw new Error(`DNS lookup of ${hop.dest.host} returned no address`);
  const addresses = answers.map((a) => classifyIp(a.address).address || a.address);
  for (const address of addresses) {
    const why = addressRefusal(address, hop.grant);
    if (why) {
      hop.decision.ip = address;
      hop.decision.allowed = false;
      hop.decision.reason = `${hop.dest.host} resolved to ${addresses.join(', ')}: ${why}`;
      throw new EgressRefusal(hop.decision.reason);
    }
  }
  return addresses[0]!;
}

interface Request {
  method: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
}

interface HopResponse {
  status: number;
  headers: Record<string, string>;
  body?: string;
  truncated: boolean;
}

async function sendHop(
  hop: Hop,
  req: Request,
  opts: { lookup: Lookup; signal: AbortSignal; timeoutMs: number; maxBytes: number },
): Promise<HopResponse> {
  const base = buildConnector({ timeout: opts.timeoutMs });
  const client = new Client(hop.url.origin, {
    headersTimeout: opts.timeoutMs,
    bodyTimeout: opts.timeoutMs,
    // Ignore the host undici would dial: connect to the address we resolved and checked, once.
    connect: (connectOpts, cb) => {
      resolveHop(hop, opts.lookup, opts.signal).then(
        (address) => {
          if (opts.signal.aborted) return cb(opts.signal.reason ?? new Error('aborted'), null);
          hop.decision.ip = address;
          base({ ...connectOpts, hostname: address, port: String(hop.dest.port) }, cb);
        },
        (err: Error) => cb(err, null),
      );
    },
  });
  try {
    const res = await client.request({
      path: hop.url.pathname + hop.url.search,
      method: req.method,
      headers: req.headers,
      body: req.body ?? null,
      signal: opts.signal,
    });
    // Destroying the body early (redirect, cap reached) makes undici emit an abort error on it;
    // errors while reading still reach the for-await below through its own listener.
    res.body.on('error', () => {});
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers))
      if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    if (REDIRECTS.has(res.statusCode) && headers.location) {
      res.body.destroy();
      return { status: res.statusCode, headers, truncated: false };
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let truncated = false;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      const room = opts.maxBytes - size;
      if (chunk.length > room) {
        chunks.push(chunk.subarray(0, room));
        truncated = true;
        break; // leaving the loop destroys the stream: the rest is never read
      }
      chunks.push(chunk);
      size += chunk.length;
    }
    // A cut may split a multi-byte character: write() keeps only whole characters.
    const decoder = new StringDecoder('utf8');
    const body = decoder.write(Buffer.concat(chunks)) + (truncated ? '' : decoder.end());
    return { status: res.statusCode, headers, body, truncated };
  } finally {
    await client.destroy().catch(() => {});
  }
}

function cleanHeaders(headers: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) {
    const name = k.toLowerCase();
    if (!DROPPED_HEADERS.has(name) && !name.startsWith('proxy-')) out[name] = v;
  }
  return out;
}

function fail(decisions: EgressDecision[], error: ResultError<EgressErrorCode>): SafeFetchResult {
  return { ok: false, truncated: false, decisions, error };
}

export async function safeFetch(url: string, options: SafeFetchOptions): Promise<SafeFetchResult> {
  const decisions: EgressDecision[] = [];
  const { timeoutMs, maxResponseBytes: maxBytes, maxRedirects = 3, lookup = defaultLookup } = options;
  if (options.method !== 'GET' && options.method !== 'POST')
    return fail(
      decisions,
      resultError('egress_refused', `method ${String(options.method)} is not allowed (GET or POST)`),
    );
  if (!(timeoutMs > 0) || !(maxBytes >= 0) || !(maxRedirects >= 0))
    return fail(
      decisions,
      resultError('egress_failed', 'timeoutMs, maxResponseBytes and maxRedirects must be positive numbers'),
    );
  let grants: DestinationGrant[];
  try {
    grants = options.grants.map((g) => (typeof g === 'string' ? parseDestinationGrants([g])[0]! : g));
  } catch (err) {
    return fail(decisions, resultError('egress_refused', (err as Error).message));
  }

  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`egress timed out after ${timeoutMs} ms`)), timeoutMs);
  let req: Request = { method: options.method, headers: cleanHeaders(options.headers), body: options.body };
  let next = url;
  try {
    for (let redirects = 0; ; redirects++) {
      const { decision, hop } = checkUrl(next, grants);
      decisions.push(decision);
      if (!hop) return fail(decisions, resultError('egress_refused', decision.reason));
      let res: HopResponse;
      try {
        res = await sendHop(hop, req, { lookup, signal: controller.signal, timeoutMs, maxBytes });
      } catch (err) {
        if (err instanceof EgressRefusal || !decision.allowed)
          return fail(decisions, resultError('egress_refused', decision.reason));
        if (controller.signal.aborted) return fail(decisions, resultError('egress_timeout', timeoutMs));
        const e = err as Error & { code?: string };
        return fail(
          decisions,
          resultError('egress_failed', `${hop.dest.host}:${hop.dest.port}: ${e.code ? `${e.code} ` : ''}${e.message}`),
        );
      }
      const location = REDIRECTS.has(res.status) ? res.headers.location : undefined;
      if (location === undefined)
        return {
          ok: true,
          status: res.status,
          headers: res.headers,
          body: res.body ?? '',
          truncated: res.truncated,
          decisions,
        };

      let target: URL;
      try {
        target = new URL(location, hop.url);
      } catch {
        decisions.push({
          url: location.slice(0, 2048),
          host: '',
          port: 0,
          allowed: false,
          reason: 'redirect Location is not a valid URL',
        });
        return fail(decisions, resultError('egress_refused', 'redirect Location is not a valid URL'));
      }
      if (redirects >= maxRedirects) {
        const { decision: d } = checkUrl(target.href, grants);
        decisions.push({ ...d, allowed: false, reason: `too many redirects (at most ${maxRedirects})` });
        return fail(decisions, resultError('egress_refused', `too many redirects (at most ${maxRedirects})`));
      }
      // Browser rules: 303 (and 301/302 after POST) become a body-less GET; 307/308 repeat as sent.
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && req.method === 'POST')) {
        const { 'content-type': _ct, ...rest } = req.headers;
        req = { method: 'GET', headers: rest };
      }
      if (target.origin !== hop.url.origin) {
        const headers = { ...req.headers };
        for (const h of ORIGIN_BOUND_HEADERS) delete headers[h];
        req = { ...req, headers };
      }
      next = target.href;
    }
  } finally {
    clearTimeout(timer);
  }
}
