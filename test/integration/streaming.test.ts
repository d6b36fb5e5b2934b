// A run's event stream over real HTTP on loopback, from real runs (Docker's python, the js
// isolate) through real Redis: seen live while the run goes on, resumed after a disconnect with
// Last-Event-ID exactly once and in order, served by a second API process, refused to others;
// an action's status changes up to its final record after a human approves it.
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisKeys } from '../../state/keys.ts';
import { type FakeEndpoint, startFakeEndpoint } from '../helpers/fake-endpoint.ts';
import { metricValue } from '../helpers/http-client.ts';
import { startSandgate, type TestSandgate } from '../helpers/sandgate.ts';
import { chunksOf, readSse, type SseEvent } from '../helpers/sse-client.ts';

let sg: TestSandgate;
let base: string;
let auth: Record<string, string>;
let gateway: FakeEndpoint;
const cleanup: Array<() => Promise<unknown>> = [];

const listen = async (s: TestSandgate) => {
  await s.app!.listen({ port: 0, host: '127.0.0.1' });
  return `http://127.0.0.1:${(s.app!.server.address() as AddressInfo).port}`;
};

beforeAll(async () => {
  gateway = await startFakeEndpoint();
  cleanup.push(() => gateway.close());
  sg = await startSandgate(
    {
      SANDGATE_TOOLS_DIR: 'tools',
      SANDGATE_MAIL_GATEWAY_URL: `${gateway.url}/send`,
      SANDGATE_MAIL_GATEWAY_TOKEN: 'gw-token-streaming',
    },
    'all',
    ['js', 'python'],
  );
  cleanup.push(() => sg.stop());
  base = await listen(sg);
  auth = (await sg.agent({ profiles: ['js', 'python'], tools: ['send_email'] })).auth;
}, 60_000);

afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
});

