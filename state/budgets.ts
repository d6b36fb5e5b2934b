// Tasks and their budgets, per-agent rate limits and daily spend, in Redis. Every admission is
// one Lua script (lua/budget-*.lua): no read-then-write in Node.

import type { AgentLimits } from '../contract/agent.ts';
import { fromNanos, toNanos } from '../contract/money.ts';
import type { Budget, Task, TaskScope } from '../contract/task.ts';
import { execAll } from './exec-all.ts';
import { newWorkId, redisKeys } from './keys.ts';
import type { RedisClient } from './redis-client.ts';
import { defineScripts } from './scripts.ts';

export type Admission =
  | { ok: true }
  | { ok: false; reason: 'rate'; retryAfterS: number }
  | { ok: false; reason: 'exhausted'; cap: string; left?: number }
  | { ok: false; reason: 'no_task' };

export interface AdmitRequest {
  /** The run's or tool call's id: its reservation is kept under it until settled. */
  id: string;
  kind: 'run' | 'tool';
  agentId: string;
  limits: AgentLimits;
  taskId: string | null;
  /** Price × ceilings: reserved now against the task's spend and the agent's day. */
  worstCase: number;
}

export interface Settlement {
  id: string;
  agentId: string;
  taskId: string | null;
  /** The actual cost; 0 with `refund` when the work never ran. */
  cost: number;
  /** Never started (cancelled while queued): the run or tool call is given back too. */
  refund?: boolean;
}

export interface BudgetStore {
  createTask(agentId: string, goal: string, budget: Budget, scope?: TaskScope): Promise<Task>;
  getTask(id: string): Promise<Task | undefined>;
  /** Tasks newest first, of one agent or of all, that are still kept (the task TTL). */
  listTasks(q: { agentId?: string | undefined; limit: number }): Promise<Task[]>;
  /** The agent's spend of the current UTC day (Redis's clock, as admission counts it). */
  daySpend(agentId: string): Promise<{ spent: number; reserved: number }>;
  /** Rate limit, task caps and daily spend, atomically; counts and reserves when admitted. */
  admit(request: AdmitRequest): Promise<Admission>;
  /** Settles or refunds a reservation; idempotent. `exhausted` names the cap this reached; `cost` is what was charged. */
  settle(settlement: Settlement): Promise<{ settled: boolean; exhausted: string | null; cost: number }>;
  /** Marks a task as having received untrusted data, remembering from where. */
  taint(taskId: string, source: string): Promise<void>;
  reportUsage(
    taskId: string,
    agentId: string,
    limits: AgentLimits,
    tokens: number,
    cost: number,
  ): Promise<{ ok: true } | { ok: false; cap: string } | { ok: false; missing: true }>;
}

const COUNTS = { run: ['runs', 'maxRuns'], tool: ['toolCalls', 'maxToolCalls'] } as const;

