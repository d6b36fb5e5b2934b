// Every connection has a deadline: 200 slowloris clients (headers, or a body, one byte a second)
// are cut by the configured request deadlines while normal requests keep answering; the
// connection limit refuses the excess; idle keep-alive connections close. The runner's /metrics
// server has the same deadlines. Small configured deadlines keep the test to a few seconds.
import { request } from 'node:http';
import { connect } from 'node:net';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRunnerMetrics } from '../../bin/metrics-server.ts';
import { loadConfig } from '../../contract/config.ts';
import { freePort } from '../helpers/processes.ts';
import { startSandgate, type TestSandgate } from '../helpers/sandgate.ts';
import { slowClient, stalledClient } from '../helpers/slow-client.ts';

const LIMITS = {
  SANDGATE_HEADERS_TIMEOUT_MS: '1500',
  SANDGATE_REQUEST_TIMEOUT_MS: '3000',
  SANDGATE_KEEP_ALIVE_TIMEOUT_MS: '500',
  SANDGATE_MAX_CONNECTIONS: '260',
};
/** What a deadline may overrun by: Node's check interval plus a loaded CI machine. */
const SLACK_MS = 2500;

let sg: TestSandgate;
let port: number;
let auth: Record<string, string>;

beforeAll(async () => {
  sg = await startSandgate(LIMITS);
  ({ auth } = await sg.agent());
  await sg.app!.listen({ port: 0, host: '127.0.0.1' });
  port = (sg.app!.server.address() as { port: number }).port;
});
afterAll(() => sg?.stop());

const base = () => `http://127.0.0.1:${port}`;

/** Normal traffic while `during` settles: every answer and its latency. */
async function normalTraffic(during: Promise<unknown>): Promise<{ status: number; ms: number }[]> {
  const seen: { status: number; ms: number }[] = [];
  let done = false;
  void during.finally(() => (done = true));
  for (let i = 0; i < 1000 && !done; i++) {
    const t = performance.now();
    const res = await fetch(`${base()}/v1/executions?wait=true`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ profile: 'js', code: '6*7' }),
    });
    await res.arrayBuffer();
    seen.push({ status: res.status, ms: performance.now() - t });
    await new Promise((r) => setTimeout(r, 50));
  }
  return seen;
}

describe('slow clients', { timeout: 30_000 }, () => {
  it('200 slowloris clients are cut by the deadlines while normal requests answer', async () => {
    const slow = [
      ...Array.from({ length: 100 }, () => slowClient(port, 'headers')),
      ...Array.from({ length: 100 }, () => slowClient(port, 'body', { headers: auth })),
    ];
    const ends = Promise.all(slow.map((c) => c.closed));
    const normal = await normalTraffic(ends);
    const results = await ends;

    expect(normal.length).toBeGreaterThan(5);
    expect(normal.filter((r) => r.status !== 200)).toEqual([]);
    expect(Math.max(...normal.map((r) => r.ms))).toBeLessThan(2000);

    const headers = results.slice(0, 100);
    const bodies = results.slice(100);
    for (const r of [...headers, ...bodies]) {
      expect(r.answer).toMatch(/^HTTP\/1\.1 408 /);
      expect(r.answer).toContain('"code":"request_timeout"');
    }
    // Headers are cut at the headers deadline, bodies at the whole-request deadline.
    expect(Math.max(...headers.map((r) => r.afterMs))).toBeLessThan(1500 + SLACK_MS);
    expect(Math.min(...bodies.map((r) => r.afterMs))).toBeGreaterThanOrEqual(3000 - 100);
    expect(Math.max(...bodies.map((r) => r.afterMs))).toBeLessThan(3000 + SLACK_MS);
  });

  it('refuses connections beyond the limit, and serves again once they are gone', async () => {
    const held = Array.from({ length: 300 }, () => stalledClient(port));
    const results = await Promise.all(held.map((c) => c.closed));
    const refused = results.filter((r) => r.refused);
    // 260 allowed: the rest were closed at once, without a word; the others hit the deadline.
    expect(refused.length).toBeGreaterThanOrEqual(40);
    expect(Math.max(...refused.map((r) => r.afterMs))).toBeLessThan(1000);
    expect(results.filter((r) => !r.refused).every((r) => r.answer.startsWith('HTTP/1.1 408 '))).toBe(true);
    expect((await fetch(`${base()}/healthz`)).status).toBe(200);
  });

  it('closes an idle keep-alive connection', async () => {
    const socket = connect(port, '127.0.0.1');
    const t = Date.now();
    socket.on('error', () => {});
    socket.write('GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n');
    let answer = '';
    socket.on('data', (d) => (answer += d));
    await new Promise((r) => socket.on('close', r));
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    // Node keeps a keep-alive socket up to a second past the timeout it announced.
    expect(Date.now() - t).toBeLessThan(500 + 1000 + SLACK_MS);
  });
});

describe("the runner's /metrics server", { timeout: 30_000 }, () => {
  it('has the same deadlines, and still answers normal scrapes', async () => {
    const metricsPort = await freePort();
    const config = loadConfig({ ...LIMITS, SANDGATE_RUNNER_METRICS_PORT: String(metricsPort) });
    const metrics = await startRunnerMetrics(new Registry(), config, pino({ level: 'silent' }));
    try {
      expect(metrics.port).toBe(metricsPort);
      const slow = slowClient(metricsPort, 'headers', { path: '/metrics' });
      const scrape = await new Promise<number>((resolve, reject) => {
        request({ port: metricsPort, host: '127.0.0.1', path: '/metrics' }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
          .on('error', reject)
          .end();
      });
      expect(scrape).toBe(200);
      const cut = await slow.closed;
      expect(cut.answer).toContain('"code":"request_timeout"');
      expect(cut.afterMs).toBeLessThan(1500 + SLACK_MS);
    } finally {
      await metrics.close();
    }
  });
});