const submit = async (body: Record<string, unknown>) => {
  const res = await fetch(`${base}/v1/executions`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
};

const ticker = (lines: number, ms: number) =>
  `import time\nfor i in range(${lines}):\n    print(f"line {i}")\n    time.sleep(${ms / 1000})\n`;

const stdoutOf = (events: readonly SseEvent[]) =>
  chunksOf(events)
    .filter((c) => c.stream === 'stdout')
    .map((c) => c.data)
    .join('');

describe('execution event stream', { timeout: 60_000 }, () => {
  it('shows a python run line by line while it runs, then ends with the final execution', async () => {
    const id = await submit({ profile: 'python', code: ticker(15, 100) });
    const answer = await readSse(`${base}/v1/executions/${id}/stream`, { headers: auth });
    expect(answer.status).toBe(200);
    expect(answer.ended).toBe(true);
    const { events } = answer;
    const statuses = events.filter((e) => e.event === 'status').map((e) => JSON.parse(e.data).status);
    expect(statuses).toEqual(['queued', 'running', 'succeeded']);
    const final = events.at(-1)!;
    expect(final.event).toBe('final');
    const execution = JSON.parse(final.data);
    expect(execution).toMatchObject({ id, status: 'succeeded', exitCode: 0, truncated: false });
    // The stream carries exactly the run's stdout, and the record is what GET answers.
    expect(stdoutOf(events)).toBe(execution.stdout);
    const got = await (await fetch(`${base}/v1/executions/${id}`, { headers: auth })).json();
    expect(execution).toEqual(got);

    // When each line first arrived: spread over the ~1.5 s run, not bunched at its end.
    const arrival = (n: number) => {
      let text = '';
      for (const c of chunksOf(events)) {
        text += c.data;
        if (text.includes(`line ${n}`)) return c.at;
      }
      throw new Error(`line ${n} never arrived`);
    };
    const first = arrival(0);
    const last = arrival(14);
    expect(last - first).toBeGreaterThan(1000);
    // The middle line was there long before the end, and the lines came in many deliveries.
    expect(final.at - arrival(7)).toBeGreaterThan(400);
    expect(new Set(Array.from({ length: 15 }, (_, n) => arrival(n))).size).toBeGreaterThanOrEqual(8);
    // Ids strictly increase; chunk seq counts 1, 2, 3…
    const ids = events.map((e) => e.id!);
    expect(new Set(ids).size).toBe(ids.length);
    expect(chunksOf(events).map((c) => c.seq)).toEqual(chunksOf(events).map((_, i) => i + 1));
  });

  it('resumes after a disconnect with Last-Event-ID: every chunk exactly once, in order', async () => {
    const id = await submit({ profile: 'python', code: ticker(20, 50) });
    const url = `${base}/v1/executions/${id}/stream`;
    // Cut off after the third chunk, while the run is still printing.
    let openWhileFollowing = 0;
    const first = await readSse(url, {
      headers: auth,
      stopAfter: (_e, all) => chunksOf(all).length >= 3,
      onEvent: (e) => {
        if (e.event === 'chunk' && !openWhileFollowing)
          void fetch(`${base}/metrics`)
            .then((r) => r.text())
            .then((t) => {
              openWhileFollowing = metricValue(t, 'sandgate_event_streams_open');
            });
      },
    });
    expect(first.ended).toBe(false);
    const lastId = first.events.at(-1)!.id!;
    await new Promise((r) => setTimeout(r, 300)); // it goes on printing meanwhile
    expect(openWhileFollowing).toBeGreaterThanOrEqual(1);
    const rest = await readSse(url, { headers: { ...auth, 'last-event-id': lastId } });
    expect(rest.ended).toBe(true);
    const all = [...first.events, ...rest.events];
    const chunks = chunksOf(all);
    expect(chunks.map((c) => c.seq)).toEqual(chunks.map((_, i) => i + 1));
    const final = JSON.parse(all.at(-1)!.data);
    expect(final.status).toBe('succeeded');
    expect(stdoutOf(all)).toBe(final.stdout);
    expect(final.stdout).toContain('line 19');

    // ?after= is the same cursor, and a later reconnect replays only what follows it.
    const again = await readSse(`${url}?after=${lastId}`, { headers: auth });
    expect(chunksOf(again.events).map((c) => c.seq)).toEqual(chunksOf(rest.events).map((c) => c.seq));
    const fromStart = await readSse(`${url}?after=0`, { headers: auth });
    expect(stdoutOf(fromStart.events)).toBe(final.stdout);
    // After the final event there is nothing more: 204, which stops a browser's EventSource.
    const after = await fetch(url, { headers: { ...auth, 'last-event-id': all.at(-1)!.id! } });
    expect(after.status).toBe(204);
  });

  it('ends with the cancelled record when the run is cancelled while it prints', async () => {
    const id = await submit({ profile: 'python', code: ticker(100, 50) });
    const url = `${base}/v1/executions/${id}/stream`;
    const following = readSse(url, { headers: auth });
    // Cancel once output has been seen (a second reader, cut at its first chunk).
    const seen = await readSse(url, { headers: auth, stopAfter: (e) => e.event === 'chunk', timeoutMs: 10_000 });
    expect(chunksOf(seen.events)).toHaveLength(1);
    const del = await fetch(`${base}/v1/executions/${id}`, { method: 'DELETE', headers: auth });
    expect(del.status).toBe(200);
    const answer = await following;
    const statuses = answer.events.filter((e) => e.event === 'status').map((e) => JSON.parse(e.data).status);
    expect(statuses).toEqual(['queued', 'running', 'cancelled']);
    const final = JSON.parse(answer.events.at(-1)!.data);
    expect(answer.events.at(-1)!.event).toBe('final');
    expect(final).toMatchObject({ id, status: 'cancelled', error: { code: 'cancelled' } });
    // The runner's measurement is in it, and the chunks are what the record kept.
    expect(final.usage.wallMs).toBeGreaterThan(0);
    expect(stdoutOf(answer.events)).toBe(final.stdout);
  });

  it("streams the isolate's console output and says when it was cut", async () => {
    const id = await submit({
      profile: 'js',
      code: 'console.log("hello"); console.error("warn"); for (let i = 0; i < 100000; i++) console.log("x".repeat(100)); 1',
    });
    const started = performance.now();
    const answer = await readSse(`${base}/v1/executions/${id}/stream`, { headers: auth });
    const events = answer.events;
    const kinds = events.map((e) => e.event);
    expect(kinds).toContain('truncated');
    expect(kinds.indexOf('truncated')).toBeLessThan(kinds.indexOf('final'));
    const final = JSON.parse(events.at(-1)!.data);
    expect(final.truncated).toBe(true);
    const chunks = chunksOf(events);
    expect(chunks.find((c) => c.stream === 'stderr')?.data).toContain('warn');
    expect(stdoutOf(events)).toBe(final.stdout);
    expect(Buffer.byteLength(stdoutOf(events)) + Buffer.byteLength(final.stderr)).toBeLessThanOrEqual(65536);
    // The service still answers at once.
    const t = performance.now();
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(performance.now() - t).toBeLessThan(1000);
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it('ends a stream of a finished run at once, with its final event, from the start', async () => {
    const id = await submit({ profile: 'js', code: 'console.log("done"); 42' });
    const first = await readSse(`${base}/v1/executions/${id}/stream`, { headers: auth });
    const second = await readSse(`${base}/v1/executions/${id}/stream`, { headers: auth });
    expect(second.events.map((e) => [e.id, e.event, e.data])).toEqual(first.events.map((e) => [e.id, e.event, e.data]));
    expect(JSON.parse(second.events.at(-1)!.data)).toMatchObject({ status: 'succeeded', result: 42, stdout: 'done\n' });
  });

  it('serves the final event from the record when the stream is gone (expired, or its writes lost)', async () => {
    const id = await submit({ profile: 'js', code: 'console.log("kept"); 7' });
    const url = `${base}/v1/executions/${id}/stream`;
    const whole = await readSse(url, { headers: auth });
    const redis = new Redis(sg.config.REDIS_URL);
    cleanup.push(async () => redis.disconnect());
    expect(await redis.del(redisKeys(sg.config.SANDGATE_PREFIX).execution.stream(id))).toBe(1);
    const answer = await readSse(url, { headers: auth });
    expect(answer.events).toHaveLength(1);
    expect(answer.events[0]).toMatchObject({ event: 'final', id: undefined });
    expect(JSON.parse(answer.events[0]!.data)).toEqual(JSON.parse(whole.events.at(-1)!.data));
  });

  it('answers POST ?stream=true with 201 and the stream from queued to final', async () => {
    const answer = await readSse(`${base}/v1/executions?stream=true`, {
      method: 'POST',
      headers: auth,
      body: { profile: 'python', code: 'print("hi")' },
    });
    expect(answer.status).toBe(201);
    const id = answer.headers.get('x-execution-id')!;
    expect(answer.headers.get('location')).toBe(`/v1/executions/${id}`);
    expect(answer.events[0]).toMatchObject({ event: 'status' });
    expect(JSON.parse(answer.events[0]!.data).status).toBe('queued');
    expect(JSON.parse(answer.events.at(-1)!.data)).toMatchObject({ id, status: 'succeeded', stdout: 'hi\n' });
    // A refused admission is an ordinary JSON error, not a stream.
    const refused = await readSse(`${base}/v1/executions?stream=true`, {
      method: 'POST',
      headers: auth,
      body: { profile: 'js', code: '' },
    });
    expect(refused.status).toBe(400);
    expect(JSON.parse(refused.body).error.code).toBe('validation_failed');
    const both = await fetch(`${base}/v1/executions?stream=true&wait=true`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ profile: 'js', code: '1' }),
    });
    expect(both.status).toBe(400);
  });
});

