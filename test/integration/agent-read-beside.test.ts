// POST /v1/executions starts on the agent this process read last while it reads the agent again
// beside the admission's first round trip (api/auth.ts, agentReadBeside). What must still hold:
// a revocation, or a re-enable made in another process, refuses the very next request with the
// refusal auth would have given at once, whatever else the request would have got; nothing of a
// refused request is recorded, reserved or audited; an agent changed elsewhere is admitted on
// what was read, not on the copy it started on.
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeSandgate, type Sandgate } from '../../bin/compose.ts';
import { redisKeys } from '../../state/keys.ts';
import { REDIS_URL, startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

let sg: TestSandgate;
let elsewhere: Sandgate;
let redis: Redis;
beforeAll(async () => {
  sg = await startSandgate();
  // Another API process on the same Redis: what it changes, this one has not read.
  elsewhere = await composeSandgate({ config: sg.config, mode: 'api', logger: pino({ level: 'silent' }) });
  redis = new Redis(REDIS_URL);
});
afterAll(async () => {
  redis.disconnect();
  await elsewhere?.close();
  await sg?.stop();
});

type Auth = Record<string, string>;
const run = (auth: Auth, payload: Record<string, unknown>, query = '?wait=true', headers: Auth = {}) =>
  sg.app!.inject({ method: 'POST', url: `/v1/executions${query}`, headers: { ...auth, ...headers }, payload });
const asAdmin = (app: Sandgate['app'], method: 'GET' | 'POST', url: string, payload?: object) =>
  app!.inject({ method, url, headers: sg.admin, ...(payload && { payload }) });
const refusal = (res: { statusCode: number; json(): { error?: { code: string } } }) => [
  res.statusCode,
  res.json().error?.code,
];

/** What the agent has left behind: records, requested and refused audit records, the task's runs. */
async function traces(agentId: string, taskId: string) {
  const keys = redisKeys(sg.config.SANDGATE_PREFIX);
  const audit = async (kind: string) =>
    (await asAdmin(sg.app, 'GET', `/v1/audit?agentId=${agentId}&kind=${kind}&limit=1000`)).json().records.length;
  return {
    records: await redis.scard(keys.agent.executions(agentId)),
    requested: await audit('execution.requested'),
    refused: await audit('execution.refused'),
    taskRuns: (await asAdmin(sg.app, 'GET', `/v1/tasks/${taskId}`)).json().used.runs,
  };
}

describe('an agent read beside admission', { timeout: 60_000 }, () => {
  it('a revocation refuses the next run although this process read the agent before; nothing of it remains', async () => {
    const a = await sg.agent();
    const created = await sg.app!.inject({
      method: 'POST',
      url: '/v1/tasks',
      headers: a.auth,
      payload: { goal: 'revoked mid-task', budget: { maxRuns: 10 } },
    });
    const taskId = created.json().id as string;
    // This process reads (and keeps) the agent with these runs.
    for (const query of ['?wait=true', '']) {
      const ok = await run(a.auth, { profile: 'js', code: '1 + 1', taskId }, query);
      expect(ok.statusCode).toBe(query ? 200 : 202);
    }
    const before = await traces(a.id, taskId);
    // Revoked by the other process: this one has not read the revoked record.
    expect((await asAdmin(elsewhere.app, 'POST', `/v1/agents/${a.id}/revoke`)).statusCode).toBe(200);
    for (const query of ['?wait=true', '', '?stream=true']) {
      expect(refusal(await run(a.auth, { profile: 'js', code: '2 + 2', taskId }, query))).toEqual([
        401,
        'agent_revoked',
      ]);
    }
    expect(await traces(a.id, taskId)).toEqual(before);
  });

  it('a revoked agent gets agent_revoked whatever else its request would have got', async () => {
    const a = await sg.agent();
    const key = 'replay-after-revoke';
    const first = await run(a.auth, { profile: 'js', code: '3' }, '?wait=true', { 'idempotency-key': key });
    expect(first.statusCode).toBe(200);
    expect((await run(a.auth, { profile: 'js', code: '4' })).statusCode).toBe(200);
    expect((await asAdmin(elsewhere.app, 'POST', `/v1/agents/${a.id}/revoke`)).statusCode).toBe(200);
    const attempts = [
      run(a.auth, { profile: 'js', code: 5 }), // a bad body: 400 otherwise
      run(a.auth, { profile: 'python', code: '6' }), // a profile it may not run: 403 otherwise
      run(a.auth, { profile: 'js', code: '7', taskId: 'task_00000000_AAAAAAAAAAAAAAAAAAAA' }), // 404 otherwise
      run(a.auth, { profile: 'js', code: '8' }, '?wait=true&stream=true'), // 400 otherwise
      run(a.auth, { profile: 'js', code: '3' }, '?wait=true', { 'idempotency-key': key }), // the replay otherwise
      run(a.auth, { profile: 'js', code: '9' }, '?stream=true', { 'idempotency-key': 'fresh-key' }),
    ];
    for (const res of await Promise.all(attempts)) expect(refusal(res)).toEqual([401, 'agent_revoked']);
  });

  it('a token minted before a re-enable made elsewhere is refused; one minted after it runs', async () => {
    const a = await sg.agent();
    expect((await run(a.auth, { profile: 'js', code: '10' })).statusCode).toBe(200);
    expect((await asAdmin(elsewhere.app, 'POST', `/v1/agents/${a.id}/revoke`)).statusCode).toBe(200);
    expect((await asAdmin(elsewhere.app, 'POST', `/v1/agents/${a.id}/enable`)).statusCode).toBe(200);
    expect(refusal(await run(a.auth, { profile: 'js', code: '11' }))).toEqual([401, 'agent_revoked']);
    const fresh = { authorization: `Bearer ${await sg.mint(a.id)}` };
    expect((await run(fresh, { profile: 'js', code: '12' })).json().status).toBe('succeeded');
  });

  it('an agent changed elsewhere is admitted on what is read: a grant taken away refuses, given back admits', async () => {
    const a = await sg.agent();
    expect((await run(a.auth, { profile: 'js', code: '13' })).json().status).toBe('succeeded');
    const keys = redisKeys(sg.config.SANDGATE_PREFIX);
    const record = keys.agent.record(a.id);
    const stored = JSON.parse((await redis.get(record))!);
    // Taken away (as another version of the service might): the copy read last still grants js.
    await redis.set(record, JSON.stringify({ ...stored, grants: { ...stored.grants, profiles: [] } }));
    expect(refusal(await run(a.auth, { profile: 'js', code: '14' }))).toEqual([403, 'profile_not_granted']);
    // Given back: the copy read last refuses js, and its refusal waits for the agent read again.
    await redis.set(record, JSON.stringify(stored));
    const res = await run(a.auth, { profile: 'js', code: '15' });
    expect([res.statusCode, res.json().status]).toEqual([200, 'succeeded']);
    const refused = (await asAdmin(sg.app, 'GET', `/v1/audit?agentId=${a.id}&kind=execution.refused`)).json().records;
    expect(refused.map((r: { data: { refused: { code: string } } }) => r.data.refused.code)).toEqual([
      'profile_not_granted',
    ]);
  });
});
