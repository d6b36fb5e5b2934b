// Admissions on one Redis node against a local 3-master Redis Cluster: the same budget script
// (rate limit, task cap, spend reservation) for 24 agents at once, 64 in flight, so the figure
// is what the cluster client and the spread over masters cost or give on this machine (all
// masters share its cores: this shows overhead, not the scale-out of real machines).
import { randomBytes } from 'node:crypto';
import { Budget } from '../contract/task.ts';
import { createBudgetStore } from '../state/budgets.ts';
import { newWorkId } from '../state/keys.ts';
import { createRedisClient, type RedisClient } from '../state/redis-client.ts';
import { startRedisCluster } from '../test/helpers/redis-cluster.ts';
import { dropPrefix, REDIS_URL } from '../test/helpers/sandgate.ts';
import { fmt, percentile } from './lib.ts';

const ADMISSIONS = Number(process.env.BENCH_ADMISSIONS ?? 20_000);
const AGENTS = 24;
const IN_FLIGHT = 64;

async function measure(redis: RedisClient, prefix: string): Promise<{ perS: number; p50: number; p99: number }> {
  const budgets = createBudgetStore(redis, prefix, 3600);
  const limits = { runsPerMinute: 1e7, toolCallsPerMinute: 1e7, spendPerDay: 1e6 };
  const agents = await Promise.all(
    Array.from({ length: AGENTS }, async (_, i) => {
      const agentId = `ag_bench${String(i).padStart(8, '0')}`;
      const task = await budgets.createTask(agentId, 'bench', Budget.parse({ maxRuns: 1_000_000, maxSpend: 1e6 }));
      return { agentId, taskId: task.id };
    }),
  );
  let n = 0;
  const admit = async () => {
    const { agentId, taskId } = agents[n++ % AGENTS]!;
    const id = newWorkId('ex', agentId);
    const a = await budgets.admit({ id, kind: 'run', agentId, limits, taskId, worstCase: 0.001 });
    if (!a.ok) throw new Error(`refused: ${JSON.stringify(a)}`);
  };
  const run = async (count: number) => {
    const times: number[] = [];
    let left = count;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (left-- > 0) {
          const t = performance.now();
          await admit();
          times.push(performance.now() - t);
        }
      }),
    );
    return times.sort((a, b) => a - b);
  };
  await run(2000);
  const t0 = performance.now();
  const times = await run(ADMISSIONS);
  const s = (performance.now() - t0) / 1000;
  return { perS: ADMISSIONS / s, p50: percentile(times, 50), p99: percentile(times, 99) };
}

export async function main(): Promise<void> {
  const prefix = `sgbench-${randomBytes(4).toString('hex')}`;
  const line = (what: string, r: { perS: number; p50: number; p99: number }) =>
    console.log(`${what}: ${fmt(r.perS, 0)} admissions/s, p50 ${fmt(r.p50)} ms, p99 ${fmt(r.p99)} ms`);
  console.log(`cluster benchmark: ${ADMISSIONS} admissions of ${AGENTS} agents, ${IN_FLIGHT} in flight`);
  const node = createRedisClient(REDIS_URL, { enableAutoPipelining: true });
  try {
    line('one node       ', await measure(node, prefix));
  } finally {
    node.disconnect();
    await dropPrefix(prefix);
  }
  const cluster = await startRedisCluster();
  const client = createRedisClient(cluster.url, { enableAutoPipelining: true });
  try {
    line('3-master cluster', await measure(client, prefix));
  } finally {
    client.disconnect();
    await cluster.stop();
  }
}
