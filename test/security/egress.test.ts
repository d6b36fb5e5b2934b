// Hostile URLs, redirects and DNS answers against the egress client, with real HTTP servers on
// loopback. Server T is the "internal service" an agent must never reach: every refusal asserts
// that T saw no TCP connection at all. Server A is granted exactly (127.0.0.1:<port>).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { matchGrant, parseDestinationGrant } from '../../guard/egress/destination-grants.ts';
import { classifyIp } from '../../guard/egress/ip-ranges.ts';
import { type Lookup, type SafeFetchOptions, safeFetch } from '../../runner/tools/egress/safe-fetch.ts';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}
interface TestServer {
  port: number;
  requests: Seen[];
  connections: number;
  /** Listening on :: (dual-stack): ::1 reaches it too. */
  dualStack: boolean;
  close(): Promise<void>;
}

type Route = (req: Seen, res: http.ServerResponse) => void;

// Dual-stack when the host has IPv6, so ::1, ::ffff:127.0.0.1 and 0.0.0.0 would all reach it if
// the client let them through.
async function startServer(route: Route): Promise<TestServer> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const seen = { method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString() };
      t.requests.push(seen);
      route(seen, res);
    });
  });
  const t: TestServer = {
    port: 0,
    requests: [],
    connections: 0,
    dualStack: false,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  server.on('connection', () => t.connections++);
  const listen = (host: string) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, () => resolve());
    });
  await listen('::').catch(() => listen('127.0.0.1'));
  const address = server.address() as AddressInfo;
  t.port = address.port;
  t.dualStack = address.family === 'IPv6';
  return t;
}

let A: TestServer;
let B: TestServer;
let T: TestServer;

beforeAll(async () => {
  T = await startServer((_req, res) => res.end('internal secret'));
  B = await startServer((_req, res) => res.end('b'));
  A = await startServer((req, res) => {
    const url = new URL(req.url, 'http://a');
    if (url.pathname === '/') return res.end('hello');
    if (url.pathname === '/echo') return res.end(`${req.method} ${req.body}`);
    if (url.pathname === '/headers') return res.end(JSON.stringify(req.headers));
    if (url.pathname === '/big') return res.end('x'.repeat(1 << 20));
    if (url.pathname === '/utf8') return res.end('é'.repeat(1000));
    if (url.pathname === '/slow') return; // never answers
    if (url.pathname === '/loop') {
      res.writeHead(302, { location: '/loop' });
      return res.end();
    }
    if (url.pathname === '/redirect') {
      res.writeHead(Number(url.searchParams.get('status') ?? 302), { location: url.searchParams.get('to')! });
      return res.end();
    }
    res.writeHead(404);
    res.end();
  });
});
afterAll(async () => {
  await Promise.all([A?.close(), B?.close(), T?.close()]);
});

const base = { method: 'GET', maxResponseBytes: 64 * 1024, timeoutMs: 3000 } as const;
const fetchWith = (url: string, grants: string[], extra: Partial<SafeFetchOptions> = {}) =>
  safeFetch(url, { ...base, grants, ...extra });
