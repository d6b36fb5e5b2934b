// Tasks and their budgets, and per-agent rate limits, in Redis. Every admission is one Lua
// script on Redis's own clock (TIME): no read-then-write in Node, so racing requests, on any
// number of API processes, can never admit more than the budget.
import type { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import type { Budget, Task } from '../../contract/task.ts';

// GCRA rate limit over one minute (burst = the per-minute limit), then the task's run cap.
// KEYS: rate, task. ARGV: per-minute limit, has-task flag.
const ADMIT_RUN = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = 60000 / tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local next_tat = tat + interval
if next_tat - now > 60000 then
  return {'rate', tostring(math.ceil((next_tat - now - 60000) / 1000))}
end
if ARGV[2] == '1' then
  if redis.call('EXISTS', KEYS[2]) == 0 then return {'no_task', '0'} end
  if redis.call('HGET', KEYS[2], 'status') ~= 'active' then return {'exhausted', 'task'} end
  local runs = tonumber(redis.call('HGET', KEYS[2], 'runs'))
  if runs >= tonumber(redis.call('HGET', KEYS[2], 'maxRuns')) then
    redis.call('HSET', KEYS[2], 'status', 'exhausted')
    return {'exhausted', 'maxRuns'}
  end
  redis.call('HINCRBY', KEYS[2], 'runs', 1)
end
redis.call('SET', KEYS[1], tostring(next_tat), 'PX', math.ceil(60000 + interval))
return {'ok', '0'}
`;

// KEYS: task. ARGV: tokens, cost. Adds the agent's reported model usage; past a cap the task is
// exhausted and the answer says which cap.
const REPORT_USAGE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'no_task', ''} end
local tokens = redis.call('HINCRBY', KEYS[1], 'tokens', ARGV[1])
local spend = tonumber(redis.call('HINCRBYFLOAT', KEYS[1], 'spend', ARGV[2]))
if tokens > tonumber(redis.call('HGET', KEYS[1], 'maxTokens')) then
  redis.call('HSET', KEYS[1], 'status', 'exhausted')
  return {'exhausted', 'maxTokens'}
end
if spend > tonumber(redis.call('HGET', KEYS[1], 'maxSpend')) then
  redis.call('HSET', KEYS[1], 'status', 'exhausted')
  return {'exhausted', 'maxSpend'}
end
return {'ok', ''}
`;

export type Admission = { ok: true } | { ok: false; reason: 'rate'; retryAfterS: number } | { ok: false; reason: 'exhausted'; cap: string } | { ok: false; reason: 'no_task' };

export interface BudgetStore {
  createTask(agentId: string, goal: string, budget: Budget): Promise<Task>;
  getTask(id: string): Promise<Task | undefined>;
  /** Rate limit and task cap for one run, atomically; counts the run when admitted. */
  admitRun(agentId: string, runsPerMinute: number, taskId: string | null): Promise<Admission>;
  reportUsage(taskId: string, tokens: number, cost: number): Promise<{ ok: true } | { ok: false; cap: string } | { ok: false; missing: true }>;
}

type Scripted = Redis & {
  sandgateAdmitRun(rate: string, task: string, perMinute: string, hasTask: string): Promise<[string, string]>;
  sandgateReportUsage(task: string, tokens: string, cost: string): Promise<[string, string]>;
};

const round = (n: number) => Math.round(n * 1e9) / 1e9;

export function createBudgetStore(redis: Redis, prefix: string, taskTtlSeconds: number): BudgetStore {
  if (!('sandgateAdmitRun' in redis)) {
    redis.defineCommand('sandgateAdmitRun', { numberOfKeys: 2, lua: ADMIT_RUN });
    redis.defineCommand('sandgateReportUsage', { numberOfKeys: 1, lua: REPORT_USAGE });
  }
  const scripted = redis as Scripted;
  const taskKey = (id: string) => `${prefix}:task:${id}`;

  const getTask = async (id: string): Promise<Task | undefined> => {
    const h = await redis.hgetall(taskKey(id));
    if (!h.agentId) return undefined;
    const budget = JSON.parse(h.budget!) as Budget;
    const used = { runs: Number(h.runs), toolCalls: Number(h.toolCalls), tokens: Number(h.tokens), spend: round(Number(h.spend)) };
    return {
      id,
      agentId: h.agentId,
      goal: h.goal ?? '',
      status: h.status === 'active' ? 'active' : 'exhausted',
      budget,
      used,
      remaining: {
        runs: Math.max(0, budget.maxRuns - used.runs),
        toolCalls: Math.max(0, budget.maxToolCalls - used.toolCalls),
        tokens: Math.max(0, budget.maxTokens - used.tokens),
        spend: Math.max(0, round(budget.maxSpend - used.spend)),
      },
      createdAt: h.createdAt ?? '',
    };
  };

  return {
    async createTask(agentId, goal, budget) {
      const id = `task_${randomBytes(12).toString('base64url')}`;
      await redis
        .multi()
        .hset(taskKey(id), {
          agentId,
          goal,
          status: 'active',
          budget: JSON.stringify(budget),
          ...budget,
          runs: 0,
          toolCalls: 0,
          tokens: 0,
          spend: 0,
          createdAt: new Date().toISOString(),
        })
        .expire(taskKey(id), taskTtlSeconds)
        .exec();
      return (await getTask(id))!;
    },
    getTask,
    async admitRun(agentId, runsPerMinute, taskId) {
      const [verdict, detail] = await scripted.sandgateAdmitRun(
        `${prefix}:rate:runs:${agentId}`,
        taskKey(taskId ?? 'none'),
        String(runsPerMinute),
        taskId ? '1' : '0',
      );
      if (verdict === 'ok') return { ok: true };
      if (verdict === 'rate') return { ok: false, reason: 'rate', retryAfterS: Math.max(1, Number(detail)) };
      if (verdict === 'no_task') return { ok: false, reason: 'no_task' };
      return { ok: false, reason: 'exhausted', cap: detail };
    },
    async reportUsage(taskId, tokens, cost) {
      const [verdict, cap] = await scripted.sandgateReportUsage(taskKey(taskId), String(tokens), String(cost));
      if (verdict === 'ok') return { ok: true };
      if (verdict === 'no_task') return { ok: false, missing: true };
      return { ok: false, cap };
    },
  };
}