describe('who may follow a stream', { timeout: 30_000 }, () => {
  it('another agent gets 404, no token 401, a bad cursor 400 invalid_cursor; admin may', async () => {
    const id = await submit({ profile: 'js', code: 'console.log("mine")' });
    const url = `${base}/v1/executions/${id}/stream`;
    const other = await sg.agent({ profiles: ['js'] });
    const theirs = await readSse(url, { headers: other.auth });
    expect(theirs.status).toBe(404);
    expect(JSON.parse(theirs.body).error.code).toBe('not_found');
    const none = await readSse(url);
    expect(none.status).toBe(401);
    for (const bad of ['abc', '1-2-3', '-1', `${'9'.repeat(30)}-0`]) {
      const q = await readSse(`${url}?after=${encodeURIComponent(bad)}`, { headers: auth });
      expect(q.status).toBe(400);
      expect(JSON.parse(q.body).error.code).toBe('invalid_cursor');
    }
    const header = await readSse(url, { headers: { ...auth, 'last-event-id': 'garbage' } });
    expect(header.status).toBe(400);
    expect(JSON.parse(header.body).error).toMatchObject({ code: 'invalid_cursor' });
    const admin = await readSse(url, { headers: sg.admin });
    expect(admin.status).toBe(200);
    expect(JSON.parse(admin.events.at(-1)!.data)).toMatchObject({ id, stdout: 'mine\n' });
  });
});

