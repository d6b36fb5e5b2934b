// Spend: the worst case of a run is reserved against the task and the agent's day before it is
// admitted, settled at its measured cost after it ends, refunded in full when it never ran; a
// task whose budget is spent cancels its queued work.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Budget } from '../../contract/task.ts';
import { createBudgetStore } from '../../state/budgets.ts';
import { dropPrefix, eventually, REDIS_URL, startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

// Worst case of one run: 1 CPU-second price × 1 s timeout = 1.0 (the isolate has one core).
const PRICED = `name: js-priced
engine: isolate
language: javascript
limits: { timeoutMs: 1000, memoryMb: 64, outputBytes: 65536, codeBytes: 65536 }
price: { perRun: 0, perCpuSecond: 1, perGbSecond: 0 }
`;

let profiles: string;
let sg: TestSandgate; // API and runner
let queueOnly: TestSandgate; // API only: its runs stay queued

beforeAll(async () => {
  profiles = await mkdtemp(join(tmpdir(), 'sandgate-priced-'));
  await writeFile(join(profiles, 'js-priced.yaml'), PRICED);
  sg = await startSandgate({ SANDGATE_PROFILES_DIR: profiles });
  queueOnly = await startSandgate({ SANDGATE_PROFILES_DIR: profiles }, 'api');
});
afterAll(async () => {
  await queueOnly?.stop();
  await sg?.stop();
  await rm(profiles, { recursive: true, force: true });
});

async function agentOn(s: TestSandgate, limits: Record<string, number> = {}) {
  const res = await s.app!.inject({
    method: 'POST',
    url: '/v1/agents',
    headers: s.admin,
    payload: { name: 'spender', grants: { profiles: ['js-priced'] }, limits: { runsPerMinute: 1000, ...limits } },
  });
  return { authorization: `Bearer ${await s.mint(res.json().id)}` };
}

async function taskOn(s: TestSandgate, auth: Record<string, string>, budget: Record<string, number>) {
  const res = await s.app!.inject({
    method: 'POST',
    url: '/v1/tasks',
    headers: auth,
    payload: { goal: 'spend', budget },
  });
  expect(res.statusCode).toBe(201);
  return res.json().id as string;
}

const run = (s: TestSandgate, auth: Record<string, string>, taskId: string | undefined, code = '1', wait = false) =>
  s.app!.inject({
    method: 'POST',
    url: `/v1/executions${wait ? '?wait=true' : ''}`,
    headers: auth,
    payload: { profile: 'js-priced', code, ...(taskId && { taskId }) },
  });

const taskOf = async (s: TestSandgate, auth: Record<string, string>, id: string) =>
  (await s.app!.inject({ url: `/v1/tasks/${id}`, headers: auth })).json();

describe('reserve, then settle', () => {
  it('admits only what the worst case leaves room for, then settles the measured cost and frees the rest', async () => {
    const auth = await agentOn(sg);
    const task = await taskOn(sg, auth, { maxSpend: 2.5 });
    const busy = 'const end = Date.now() + 150; while (Date.now() < end) {} 1';
    const answers = await Promise.all([1, 2, 3].map(() => run(sg, auth, task, busy)));
    const codes = answers.map((a) => a.statusCode).sort();
    expect(codes).toEqual([202, 202, 402]);
    const refused = answers.find((a) => a.statusCode === 402)!.json().error;
    expect(refused.code).toBe('budget_exceeded');
    expect(refused.message).toMatch(/^maxSpend: .* 0\.5 left .* worst case of this request is 1$/);

    const ids = answers.filter((a) => a.statusCode === 202).map((a) => a.json().id as string);
    const runs = await Promise.all(
      ids.map((id) =>
        eventually(async () => {
          const e = (await sg.app!.inject({ url: `/v1/executions/${id}`, headers: auth })).json();
          return e.status === 'succeeded' ? e : undefined;
        }),
      ),
    );
    const t = await taskOf(sg, auth, task);
    const charged = runs.reduce((n, e) => n + e.usage.cost, 0);
    expect(charged).toBeGreaterThan(0.2); // two runs of >= 150 ms of CPU at 1 per CPU-second
    expect(charged).toBeLessThan(2);
    expect(t.used.spend).toBeCloseTo(charged, 9);
    expect(t.reserved.spend).toBe(0);
    // The unused reservation came back: another worst case of 1.0 fits again.
    expect((await run(sg, auth, task, '1', true)).statusCode).toBe(200);
  });

  it('cancelling a queued run refunds its reservation and the run itself', async () => {
    const auth = await agentOn(queueOnly);
    const task = await taskOn(queueOnly, auth, { maxSpend: 5, maxRuns: 5 });
    const queued = await run(queueOnly, auth, task);
    expect(queued.statusCode).toBe(202);
    expect(await taskOf(queueOnly, auth, task)).toMatchObject({ used: { runs: 1, spend: 0 }, reserved: { spend: 1 } });

    const del = await queueOnly.app!.inject({
      method: 'DELETE',
      url: `/v1/executions/${queued.json().id}`,
      headers: auth,
    });
    expect(del.json().status).toBe('cancelled');
    expect(await taskOf(queueOnly, auth, task)).toMatchObject({ used: { runs: 0, spend: 0 }, reserved: { spend: 0 } });
  });

  it('refuses a run whose worst case does not fit in the agent day (402 naming spendPerDay)', async () => {
    const auth = await agentOn(queueOnly, { spendPerDay: 1.5 });
    expect((await run(queueOnly, auth, undefined)).statusCode).toBe(202);
    const second = await run(queueOnly, auth, undefined);
    expect(second.statusCode).toBe(402);
    expect(second.json().error.message).toMatch(/^spendPerDay: this agent has 0\.5 left today/);
  });

  it('a task whose spend is passed cancels its queued runs, refunds them and stays exhausted', async () => {
    const auth = await agentOn(queueOnly);
    const task = await taskOn(queueOnly, auth, { maxSpend: 3 });
    const ids = [];
    for (let i = 0; i < 2; i++) ids.push((await run(queueOnly, auth, task)).json().id as string);

    const usage = await queueOnly.app!.inject({
      method: 'POST',
      url: `/v1/tasks/${task}/usage`,
      headers: auth,
      payload: { tokens: 1000, cost: 3.5 },
    });
    expect(usage.statusCode).toBe(402);
    expect(usage.json().error.message).toMatch(/^maxSpend:/);
    for (const id of ids) {
      const e = (await queueOnly.app!.inject({ url: `/v1/executions/${id}`, headers: auth })).json();
      expect(e).toMatchObject({ status: 'cancelled', error: { code: 'budget_exceeded' } });
    }
    expect(await taskOf(queueOnly, auth, task)).toMatchObject({
      status: 'exhausted',
      used: { runs: 0, spend: 3.5 },
      reserved: { spend: 0 },
    });
    expect((await run(queueOnly, auth, task)).statusCode).toBe(402);
  });
});

describe('budget store settlement', () => {
  const prefix = `sgtest-settle-${process.pid}`;
  const redis = new Redis(REDIS_URL);
  afterAll(async () => {
    redis.disconnect();
    await dropPrefix(prefix);
  });
  const limits = { runsPerMinute: 1000, toolCallsPerMinute: 1000, spendPerDay: 100 };

  it('is idempotent, never charges above the reservation, and marks the task exhausted at its cap', async () => {
    const budgets = createBudgetStore(redis, prefix, 60);
    const task = await budgets.createTask('ag_settle', 'g', Budget.parse({ maxSpend: 2 }));
    for (const id of ['a', 'b']) {
      expect(
        await budgets.admit({ id, kind: 'run', agentId: 'ag_settle', limits, taskId: task.id, worstCase: 1 }),
      ).toEqual({ ok: true });
    }
    expect(await budgets.settle({ id: 'a', agentId: 'ag_settle', taskId: task.id, cost: 7 })).toEqual({
      settled: true,
      exhausted: null,
      cost: 1,
    }); // charged at most what was reserved
    expect(await budgets.settle({ id: 'a', agentId: 'ag_settle', taskId: task.id, cost: 7 })).toEqual({
      settled: false,
      exhausted: null,
      cost: 0,
    });
    expect((await budgets.getTask(task.id))!.used.spend).toBe(1); // capped at the reservation of 1
    expect(await budgets.settle({ id: 'b', agentId: 'ag_settle', taskId: task.id, cost: 1 })).toEqual({
      settled: true,
      exhausted: 'maxSpend',
      cost: 1,
    });
    expect(await budgets.getTask(task.id)).toMatchObject({
      status: 'exhausted',
      used: { spend: 2 },
      reserved: { spend: 0 },
    });
  });

  it('counts tool calls apart from runs, with their own per-minute limit', async () => {
    const budgets = createBudgetStore(redis, prefix, 60);
    const task = await budgets.createTask('ag_tools', 'g', Budget.parse({ maxToolCalls: 1, maxRuns: 5 }));
    const tight = { ...limits, toolCallsPerMinute: 2 };
    const admit = (id: string, kind: 'run' | 'tool', taskId: string | null) =>
      budgets.admit({ id, kind, agentId: 'ag_tools', limits: tight, taskId, worstCase: 0 });
    expect(await admit('t1', 'tool', task.id)).toEqual({ ok: true });
    expect(await admit('t2', 'tool', task.id)).toMatchObject({ ok: false, reason: 'exhausted', cap: 'maxToolCalls' });
    expect(await admit('r1', 'run', null)).toEqual({ ok: true }); // runs are counted apart
    expect(await admit('t3', 'tool', null)).toEqual({ ok: true });
    expect(await admit('t4', 'tool', null)).toMatchObject({ ok: false, reason: 'rate' });
  });
});
