// Redis goes away: readiness says so (503) and requests fail with 503, not 500 or a hang, and
// nothing is admitted that was not metered.
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisKeys } from '../../state/keys.ts';
import { luaSource } from '../../state/scripts.ts';
import { startRedis } from '../helpers/processes.ts';
import { startReplyDelayProxy } from '../helpers/reply-delay-proxy.ts';
import { eventually, startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

let sg: TestSandgate;
let redis: Awaited<ReturnType<typeof startRedis>>;
let auth: Record<string, string>;

beforeAll(async () => {
  redis = await startRedis();
  sg = await startSandgate({ REDIS_URL: redis.url });
  ({ auth } = await sg.agent());
});
afterAll(async () => {
  await redis.stop();
  await Promise.race([sg.close(), new Promise((r) => setTimeout(r, 5000))]);
});

describe('Redis unreachable', () => {
  it('turns readiness and requests into 503 dependency errors', async () => {
    const before = await sg.app!.inject({
      method: 'POST',
      url: '/v1/executions?wait=true',
      headers: auth,
      payload: { profile: 'js', code: '1' },
    });
    expect(before.statusCode).toBe(200);
    await redis.stop();

    const ready = await sg.app!.inject('/readyz');
    expect(ready.statusCode).toBe(503);
    expect(ready.json().checks.redis).not.toBe('ok');

    const res = await sg.app!.inject({
      method: 'POST',
      url: '/v1/executions',
      headers: auth,
      payload: { profile: 'js', code: '1' },
    });
    expect(res.statusCode).toBe(503);
    expect(res.json().error.code).toBe('dependency_unavailable');
    expect((await sg.app!.inject('/healthz')).statusCode).toBe(200);
  });
});

describe('Redis stopped in the middle of admissions', () => {
  it('answers 503 for what it could not meter, and every 202 it gave was counted against the task', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sandgate-redis-aof-'));
    const persistent = await startRedis({ persistDir: dir });
    const api = await startSandgate({ REDIS_URL: persistent.url }, 'api');
    try {
      const agent = await api.app!.inject({
        method: 'POST',
        url: '/v1/agents',
        headers: api.admin,
        payload: { name: 'burst', grants: { profiles: ['js'] }, limits: { runsPerMinute: 100_000 } },
      });
      const agentId = agent.json().id as string;
      const auth = { authorization: `Bearer ${await api.mint(agentId)}` };
      const task = (
        await api.app!.inject({
          method: 'POST',
          url: '/v1/tasks',
          headers: auth,
          payload: { goal: 'burst', budget: { maxRuns: 10_000 } },
        })
      ).json().id;

      // Ten requests in flight at any time; Redis is killed after the 30th answer.
      const codes: number[] = [];
      const lanes = Array.from({ length: 10 }, async () => {
        while (codes.length < 150) {
          const res = await api.app!.inject({
            method: 'POST',
            url: '/v1/executions',
            headers: auth,
            payload: { profile: 'js', code: '1', taskId: task },
          });
          codes.push(res.statusCode);
          if (codes.length === 30) await persistent.stop();
        }
      });
      await Promise.all(lanes);
      expect(codes.filter((c) => c !== 202 && c !== 503)).toEqual([]);
      const admitted = codes.filter((c) => c === 202).length;
      expect(admitted).toBeGreaterThanOrEqual(30);
      expect(codes.filter((c) => c === 503).length).toBeGreaterThan(100);

      await persistent.restart();
      const direct = new Redis(persistent.url);
      try {
        const keys = redisKeys(api.config.SANDGATE_PREFIX);
        const queued = async () => {
          const ids = await direct.smembers(keys.agent.executions(agentId));
          const statuses = await Promise.all(ids.map((id) => direct.hget(keys.execution.record(id), 'status')));
          return statuses.filter((s) => s === 'queued').length;
        };
        // Each 202 is a queued record; nothing ran or was queued without an answer saying so. A
        // record Redis made while the connection dropped (its creation went unanswered, so the
        // request got 503) is taken back once Redis is back: wait for that, then count exactly.
        await eventually(async () => ((await queued()) === admitted ? true : undefined), 15_000).catch(() => {});
        expect(await queued()).toBe(admitted);
        // Metered, never unmetered: every admitted run was counted (a run counted whose answer was
        // lost to the outage errs on the safe side).
        expect(Number(await direct.hget(keys.task.record(task), 'runs'))).toBeGreaterThanOrEqual(admitted);
      } finally {
        direct.disconnect();
      }
    } finally {
      await persistent.stop();
      await Promise.race([api.close(), new Promise((r) => setTimeout(r, 5000))]);
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('a record whose creation went unanswered', () => {
  it('is taken back once Redis answers again: the 503 leaves no queued record', async () => {
    const server = await startRedis();
    const proxy = await startReplyDelayProxy({ host: '127.0.0.1', port: Number(new URL(server.url).port) });
    // Answers that take over 300 ms are given up on (503); the proxy holds them back for 1.5 s.
    const api = await startSandgate({ REDIS_URL: proxy.url, SANDGATE_REDIS_TIMEOUT_MS: '300' }, 'api');
    const direct = new Redis(server.url);
    try {
      const { id: agentId, auth } = await api.agent();
      const keys = redisKeys(api.config.SANDGATE_PREFIX);
      const statuses = async () => {
        const ids = await direct.smembers(keys.agent.executions(agentId));
        return Promise.all(ids.map((id) => direct.hget(keys.execution.record(id), 'status')));
      };
      const run = (code: string) =>
        api.app!.inject({ method: 'POST', url: '/v1/executions', headers: auth, payload: { profile: 'js', code } });
      // Redis has the script by now (a fresh one would answer the first EVALSHA with NOSCRIPT).
      expect((await run('0')).statusCode).toBe(202);
      const createSha = createHash('sha1').update(luaSource('execution-create-7')).digest('hex');
      proxy.armOnce(createSha, 1500);
      const res = await run('1');
      expect(proxy.held()).toBe(1);
      expect(res.statusCode).toBe(503);
      // Redis did make it (the command ran; only its answer was late) ...
      expect(await statuses()).toEqual(['queued', 'queued']);
      // ... and it is taken back once answers flow again: nothing queued that was answered 503.
      const settled = async () => ((await statuses()).filter((s) => s === 'queued').length === 1 ? true : undefined);
      await eventually(settled, 10_000).catch(() => {});
      expect((await statuses()).sort()).toEqual(['queued', 'rejected']);
      // The service works on: the next request is admitted.
      expect((await run('2')).statusCode).toBe(202);
    } finally {
      direct.disconnect();
      await Promise.race([api.close(), new Promise((r) => setTimeout(r, 5000))]);
      await proxy.close();
      await server.stop();
    }
  });
});

// Redis goes away after the record is made and before its job is queued (or its approval's expiry
// scheduled): the request is answered 503, and what was made is taken back once Redis is back,
// though the first take-back, tried at once, found Redis gone too.
describe('Redis gone between a record and its job', () => {
  let server: Awaited<ReturnType<typeof startRedis>>;
  let proxy: Awaited<ReturnType<typeof startReplyDelayProxy>>;
  let api: TestSandgate;
  let direct: Redis;
  beforeAll(async () => {
    server = await startRedis();
    proxy = await startReplyDelayProxy({ host: '127.0.0.1', port: Number(new URL(server.url).port) });
    api = await startSandgate(
      {
        REDIS_URL: proxy.url,
        SANDGATE_REDIS_TIMEOUT_MS: '300',
        SANDGATE_TOOLS_DIR: 'tools',
        // Configured, never reached: the call waits for a human, who is never asked here.
        SANDGATE_MAIL_GATEWAY_URL: 'http://127.0.0.1:9/send',
        SANDGATE_MAIL_GATEWAY_TOKEN: 'gateway-token-never-used-0123456789',
      },
      'api',
    );
    direct = new Redis(server.url);
  });
  afterAll(async () => {
    direct?.disconnect();
    await Promise.race([api?.close(), new Promise((r) => setTimeout(r, 5000))]);
    await proxy?.close();
    await server?.stop();
  });
  const keys = () => redisKeys(api.config.SANDGATE_PREFIX);
  const statusesOf = async (set: string, record: (id: string) => string) =>
    Promise.all((await direct.smembers(set)).map((id) => direct.hget(record(id), 'status')));
  const until = <T>(f: () => Promise<T>, want: (v: T) => boolean) =>
    eventually(async () => ((await want(await f())) ? true : undefined), 15_000).catch(() => {});

  it('a run: its record ends rejected and its reservation is given back', async () => {
    const { id: agentId, auth } = await api.agent();
    const task = (
      await api.app!.inject({ method: 'POST', url: '/v1/tasks', headers: auth, payload: { goal: 'cut' } })
    ).json().id as string;
    const run = (code: string) =>
      api.app!.inject({
        method: 'POST',
        url: '/v1/executions',
        headers: auth,
        payload: { profile: 'js', code, taskId: task },
      });
    expect((await run('0')).statusCode).toBe(202);
    // The job's JSON carries the code as it came; the record and the audit record do not.
    const cutsBefore = proxy.cut();
    proxy.cutOnce('"code":"cut-7f3a"', 800);
    const res = await run('cut-7f3a');
    expect(proxy.cut()).toBe(cutsBefore + 1);
    expect(res.statusCode).toBe(503);
    const statuses = () => statusesOf(keys().agent.executions(agentId), keys().execution.record);
    await until(statuses, (s) => s.includes('rejected'));
    expect((await statuses()).sort()).toEqual(['queued', 'rejected']);
    // The 503'd run is no run of the task's: only the 202 counts.
    const runs = () => direct.hget(keys().task.record(task), 'runs').then(Number);
    await until(runs, (n) => n === 1);
    expect(await runs()).toBe(1);
    const again = await eventually(async () => {
      const r = await run('2');
      return r.statusCode === 202 ? r : undefined;
    }, 10_000);
    expect(again.statusCode).toBe(202);
  });

  it('an irreversible tool call whose creation went unanswered: taken back, not left for a human', async () => {
    const { id: agentId, auth } = await api.agent({ tools: ['send_email'] });
    const ask = () =>
      api.app!.inject({
        method: 'POST',
        url: '/v1/actions',
        headers: auth,
        payload: { tool: 'send_email', args: { to: 'ops@example.com', subject: 'Deploy', body: 'Go.' } },
      });
    // Redis has the script by now (a fresh one would answer the first EVALSHA with NOSCRIPT).
    expect((await ask()).statusCode).toBe(202);
    const heldBefore = proxy.held();
    proxy.armOnce(createHash('sha1').update(luaSource('action-create-awaiting-4')).digest('hex'), 1500);
    const res = await ask();
    expect(proxy.held()).toBe(heldBefore + 1);
    expect(res.statusCode).toBe(503);
    const statuses = () => statusesOf(keys().agent.actions(agentId), keys().action.record);
    await until(statuses, (s) => s.includes('cancelled'));
    expect((await statuses()).sort()).toEqual(['awaiting_approval', 'cancelled']);
    // The service works on: the next call is admitted.
    const again = await eventually(async () => {
      const r = await ask();
      return r.statusCode === 202 ? r : undefined;
    }, 10_000);
    expect(again.statusCode).toBe(202);
  });

  it('an irreversible tool call: no approval is left for a human to grant', async () => {
    const { id: agentId, auth } = await api.agent({ tools: ['send_email'] });
    const ask = (to: string) =>
      api.app!.inject({
        method: 'POST',
        url: '/v1/actions',
        headers: auth,
        payload: { tool: 'send_email', args: { to, subject: 'Invoice', body: 'Pay now.' } },
      });
    // Only the approval's expiry job names its approval so (the action's record and audit do not).
    const cutsBefore = proxy.cut();
    proxy.cutOnce('{"approvalId":"apr_', 800);
    const res = await ask('cfo@example.com');
    expect(proxy.cut(), res.body).toBe(cutsBefore + 1);
    expect(res.statusCode).toBe(503);
    const ids = () => direct.smembers(keys().agent.actions(agentId));
    const statuses = () => statusesOf(keys().agent.actions(agentId), keys().action.record);
    await until(statuses, (s) => s.length === 1 && s[0] === 'cancelled');
    expect(await statuses()).toEqual(['cancelled']);
    const [actionId] = await ids();
    const approvalId = await direct.hget(keys().action.record(actionId!), 'approvalId');
    // The approval follows its action's end by a few round trips.
    const approvalStatus = () => direct.hget(keys().action.approval(approvalId!), 'status');
    const listed = () => direct.zscore(keys().action.pendingApprovals, approvalId!);
    await until(
      async () => [await approvalStatus(), await listed()],
      ([s, l]) => s === 'cancelled' && l === null,
    );
    expect(await approvalStatus()).toBe('cancelled');
    expect(await listed()).toBeNull();
    // A human deciding it now is refused: the agent was told it failed.
    const decided = await api.app!.inject({
      method: 'POST',
      url: `/v1/approvals/${approvalId}`,
      headers: await api.principal('approver', 'alice'),
      payload: { decision: 'approve' },
    });
    expect(decided.statusCode).toBe(409);
  });
  it('an approval whose job cannot be queued: the action ends failed, not queued with no job', async () => {
    const { auth } = await api.agent({ tools: ['send_email'] });
    const res = await api.app!.inject({
      method: 'POST',
      url: '/v1/actions',
      headers: auth,
      payload: { tool: 'send_email', args: { to: 'pay@example.com', subject: 'Pay', body: 'Wire it.' } },
    });
    expect(res.statusCode).toBe(202);
    const actionId = res.json().id as string;
    const approvalId = await direct.hget(keys().action.record(actionId), 'approvalId');
    const cutsBefore = proxy.cut();
    // The approved action's job names its approval after other keys (its expiry job, first).
    proxy.cutOnce(',"approvalId":"apr_', 800);
    const decided = await api.app!.inject({
      method: 'POST',
      url: `/v1/approvals/${approvalId}`,
      headers: await api.principal('approver', 'bea'),
      payload: { decision: 'approve' },
    });
    expect(proxy.cut(), decided.body).toBe(cutsBefore + 1);
    expect(decided.statusCode).toBe(503);
    const status = () => direct.hget(keys().action.record(actionId), 'status');
    await until(status, (s) => s === 'failed');
    expect(await status()).toBe('failed');
    const outcome = JSON.parse((await direct.hget(keys().action.record(actionId), 'outcome'))!);
    expect(outcome.error.code).toBe('dependency_unavailable');
    // Its reservation is given back: it never ran.
    await until(
      () => direct.exists(keys().reservation(actionId)),
      (n) => n === 0,
    );
    expect(await direct.exists(keys().reservation(actionId))).toBe(0);
  });
  it('an approval whose answer was lost: its action still gets its audit record and its job', async () => {
    const { id: agentId, auth } = await api.agent({ tools: ['send_email'] });
    const ask = async (to: string) => {
      const res = await api.app!.inject({
        method: 'POST',
        url: '/v1/actions',
        headers: auth,
        payload: { tool: 'send_email', args: { to, subject: 'Minutes', body: 'Attached.' } },
      });
      expect(res.statusCode).toBe(202);
      const actionId = res.json().id as string;
      return { actionId, approvalId: await direct.hget(keys().action.record(actionId), 'approvalId') };
    };
    const approver = await api.principal('approver', 'cora');
    // Redis has the decision's script by now (a fresh one would answer the first EVALSHA with NOSCRIPT).
    const first = await ask('warm@example.com');
    const denied = await api.app!.inject({
      method: 'POST',
      url: `/v1/approvals/${first.approvalId}`,
      headers: approver,
      payload: { decision: 'deny' },
    });
    expect(denied.statusCode).toBe(200);
    const { actionId, approvalId } = await ask('board@example.com');
    const heldBefore = proxy.held();
    proxy.armOnce(createHash('sha1').update(luaSource('approval-decide-2')).digest('hex'), 1500);
    const decided = await api.app!.inject({
      method: 'POST',
      url: `/v1/approvals/${approvalId}`,
      headers: approver,
      payload: { decision: 'approve' },
    });
    expect(proxy.held()).toBe(heldBefore + 1);
    expect(decided.statusCode).toBe(503);
    // Redis made the decision (only its answer was late): the action is queued ...
    expect(await direct.hget(keys().action.record(actionId), 'status')).toBe('queued');
    // ... and once answers flow, what follows a decision is done: its audit record, then its job.
    const job = `{${api.config.SANDGATE_PREFIX}:actions}:actions:${actionId}`;
    await until(
      () => direct.exists(job),
      (n) => n === 1,
    );
    expect(await direct.exists(job)).toBe(1);
    const records = await eventually(async () => {
      const r = await api.app!.inject({
        url: `/v1/audit?kind=approval.decided&agentId=${agentId}`,
        headers: api.admin,
      });
      const list = r.json().records as Array<{ subject: string }>;
      return list.length >= 2 ? list : undefined;
    }, 10_000);
    expect(records.map((r) => r.subject).sort()).toEqual([first.actionId, actionId].sort());
    // The human's second try is told it is decided, and changes nothing.
    const again = await api.app!.inject({
      method: 'POST',
      url: `/v1/approvals/${approvalId}`,
      headers: approver,
      payload: { decision: 'approve' },
    });
    expect(again.statusCode).toBe(409);
  });
});