const fixedLookup = (...addresses: string[]) => {
  const calls: string[] = [];
  const lookup: Lookup = async (host) => {
    calls.push(host);
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return { lookup, calls };
};

describe('refused: nothing reaches the internal server', () => {
  afterEach(() => {
    expect(T.connections).toBe(0);
    expect(T.requests).toHaveLength(0);
  });

  // Each spelling normalises to 127.0.0.1 and is judged as that address: not granted.
  it.each(['0x7f000001', '2130706433', '0177.0.0.1', '127.1', '%31%32%37.0.0.1', '127.0.0.1.'])(
    'http://%s:<T>/ → refused as 127.0.0.1',
    async (spelling) => {
      const r = await fetchWith(`http://${spelling}:${T.port}/`, ['allowed.example', `127.0.0.1:${A.port}`]);
      expect(r.ok).toBe(false);
      expect(r.error?.code).toBe('egress_refused');
      expect(r.decisions).toHaveLength(1);
      expect(r.decisions[0]).toMatchObject({ host: '127.0.0.1', port: T.port, allowed: false });
      expect(r.decisions[0]!.reason).toMatch(/not granted.*internal address: loopback/);
    },
  );

  it('the same spellings without a port (port 80) → refused', async () => {
    for (const spelling of ['0x7f000001', '2130706433', '0177.0.0.1', '127.1']) {
      const r = await fetchWith(`http://${spelling}/`, ['allowed.example']);
      expect(r.error?.code).toBe('egress_refused');
      expect(r.decisions[0]).toMatchObject({ host: '127.0.0.1', port: 80, allowed: false });
    }
  });

  it('http://[::ffff:127.0.0.1]:<T>/ → refused (IPv4-mapped loopback), even with 127.0.0.1:<T> granted', async () => {
    const r = await fetchWith(`http://[::ffff:127.0.0.1]:${T.port}/`, [`127.0.0.1:${T.port}`]);
    expect(r.error?.code).toBe('egress_refused');
    expect(r.decisions[0]).toMatchObject({ host: '::ffff:7f00:1', allowed: false });
    expect(r.decisions[0]!.reason).toMatch(/internal address: loopback/);
  });

  it('http://allowed.example@127.0.0.1:<T>/ → decided on 127.0.0.1, userinfo refused outright', async () => {
    for (const grants of [['allowed.example', `allowed.example:${T.port}`], [`127.0.0.1:${T.port}`]]) {
      const r = await fetchWith(`http://allowed.example@127.0.0.1:${T.port}/`, grants);
      expect(r.error?.code).toBe('egress_refused');
      expect(r.decisions[0]).toMatchObject({ host: '127.0.0.1', port: T.port, allowed: false });
      expect(r.decisions[0]!.reason).toMatch(/userinfo/);
      expect(r.decisions[0]!.url).not.toContain('allowed.example'); // credentials are not audited
    }
  });

  it.each([
    'file:///etc/passwd',
    'gopher://127.0.0.1:70/',
    'ftp://127.0.0.1/',
    'data:text/plain,hi',
    'ws://127.0.0.1/',
    'javascript:alert(1)',
  ])('%s → refused by scheme', async (url) => {
    const r = await fetchWith(url, ['allowed.example', `127.0.0.1:${T.port}`]);
    expect(r.error?.code).toBe('egress_refused');
    expect(r.decisions[0]!.allowed).toBe(false);
    expect(r.decisions[0]!.reason).toMatch(/scheme .* is not allowed/);
  });

  it('http://169.254.169.254/latest/meta-data/ (cloud metadata) → refused', async () => {
    const r = await fetchWith('http://169.254.169.254/latest/meta-data/', ['allowed.example', '*.example.com']);
    expect(r.error?.code).toBe('egress_refused');
    expect(r.decisions[0]).toMatchObject({ host: '169.254.169.254', port: 80, allowed: false });
    expect(r.decisions[0]!.reason).toMatch(/linkLocal/);
  });

  it('http://[::1]:<T>/ when only 127.0.0.1:<T> is granted → refused', async () => {
    const r = await fetchWith(`http://[::1]:${T.port}/`, [`127.0.0.1:${T.port}`]);
    expect(r.error?.code).toBe('egress_refused');
    expect(r.decisions[0]).toMatchObject({ host: '::1', port: T.port, allowed: false });
  });

  it('http://0.0.0.0:<T>/ → refused (Linux would route it to the local host)', async () => {
    const r = await fetchWith(`http://0.0.0.0:${T.port}/`, [`127.0.0.1:${T.port}`]);
    expect(r.error?.code).toBe('egress_refused');
    expect(r.decisions[0]!.reason).toMatch(/unspecified/);
  });

  it('a granted name that resolves to 127.0.0.1 → refused at connect, resolved once', async () => {
    const { lookup, calls } = fixedLookup('127.0.0.1');
    const r = await fetchWith(`http://evil.test:${T.port}/`, [`evil.test:${T.port}`], { lookup });
    expect(r.error?.code).toBe('egress_refused');
    expect(r.decisions[0]).toMatchObject({ host: 'evil.test', ip: '127.0.0.1', allowed: false });
    expect(r.decisions[0]!.reason).toMatch(/resolved to 127\.0\.0\.1.*internal/);
    expect(calls).toEqual(['evil.test']);
  });

  it('a name grant never allows an internal IP, even one that an IP grant names', async () => {
    const { lookup } = fixedLookup('::1');
    const r = await fetchWith(`http://evil.test:${T.port}/`, [`evil.test:${T.port}`, `[::1]:${T.port}`], { lookup });
    expect(r.error?.code).toBe('egress_refused');
    expect(r.decisions[0]).toMatchObject({ ip: '::1', allowed: false });
  });

  // Decision: an answer mixing public and internal addresses is refused as a whole, in any order.
  it.each([
    ['public first', ['93.184.216.34', '127.0.0.1']],
    ['internal first', ['127.0.0.1', '93.184.216.34']],
    ['mapped IPv6', ['93.184.216.34', '::ffff:127.0.0.1']],
  ])('a DNS answer mixing public and private addresses (%s) → refused entirely', async (_name, addresses) => {
    const { lookup } = fixedLookup(...addresses);
    const r = await fetchWith(`http://mixed.test:${T.port}/`, [`mixed.test:${T.port}`], { lookup });
    expect(r.error?.code).toBe('egress_refused');
    expect(r.decisions[0]!.allowed).toBe(false);
    expect(r.decisions[0]!.reason).toContain('93.184.216.34');
  });

  it.each([
    ['127.0.0.1', (p: number) => `http://127.0.0.1:${p}/`],
    ['localhost', (p: number) => `http://localhost:${p}/`],
    ['mapped', (p: number) => `http://[::ffff:7f00:1]:${p}/`],
    ['metadata', () => 'http://169.254.169.254/latest/meta-data/'],
    ['file', () => 'file:///etc/passwd'],
  ])('a granted server 302 → %s: second hop refused, first allowed', async (_name, to) => {
    const r = await fetchWith(`http://127.0.0.1:${A.port}/redirect?to=${encodeURIComponent(to(T.port))}`, [
      `127.0.0.1:${A.port}`,
    ]);
    expect(r.error?.code).toBe('egress_refused');
    expect(r.decisions.map((d) => d.allowed)).toEqual([true, false]);
  });

  it('a granted server redirects to a granted name that resolves to 127.0.0.1 → refused', async () => {
    const { lookup, calls } = fixedLookup('127.0.0.1');
    const to = encodeURIComponent(`http://evil.test:${T.port}/`);
    const r = await fetchWith(
      `http://127.0.0.1:${A.port}/redirect?to=${to}`,
      [`127.0.0.1:${A.port}`, `evil.test:${T.port}`],
      { lookup },
    );
    expect(r.error?.code).toBe('egress_refused');
    expect(r.decisions).toHaveLength(2);
    expect(r.decisions[1]).toMatchObject({ host: 'evil.test', ip: '127.0.0.1', allowed: false });
    expect(calls).toEqual(['evil.test']);
  });

  it('methods other than GET and POST → refused', async () => {
    const r = await safeFetch(`http://127.0.0.1:${T.port}/`, {
      ...base,
      method: 'DELETE' as 'GET',
      grants: [`127.0.0.1:${T.port}`],
    });
    expect(r.error?.code).toBe('egress_refused');
  });
});

describe('allowed within grants', () => {
  const grantA = () => [`127.0.0.1:${A.port}`];

  it('GET to an exactly granted loopback server', async () => {
    const r = await fetchWith(`http://127.0.0.1:${A.port}/`, grantA());
    expect(r).toMatchObject({ ok: true, status: 200, body: 'hello', truncated: false });
    expect(r.decisions).toEqual([
      {
        url: `http://127.0.0.1:${A.port}/`,
        host: '127.0.0.1',
        ip: '127.0.0.1',
        port: A.port,
        allowed: true,
        reason: `granted by "127.0.0.1:${A.port}"`,
      },
    ]);
  });

  it('another spelling of the granted IP is the same destination', async () => {
    const r = await fetchWith(`http://2130706433:${A.port}/`, grantA());
    expect(r).toMatchObject({ ok: true, body: 'hello' });
  });

  it('an exact IPv6 grant allows that address', async () => {
    if (!A.dualStack) return; // host without IPv6
    const r = await fetchWith(`http://[::1]:${A.port}/`, [`[::1]:${A.port}`]);
    expect(r).toMatchObject({ ok: true, body: 'hello' });
    expect(r.decisions[0]).toMatchObject({ host: '::1', ip: '::1', allowed: true });
  });

  it('a failing resolver → egress_failed, not a throw', async () => {
    const lookup: Lookup = async () => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND nowhere.test'), { code: 'ENOTFOUND' });
    };
    const r = await fetchWith('http://nowhere.test/', ['nowhere.test'], { lookup });
    expect(r.error).toMatchObject({ code: 'egress_failed', message: expect.stringContaining('ENOTFOUND') });
  });

  it('POST delivers the body exactly once', async () => {
    const before = A.requests.length;
    const r = await fetchWith(`http://127.0.0.1:${A.port}/echo`, grantA(), {
      method: 'POST',
      body: 'ping=1',
      headers: { 'content-type': 'text/plain' },
    });
    expect(r).toMatchObject({ ok: true, status: 200, body: 'POST ping=1' });
    const seen = A.requests.slice(before);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ method: 'POST', url: '/echo', body: 'ping=1' });
  });

  it('a response bigger than the cap is truncated', async () => {
    const r = await fetchWith(`http://127.0.0.1:${A.port}/big`, grantA(), { maxResponseBytes: 1000 });
    expect(r).toMatchObject({ ok: true, status: 200, truncated: true });
    expect(r.body).toHaveLength(1000);
  });

  it('truncation never splits a UTF-8 character', async () => {
    const r = await fetchWith(`http://127.0.0.1:${A.port}/utf8`, grantA(), { maxResponseBytes: 1001 });
    expect(r.truncated).toBe(true);
    expect(r.body).toBe('é'.repeat(500));
  });

  it('a slow server hits the deadline → egress_timeout', async () => {
    const started = Date.now();
    const r = await fetchWith(`http://127.0.0.1:${A.port}/slow`, grantA(), { timeoutMs: 300 });
    expect(r.ok).toBe(false);
    expect(r.error?.code).toBe('egress_timeout');
    expect(Date.now() - started).toBeLessThan(2500);
  });

  it('a resolver that never answers hits the deadline → egress_timeout', async () => {
    const r = await fetchWith('http://hang.test/', ['hang.test'], {
      timeoutMs: 200,
      lookup: () => new Promise(() => {}),
    });
    expect(r.error?.code).toBe('egress_timeout');
  });

  it('a redirect within grants is followed, one decision per hop', async () => {
    const r = await fetchWith(`http://127.0.0.1:${A.port}/redirect?to=/`, grantA());
    expect(r).toMatchObject({ ok: true, status: 200, body: 'hello' });
    expect(r.decisions).toHaveLength(2);
    expect(r.decisions.every((d) => d.allowed && d.ip === '127.0.0.1')).toBe(true);
    expect(r.decisions[1]!.url).toBe(`http://127.0.0.1:${A.port}/`);
  });

  it('too many redirects → refused, the extra hop recorded and never sent', async () => {
    const before = A.requests.filter((q) => q.url === '/loop').length;
    const r = await fetchWith(`http://127.0.0.1:${A.port}/loop`, grantA(), { maxRedirects: 2 });
    expect(r.error?.code).toBe('egress_refused');
    expect(r.error?.message).toMatch(/too many redirects/);
    expect(r.decisions.map((d) => d.allowed)).toEqual([true, true, true, false]);
    expect(A.requests.filter((q) => q.url === '/loop').length - before).toBe(3);
  });

  it('303 turns POST into a body-less GET; 307 repeats the POST', async () => {
    const to = encodeURIComponent('/echo');
    const r303 = await fetchWith(`http://127.0.0.1:${A.port}/redirect?status=303&to=${to}`, grantA(), {
      method: 'POST',
      body: 'x',
    });
    expect(r303.body).toBe('GET ');
    const r307 = await fetchWith(`http://127.0.0.1:${A.port}/redirect?status=307&to=${to}`, grantA(), {
      method: 'POST',
      body: 'x',
    });
    expect(r307.body).toBe('POST x');
  });

  it('the caller cannot set Host; credentials are not forwarded to another origin', async () => {
    const h = await fetchWith(`http://127.0.0.1:${A.port}/headers`, grantA(), {
      headers: { Host: 'internal.example', 'X-Ok': '1' },
    });
    expect(JSON.parse(h.body!)).toMatchObject({ host: `127.0.0.1:${A.port}`, 'x-ok': '1' });

    const before = B.requests.length;
    const to = encodeURIComponent(`http://127.0.0.1:${B.port}/`);
    const r = await fetchWith(`http://127.0.0.1:${A.port}/redirect?to=${to}`, [...grantA(), `127.0.0.1:${B.port}`], {
      headers: { authorization: 'Bearer s3cret', 'x-ok': '1' },
    });
    expect(r).toMatchObject({ ok: true, body: 'b' });
    const seen = B.requests.slice(before);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers.authorization).toBeUndefined();
    expect(seen[0]!.headers['x-ok']).toBe('1');
  });
});

