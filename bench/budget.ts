// Added latency of the budget check: one admission (GCRA rate limit, task run cap, worst-case
// spend reserved against task and day: one Lua script on Redis time) against the real Redis, 20,000 times after warm-up.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Budget } from '../contract/task.ts';
import { createBudgetStore } from '../state/budgets.ts';
import { newWorkId } from '../state/keys.ts';
import { dropPrefix, REDIS_URL } from '../test/helpers/sandgate.ts';
import { fmt, latencies, percentile } from './lib.ts';

const CHECKS = Number(process.env.BENCH_CHECKS ?? 20_000);

export async function main(): Promise<void> {
  const prefix = `sgbench-${randomBytes(4).toString('hex')}`;
  const redis = new Redis(REDIS_URL);
  try {
    const budgets = createBudgetStore(redis, prefix, 3600);
    const task = await budgets.createTask(
      'ag_bench00000001',
      'bench',
      Budget.parse({ maxRuns: 1_000_000, maxSpend: 1e6 }),
    );
    const limits = { runsPerMinute: 1e7, toolCallsPerMinute: 1e7, spendPerDay: 1e6 };
    const check = async () => {
      const a = await budgets.admit({
        id: newWorkId('ex', 'ag_bench00000001'), // an id in the agent's slot, as the service makes them
        kind: 'run',
        agentId: 'ag_bench00000001',
        limits,
        taskId: task.id,
        worstCase: 0.001,
      });
      if (!a.ok) throw new Error(`refused: ${JSON.stringify(a)}`);
    };
    for (let i = 0; i < 2000; i++) await check();
    const us = (await latencies(CHECKS, check)).map((ms) => ms * 1000);
    console.log(
      `budget benchmark: ${CHECKS} admissions (rate limit + task cap + spend reservation), one Lua call each`,
    );
    console.log(
      `admission p50 ${fmt(percentile(us, 50), 1)} µs, p99 ${fmt(percentile(us, 99), 1)} µs (target p50 <= 250 µs)`,
    );
  } finally {
    redis.disconnect();
    await dropPrefix(prefix);
  }
}
