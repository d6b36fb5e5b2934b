// The limits of an event stream, hit on purpose over real HTTP: a reader that does not read is
// dropped once its unsent bytes pass SANDGATE_STREAM_BUFFER_BYTES (and resumes with its cursor,
// exactly once); a stream outlives the request and idle timeouts with heartbeats; it ends at
// SANDGATE_STREAM_MAX_MS and the client resumes after it.
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandgate, type TestSandgate } from '../helpers/sandgate.ts';
import { chunksOf, readSse } from '../helpers/sse-client.ts';

let sg: TestSandgate;
let base: string;
let auth: Record<string, string>;

beforeAll(async () => {
  sg = await startSandgate(
    {
      SANDGATE_STREAM_BUFFER_BYTES: '65536',
      SANDGATE_STREAM_HEARTBEAT_MS: '200',
      SANDGATE_STREAM_MAX_MS: '4000',
      // A request must arrive within 1 s and a socket may be idle 1 s: a stream lasts longer.
      SANDGATE_REQUEST_TIMEOUT_MS: '1000',
      SANDGATE_HEADERS_TIMEOUT_MS: '500',
    },
    'all',
    ['js', 'python'],
  );
  sg.app!.server.setTimeout(1000);
  await sg.app!.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(sg.app!.server.address() as AddressInfo).port}`;
  auth = (await sg.agent({ profiles: ['js', 'python'] })).auth;
}, 60_000);
afterAll(async () => sg?.stop());

const submit = async (body: Record<string, unknown>) => {
  const res = await fetch(`${base}/v1/executions`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
};

describe('event stream limits', { timeout: 60_000 }, () => {
  it('drops a reader that does not read; it resumes with Last-Event-ID and misses nothing', async () => {
    // ~900 KB of control characters over ~1 s, each sent as a 6-byte JSON escape: megabytes more
    // than the socket buffers and the 64 KiB a client may have unsent.
    const code = 'import time\nfor i in range(100):\n    print(f"{i:04d}" + "\\x01" * 9000)\n    time.sleep(0.01)\n';
    const id = await submit({ profile: 'python', code });
    const url = `${base}/v1/executions/${id}/stream`;
    const slow = await readSse(url, { headers: auth, readAfterMs: 2000 });
    expect(slow.status).toBe(200);
    expect(slow.events.at(-1)?.event).not.toBe('final'); // cut off, not finished
    const lastId = slow.events.filter((e) => e.id).at(-1)?.id ?? '0';
    // Meanwhile the service answered at once, and the run went on to its end.
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const rest = await readSse(url, { headers: { ...auth, 'last-event-id': lastId } });
    const final = JSON.parse(rest.events.at(-1)!.data);
    expect(final).toMatchObject({ id, status: 'succeeded' });
    const chunks = chunksOf([...slow.events, ...rest.events]);
    expect(chunks.map((c) => c.seq)).toEqual(chunks.map((_, i) => i + 1));
    expect(chunks.map((c) => c.data).join('')).toBe(final.stdout);
    // A replay of all of it, megabytes past the cap, is sent as fast as the client reads: whole.
    const replay = await readSse(`${url}?after=0`, { headers: auth });
    expect(replay.events.at(-1)?.event).toBe('final');
    expect(
      chunksOf(replay.events)
        .map((c) => c.data)
        .join(''),
    ).toBe(final.stdout);
  });

  it('outlives the request and idle timeouts, with heartbeats', async () => {
    const id = await submit({ profile: 'python', code: 'import time\ntime.sleep(2.5)\nprint("late")\n' });
    const answer = await readSse(`${base}/v1/executions/${id}/stream`, { headers: auth });
    expect(JSON.parse(answer.events.at(-1)!.data)).toMatchObject({ status: 'succeeded', stdout: 'late\n' });
    expect(answer.comments.filter((c) => c === 'heartbeat').length).toBeGreaterThanOrEqual(5);
  });

  it('ends at its maximum life without a final event; the client resumes after it', async () => {
    const id = await submit({ profile: 'python', code: 'import time\nprint("early")\ntime.sleep(6)\nprint("late")\n' });
    const t = performance.now();
    const url = `${base}/v1/executions/${id}/stream`;
    const first = await readSse(url, { headers: auth, timeoutMs: 20_000 });
    expect(first.ended).toBe(true);
    expect(performance.now() - t).toBeGreaterThan(3500);
    expect(first.events.map((e) => e.event)).not.toContain('final');
    const rest = await readSse(url, { headers: { ...auth, 'last-event-id': first.events.at(-1)!.id! } });
    const final = JSON.parse(rest.events.at(-1)!.data);
    expect(final).toMatchObject({ status: 'succeeded', stdout: 'early\nlate\n' });
    expect(
      chunksOf([...first.events, ...rest.events])
        .map((c) => c.data)
        .join(''),
    ).toBe(final.stdout);
  });
});