describe('destination grants', () => {
  it.each([
    ['api.example.com', { kind: 'host', host: 'api.example.com' }],
    ['API.Example.COM.', { kind: 'host', host: 'api.example.com' }],
    ['api.example.com:8443', { kind: 'host', host: 'api.example.com', port: 8443 }],
    ['*.example.com', { kind: 'wildcard', host: 'example.com' }],
    ['https://api.example.com', { kind: 'host', host: 'api.example.com', scheme: 'https' }],
    ['http://api.example.com:8080/', { host: 'api.example.com', scheme: 'http', port: 8080 }],
    ['127.0.0.1:8025', { kind: 'ip', host: '127.0.0.1', port: 8025 }],
    ['0x7f000001:8025', { kind: 'ip', host: '127.0.0.1', port: 8025 }],
    ['2130706433:8025', { kind: 'ip', host: '127.0.0.1', port: 8025 }],
    ['0177.0.0.1:8025', { kind: 'ip', host: '127.0.0.1', port: 8025 }],
    ['127.1:8025', { kind: 'ip', host: '127.0.0.1', port: 8025 }],
    ['[::1]:8025', { kind: 'ip', host: '::1', port: 8025 }],
    ['[0:0::1]:8025', { kind: 'ip', host: '::1', port: 8025 }],
    ['93.184.216.34', { kind: 'ip', host: '93.184.216.34' }],
  ])('%s parses', (source, expected) => {
    expect(parseDestinationGrant(source)).toMatchObject({ source, ...expected });
  });

  it.each([
    ['', /empty/],
    ['*.com', /two labels/],
    ['*', /not a valid host/],
    ['127.0.0.1', /must name its port/],
    ['[::1]', /must name its port/],
    ['169.254.169.254', /must name its port/],
    ['*.127.0.0.1', /wildcard/],
    ['[::ffff:127.0.0.1]:80', /IPv4-mapped/],
    ['ftp://example.com', /expected host/],
    ['https://example.com/path', /expected host/],
    ['user@example.com', /expected host/],
    ['example.com:0', /port/],
    ['example.com:99999', /expected host|port/],
    ['exa mple.com', /expected host/],
    ['a..b', /not a valid host/],
    ['-a.example.com', /not a valid host/],
    ['1.2.3.4.5', /not a valid host/],
  ])('%j is refused with a clear message', (source, message) => {
    expect(() => parseDestinationGrant(source)).toThrow(message);
  });

  it('matches host, port, scheme and wildcard exactly', () => {
    const grants = ['api.example.com', 'https://pinned.example.com', '*.example.org', 'x.example.net:8443'].map(
      parseDestinationGrant,
    );
    const m = (scheme: 'http' | 'https', host: string, port: number) =>
      matchGrant(grants, { scheme, host, port })?.source;
    expect(m('https', 'api.example.com', 443)).toBe('api.example.com');
    expect(m('http', 'api.example.com', 80)).toBe('api.example.com');
    expect(m('http', 'api.example.com', 443)).toBeUndefined();
    expect(m('https', 'api.example.com', 8443)).toBeUndefined();
    expect(m('https', 'pinned.example.com', 443)).toBe('https://pinned.example.com');
    expect(m('http', 'pinned.example.com', 80)).toBeUndefined();
    expect(m('https', 'a.b.example.org', 443)).toBe('*.example.org');
    expect(m('https', 'example.org', 443)).toBeUndefined();
    expect(m('https', 'evilexample.org', 443)).toBeUndefined();
    expect(m('http', 'x.example.net', 8443)).toBe('x.example.net:8443');
    expect(m('https', 'x.example.net', 443)).toBeUndefined();
  });
});

describe('IP classification', () => {
  it.each([
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['::1', 'loopback'],
    ['169.254.169.254', 'linkLocal'],
    ['fe80::1', 'linkLocal'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['fc00::1', 'uniqueLocal'],
    ['fd12:3456::1', 'uniqueLocal'],
    ['100.64.0.1', 'carrierGradeNat'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['192.0.2.1', 'reserved'],
    ['2001:db8::1', 'reserved'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:169.254.169.254', 'linkLocal'],
    ['64:ff9b::7f00:1', 'rfc6052'],
    ['2002:7f00:1::', '6to4'],
    ['2001::1', 'teredo'],
    ['::7f00:1', 'nonGlobal'],
    ['0x7f000001', 'invalid'],
    ['not-an-ip', 'invalid'],
  ])('%s is internal (%s)', (ip, range) => {
    expect(classifyIp(ip)).toMatchObject({ range, internal: true });
  });

  it.each(['8.8.8.8', '93.184.216.34', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'])(
    '%s is public',
    (ip) => {
      expect(classifyIp(ip)).toMatchObject({ range: 'unicast', internal: false });
    },
  );
});
