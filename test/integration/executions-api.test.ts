// The REST path end to end through app.inject: real Redis, real BullMQ, real isolates.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

let sg: TestSandgate;
let auth: Record<string, string>;

beforeAll(async () => {
  sg = await startSandgate();
  ({ auth } = await sg.agent({ profiles: ['js'] }));
});
afterAll(() => sg?.stop());

const post = (payload: unknown, headers = auth, query = '?wait=true') =>
  sg.app!.inject({ method: 'POST', url: `/v1/executions${query}`, headers, payload: payload as object });

describe('POST /v1/executions', () => {
  it('runs the js profile and answers with stdout, result and usage (wait=true)', async () => {
    const res = await post({ profile: 'js', code: 'console.log(6*7); 1+1' });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({
      status: 'succeeded',
      stdout: '42\n',
      result: 2,
      exitCode: 0,
      truncated: false,
      profile: 'js',
    });
    expect(body.id).toMatch(/^ex_/);
    expect(body.usage.wallMs).toBeGreaterThan(0);
    expect(body.usage.cpuMs).toBeGreaterThan(0);
    expect(body.usage.memoryBytes).toBeGreaterThan(0);
    expect(body.usage.cost).toBeGreaterThan(0);
    expect(body.startedAt).not.toBeNull();
    expect(body.finishedAt).not.toBeNull();
  });

  it('answers 202 without wait, and GET returns the finished record', async () => {
    const res = await post({ profile: 'js', code: '[1, {a: "b"}]' }, auth, '');
    expect(res.statusCode).toBe(202);
    const { id, status } = res.json();
    expect(status).toBe('queued');
    const done = await eventually<{ result: unknown }>(async () => {
      const r = await sg.app!.inject({ method: 'GET', url: `/v1/executions/${id}`, headers: auth });
      return r.json().status === 'succeeded' ? r.json() : undefined;
    });
    expect(done.result).toEqual([1, { a: 'b' }]);
  });

  it('puts console.error on stderr and an uncaught exception in failed with its message', async () => {
    const res = await post({ profile: 'js', code: 'console.error("warn me"); throw new RangeError("nope")' });
    const body = res.json();
    expect(body.status).toBe('failed');
    expect(body.exitCode).toBe(1);
    expect(body.stderr).toContain('warn me');
    expect(body.error).toEqual({ code: 'uncaught_exception', message: 'RangeError: nope' });
  });

  it('awaits an async completion value', async () => {
    const res = await post({ profile: 'js', code: 'async function f() { await null; return {ok: true} } f()' });
    expect(res.json()).toMatchObject({ status: 'succeeded', result: { ok: true } });
  });

  it('accepts lower limits than the profile', async () => {
    const res = await post({ profile: 'js', code: 'while(true){}', timeoutMs: 200, memoryMb: 16 });
    expect(res.json()).toMatchObject({ status: 'timed_out' });
    expect(res.json().usage.wallMs).toBeGreaterThanOrEqual(190);
  });
});