describe('a second API process', { timeout: 60_000 }, () => {
  it('serves the same stream live, whichever process runs it', async () => {
    const api = await startSandgate(
      {
        SANDGATE_PREFIX: sg.config.SANDGATE_PREFIX,
        SANDGATE_ADMIN_TOKEN: sg.config.SANDGATE_ADMIN_TOKEN!,
        SANDGATE_DATA_DIR: sg.config.SANDGATE_DATA_DIR,
        SANDGATE_PROFILES_DIR: sg.config.SANDGATE_PROFILES_DIR,
      },
      'api',
    );
    cleanup.push(() => api.close());
    const otherBase = await listen(api);
    const id = await submit({ profile: 'python', code: ticker(8, 100) });
    const [here, there] = await Promise.all([
      readSse(`${base}/v1/executions/${id}/stream`, { headers: auth }),
      readSse(`${otherBase}/v1/executions/${id}/stream`, { headers: auth }),
    ]);
    expect(there.status).toBe(200);
    expect(there.events.map((e) => e.id)).toEqual(here.events.map((e) => e.id));
    const chunks = chunksOf(there.events);
    expect(chunks.at(-1)!.at - chunks[0]!.at).toBeGreaterThan(400); // live there too
    expect(JSON.parse(there.events.at(-1)!.data)).toMatchObject({ id, status: 'succeeded' });
  });
});

describe('action event stream', { timeout: 30_000 }, () => {
  it('shows awaiting_approval → queued → running → succeeded after a human approves', async () => {
    const res = await fetch(`${base}/v1/actions`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ tool: 'send_email', args: { to: 'cfo@example.com', subject: 'Q3', body: 'Attached.' } }),
    });
    const action = (await res.json()) as { id: string; status: string };
    expect(action.status).toBe('awaiting_approval');
    const detail = (await (await fetch(`${base}/v1/actions/${action.id}`, { headers: auth })).json()) as {
      approval: { id: string };
    };
    const approvalId = detail.approval.id;
    const url = `${base}/v1/actions/${action.id}/stream`;
    const seen: string[] = [];
    const following = readSse(url, {
      headers: auth,
      onEvent: (e) => e.event === 'status' && seen.push(JSON.parse(e.data).status),
    });
    const approverRes = await sg.app!.inject({
      method: 'POST',
      url: '/v1/principals',
      headers: sg.admin,
      payload: { name: 'alice', role: 'approver' },
    });
    const approver = { authorization: `Bearer ${approverRes.json().token}` };
    // The stream is open and has said it waits before anyone decides.
    for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual(['awaiting_approval']);
    const decided = await sg.app!.inject({
      method: 'POST',
      url: `/v1/approvals/${approvalId}`,
      headers: approver,
      payload: { decision: 'approve' },
    });
    expect(decided.statusCode).toBe(200);
    const answer = await following;
    expect(seen).toEqual(['awaiting_approval', 'queued', 'running', 'succeeded']);
    const final = JSON.parse(answer.events.at(-1)!.data);
    expect(answer.events.at(-1)!.event).toBe('final');
    expect(final).toMatchObject({ id: action.id, status: 'succeeded', approval: { status: 'used' } });
    expect(gateway.received).toHaveLength(1);

    // A reconnect after the first event replays the rest, exactly once; the approver may follow too.
    const firstId = answer.events[0]!.id!;
    const replay = await readSse(url, { headers: { ...auth, 'last-event-id': firstId } });
    expect(replay.events.map((e) => e.id)).toEqual(answer.events.slice(1).map((e) => e.id));
    expect((await readSse(url, { headers: approver })).status).toBe(200);
    const other = await sg.agent({ profiles: ['js'] });
    expect((await readSse(url, { headers: other.auth })).status).toBe(404);
  });
});