export function createBudgetStore(redis: RedisClient, prefix: string, taskTtlSeconds: number): BudgetStore {
  const scripts = defineScripts(redis);
  const keys = redisKeys(prefix);
  const taskKey = keys.task.record;
  const dayKey = keys.agent.spendDay;
  const taintKey = keys.task.taint;
  const taskOf = (w: { agentId: string; taskId: string | null }) => keys.agent.task(w.agentId, w.taskId, taskKey);

  const getTask = async (id: string): Promise<Task | undefined> => {
    const [h, sources, paused] = await Promise.all([
      redis.hgetall(taskKey(id)),
      redis.lrange(taintKey(id), 0, -1),
      redis.get(keys.watch.paused(id)),
    ]);
    if (!h.agentId) return undefined;
    const budget = JSON.parse(h.budget!) as Budget;
    const spendNanos = Number(h.spend);
    const used = {
      runs: Number(h.runs),
      toolCalls: Number(h.toolCalls),
      tokens: Number(h.tokens),
      spend: fromNanos(spendNanos),
    };
    return {
      id,
      agentId: h.agentId,
      goal: h.goal ?? '',
      status: h.status === 'active' ? 'active' : 'exhausted',
      tainted: h.tainted === '1',
      taintSources: sources,
      budget,
      scope: h.scope ? (JSON.parse(h.scope) as TaskScope) : null,
      paused: paused ? JSON.parse(paused) : null,
      used,
      reserved: { spend: fromNanos(Number(h.reserved ?? 0)) },
      remaining: {
        runs: Math.max(0, budget.maxRuns - used.runs),
        toolCalls: Math.max(0, budget.maxToolCalls - used.toolCalls),
        tokens: Math.max(0, budget.maxTokens - used.tokens),
        spend: fromNanos(Math.max(0, Number(h.maxSpend) - spendNanos)),
      },
      createdAt: h.createdAt ?? '',
    };
  };

  return {
    async createTask(agentId, goal, budget, scope) {
      const id = newWorkId('task', agentId);
      const now = Date.now();
      const oldest = now - taskTtlSeconds * 1000;
      // The global index first, in its own command (its own slot): until the record exists its
      // entry names nothing, and readers skip it; a failure in between leaves only that.
      await execAll(redis.multi().zadd(keys.task.all, now, id).zremrangebyscore(keys.task.all, '-inf', oldest));
      await execAll(
        redis
          .multi()
          .hset(taskKey(id), {
            agentId,
            goal,
            status: 'active',
            budget: JSON.stringify(budget),
            ...(scope && { scope: JSON.stringify(scope) }),
            ...budget,
            maxSpend: toNanos(budget.maxSpend),
            runs: 0,
            toolCalls: 0,
            tokens: 0,
            spend: 0,
            reserved: 0,
            createdAt: new Date(now).toISOString(),
          })
          .expire(taskKey(id), taskTtlSeconds)
          // The indexes forget tasks whose records have expired, so they stay as small as the tasks kept.
          .zadd(keys.task.ofAgent(agentId), now, id)
          .zremrangebyscore(keys.task.ofAgent(agentId), '-inf', oldest)
          .expire(keys.task.ofAgent(agentId), taskTtlSeconds),
      );
      return (await getTask(id))!;
    },
    getTask,
    async listTasks({ agentId, limit }) {
      const ids = await redis.zrevrange(agentId ? keys.task.ofAgent(agentId) : keys.task.all, 0, limit - 1);
      const tasks = await Promise.all(ids.map(getTask));
      return tasks.filter((t): t is Task => t !== undefined);
    },
    async daySpend(agentId) {
      const [[seconds], [day, spent, reserved]] = await Promise.all([
        redis.time(),
        redis.hmget(dayKey(agentId), 'day', 'spent', 'reserved'),
      ]);
      const today = Math.floor(Number(seconds) / 86_400);
      return {
        spent: Number(day) === today ? fromNanos(Number(spent ?? 0)) : 0,
        reserved: fromNanos(Math.max(0, Number(reserved ?? 0))),
      };
    },
    async admit(r) {
      const [count, cap] = COUNTS[r.kind];
      const perMinute = r.kind === 'run' ? r.limits.runsPerMinute : r.limits.toolCallsPerMinute;
      const [verdict, detail, left] = await scripts.budgetAdmit(
        {
          rate: keys.agent.rate(r.kind, r.agentId),
          task: taskOf(r),
          daySpend: dayKey(r.agentId),
          reservation: keys.reservation(r.id),
        },
        {
          perMinute,
          perDayNanos: toNanos(r.limits.spendPerDay),
          costNanos: toNanos(r.worstCase),
          hasTask: r.taskId !== null,
          countField: count,
          capField: cap,
        },
      );
      if (verdict === 'ok') return { ok: true };
      if (verdict === 'rate') return { ok: false, reason: 'rate', retryAfterS: Math.max(1, Number(detail)) };
      if (verdict === 'no_task') return { ok: false, reason: 'no_task' };
      return {
        ok: false,
        reason: 'exhausted',
        cap: detail,
        ...(left !== undefined && { left: Math.max(0, fromNanos(Number(left))) }),
      };
    },
    async settle(s) {
      const [verdict, exhausted, charged] = await scripts.budgetSettle(
        { reservation: keys.reservation(s.id), task: taskOf(s), daySpend: dayKey(s.agentId) },
        { costNanos: toNanos(s.cost), refund: s.refund ?? false },
      );
      return { settled: verdict === 'ok', exhausted: exhausted || null, cost: fromNanos(Number(charged)) };
    },
    async taint(taskId, source) {
      // Only a task that exists is tainted; the first 20 sources are kept (the first one matters most).
      if (!(await redis.exists(taskKey(taskId)))) return;
      await execAll(
        redis
          .multi()
          .hset(taskKey(taskId), 'tainted', '1')
          .rpush(taintKey(taskId), source.slice(0, 500))
          .ltrim(taintKey(taskId), 0, 19)
          .expire(taintKey(taskId), taskTtlSeconds),
      );
    },
    async reportUsage(taskId, agentId, limits, tokens, cost) {
      const [verdict, cap] = await scripts.budgetReportUsage(
        { task: taskOf({ agentId, taskId }), daySpend: dayKey(agentId) },
        { tokens, costNanos: toNanos(cost), perDayNanos: toNanos(limits.spendPerDay) },
      );
      if (verdict === 'ok') return { ok: true };
      if (verdict === 'no_task') return { ok: false, missing: true };
      return { ok: false, cap };
    },
  };
}