describe('bad requests', () => {
  const cases: Array<[string, () => ReturnType<typeof post>, number, string]> = [
    [
      'malformed JSON',
      () =>
        sg.app!.inject({
          method: 'POST',
          url: '/v1/executions',
          headers: { ...auth, 'content-type': 'application/json' },
          payload: '{"profile": "js",',
        }),
      400,
      'invalid_json',
    ],
    ['wrong type', () => post({ profile: 'js', code: 42 }), 400, 'validation_failed'],
    ['unknown field', () => post({ profile: 'js', code: '1', sudo: true }), 400, 'validation_failed'],
    ['empty code', () => post({ profile: 'js', code: '' }), 400, 'validation_failed'],
    // Refused like an ungranted profile (it was 400 unknown_profile: it told which profiles exist).
    ['unknown profile', () => post({ profile: 'cobol', code: '1' }), 403, 'profile_not_granted'],
    [
      'timeout above the ceiling',
      () => post({ profile: 'js', code: '1', timeoutMs: 5001 }),
      400,
      'limit_exceeds_profile',
    ],
    [
      'memory above the ceiling',
      () => post({ profile: 'js', code: '1', memoryMb: 4096 }),
      400,
      'limit_exceeds_profile',
    ],
    [
      'language of another profile',
      () => post({ profile: 'js', code: '1', language: 'python' }),
      400,
      'language_mismatch',
    ],
    [
      'files on the isolate',
      () => post({ profile: 'js', code: '1', files: [{ path: 'a.txt', content: 'x' }] }),
      400,
      'unsupported_input',
    ],
    ['huge body', () => post({ profile: 'js', code: 'x'.repeat(2 * 1024 * 1024) }), 413, 'body_too_large'],
    [
      'code above the profile cap',
      () => post({ profile: 'js', code: `/*${'x'.repeat(300_000)}*/1` }),
      413,
      'code_too_large',
    ],
    ['no token', () => post({ profile: 'js', code: '1' }, {}), 401, 'unauthorized'],
    [
      'garbage token',
      () => post({ profile: 'js', code: '1' }, { authorization: 'Bearer not.a.jwt' }),
      401,
      'unauthorized',
    ],
    ['admin submitting code', () => post({ profile: 'js', code: '1' }, sg.admin), 403, 'forbidden'],
    ['bad wait value', () => post({ profile: 'js', code: '1' }, auth, '?wait=maybe'), 400, 'validation_failed'],
  ];
  it.each(cases)('%s', async (_name, send, status, code) => {
    const res = await send();
    expect(res.statusCode).toBe(status);
    expect(res.json().error.code).toBe(code);
    expect(typeof res.json().error.message).toBe('string');
  });

  it('refuses an expired token with token_expired', async () => {
    const { id } = await sg.agent({ profiles: ['js'] });
    const token = await sg.mint(id, { ttlSeconds: 1 });
    await new Promise((r) => setTimeout(r, 2100));
    const res = await post({ profile: 'js', code: '1' }, { authorization: `Bearer ${token}` });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('token_expired');
  });

  it('refuses a profile the agent was not granted (fail closed)', async () => {
    const none = await sg.agent({ profiles: [] });
    const res = await post({ profile: 'js', code: '1' }, none.auth);
    expect(res.statusCode).toBe(403);
    expect(res.json().error.code).toBe('profile_not_granted');
  });

  it("hides another agent's execution (404) and refuses to cancel it", async () => {
    const mine = await post({ profile: 'js', code: '1' });
    const other = await sg.agent({ profiles: ['js'] });
    const id = mine.json().id;
    const get = await sg.app!.inject({ method: 'GET', url: `/v1/executions/${id}`, headers: other.auth });
    expect(get.statusCode).toBe(404);
    expect(get.json().error.code).toBe('not_found');
    const del = await sg.app!.inject({ method: 'DELETE', url: `/v1/executions/${id}`, headers: other.auth });
    expect(del.statusCode).toBe(404);
    const admin = await sg.app!.inject({ method: 'GET', url: `/v1/executions/${id}`, headers: sg.admin });
    expect(admin.statusCode).toBe(200);
  });

  it('answers 400 for a malformed id and 404 for an unknown one', async () => {
    const bad = await sg.app!.inject({ method: 'GET', url: '/v1/executions/../../etc', headers: auth });
    expect([400, 404]).toContain(bad.statusCode);
    const missing = await sg.app!.inject({ method: 'GET', url: '/v1/executions/ex_doesnotexist000', headers: auth });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('not_found');
  });
});

describe('DELETE /v1/executions/:id', () => {
  it('cancels a running execution, which then ends cancelled', async () => {
    const res = await post({ profile: 'js', code: 'while(true){}' }, auth, '');
    const { id } = res.json();
    await eventually(async () => {
      const r = await sg.app!.inject({ method: 'GET', url: `/v1/executions/${id}`, headers: auth });
      return r.json().status === 'running' ? true : undefined;
    });
    const del = await sg.app!.inject({ method: 'DELETE', url: `/v1/executions/${id}`, headers: auth });
    expect(del.statusCode).toBe(200);
    expect(del.json().status).toBe('cancelled');
    // The runner stops the isolate well before the profile's 5 s timeout would have.
    await eventually(async () => (sg.runner!.inFlight() === 0 ? true : undefined), 2000, 'the runner to let go');
    const again = await sg.app!.inject({ method: 'DELETE', url: `/v1/executions/${id}`, headers: auth });
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe('invalid_state');
  });
});
