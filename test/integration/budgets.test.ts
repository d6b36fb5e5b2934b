// Task budgets and per-agent rate limits, admitted atomically in Redis: exact under races and
// across API processes.
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeSandgate, type Sandgate } from '../../bin/compose.ts';
import { startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

let sg: TestSandgate;
let second: Sandgate;

beforeAll(async () => {
  sg = await startSandgate();
  second = await composeSandgate({ config: sg.config, mode: 'api', logger: pino({ level: 'silent' }) });
});
afterAll(async () => {
  await second?.close();
  await sg?.stop();
});

async function agentWith(runsPerMinute: number) {
  const res = await sg.app!.inject({
    method: 'POST',
    url: '/v1/agents',
    headers: sg.admin,
    payload: { name: 'budgeted', grants: { profiles: ['js'] }, limits: { runsPerMinute } },
  });
  const id = res.json().id as string;
  return { id, auth: { authorization: `Bearer ${await sg.mint(id)}` } };
}

async function task(auth: Record<string, string>, budget: Record<string, number>) {
  const res = await sg.app!.inject({
    method: 'POST',
    url: '/v1/tasks',
    headers: auth,
    payload: { goal: 'test the budget', budget },
  });
  expect(res.statusCode).toBe(201);
  return res.json().id as string;
}

const run = (auth: Record<string, string>, taskId?: string, app = sg.app) =>
  app!.inject({
    method: 'POST',
    url: '/v1/executions',
    headers: auth,
    payload: { profile: 'js', code: '1', ...(taskId && { taskId }) },
  });

describe('task budgets', () => {
  it('a task with maxRuns 3 runs three times, then answers 402 budget_exceeded', async () => {
    const { auth } = await agentWith(1000);
    const id = await task(auth, { maxRuns: 3 });
    for (let i = 0; i < 3; i++) expect((await run(auth, id)).statusCode).toBe(202);
    const fourth = await run(auth, id);
    expect(fourth.statusCode).toBe(402);
    expect(fourth.json().error).toMatchObject({ code: 'budget_exceeded' });
    expect(fourth.json().error.message).toContain('maxRuns');
    const t = (await sg.app!.inject({ url: `/v1/tasks/${id}`, headers: auth })).json();
    expect(t).toMatchObject({ status: 'exhausted', used: { runs: 3 }, remaining: { runs: 0 } });
  });

  it('200 concurrent runs on two API processes against a budget of 10 admit exactly 10', async () => {
    const { auth } = await agentWith(100_000);
    const id = await task(auth, { maxRuns: 10 });
    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, i) => run(auth, id, i % 2 ? sg.app : second.app)),
    );
    const codes = answers.map((a) => a.statusCode);
    expect(codes.filter((c) => c === 202)).toHaveLength(10);
    expect(codes.filter((c) => c === 402)).toHaveLength(190);
  });

  it('reported model usage past maxTokens exhausts the task: 402, and runs stop', async () => {
    const { auth } = await agentWith(1000);
    const id = await task(auth, { maxTokens: 1000, maxRuns: 50 });
    const ok = await sg.app!.inject({
      method: 'POST',
      url: `/v1/tasks/${id}/usage`,
      headers: auth,
      payload: { tokens: 600, cost: 0.01 },
    });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().remaining).toMatchObject({ tokens: 400 });
    const over = await sg.app!.inject({
      method: 'POST',
      url: `/v1/tasks/${id}/usage`,
      headers: auth,
      payload: { tokens: 600 },
    });
    expect(over.statusCode).toBe(402);
    expect(over.json().error.message).toContain('maxTokens');
    expect((await run(auth, id)).statusCode).toBe(402);
  });

  it("hides another agent's task and refuses runs on it", async () => {
    const owner = await agentWith(1000);
    const other = await agentWith(1000);
    const id = await task(owner.auth, { maxRuns: 5 });
    expect((await sg.app!.inject({ url: `/v1/tasks/${id}`, headers: other.auth })).statusCode).toBe(404);
    expect((await run(other.auth, id)).statusCode).toBe(404);
    expect((await run(owner.auth, 'task_doesnotexist')).statusCode).toBe(404);
  });
});

describe('rate limits', () => {
  it('an agent with runsPerMinute 5 gets 429 with Retry-After on the sixth, across API processes', async () => {
    const { auth } = await agentWith(5);
    for (let i = 0; i < 5; i++) expect((await run(auth, undefined, i % 2 ? sg.app : second.app)).statusCode).toBe(202);
    const sixth = await run(auth, undefined, second.app);
    expect(sixth.statusCode).toBe(429);
    expect(sixth.json().error.code).toBe('rate_limited');
    expect(Number(sixth.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(sixth.headers['retry-after'])).toBeLessThanOrEqual(60);
  });

  it('one agent hitting its limit leaves another untouched', async () => {
    const busy = await agentWith(1);
    const calm = await agentWith(1000);
    expect((await run(busy.auth)).statusCode).toBe(202);
    expect((await run(busy.auth)).statusCode).toBe(429);
    expect((await run(calm.auth)).statusCode).toBe(202);
  });
});
