// The cost of watching: (1) the admission-side detectors (one Lua call: holds, throttle, loop,
// spike, novelty, tainted flow) against the real Redis: what they add to an admission, sent beside
// the budget's reservation in one round trip as the service sends them, and their call alone;
// (2) detection to delivery: from the sending of the request that trips the loop detector to when a
// loopback webhook receiver has the alert, through a real service process.
import { randomBytes } from 'node:crypto';
import { Budget } from '../contract/task.ts';
import { WatchSettings } from '../contract/watch.ts';
import { createBudgetStore } from '../state/budgets.ts';
import { createRedisClient } from '../state/redis-client.ts';
import { createWatchStore } from '../state/watch.ts';
import { startFakeEndpoint } from '../test/helpers/fake-endpoint.ts';
import { dropPrefix, REDIS_URL } from '../test/helpers/sandgate.ts';
import { fmt, percentile, startService } from './lib.ts';

const CHECKS = Number(process.env.BENCH_CHECKS ?? 20_000);
const TRIPS = Number(process.env.BENCH_TRIPS ?? 40);

async function admissionCost(): Promise<void> {
  const prefix = `sgbench-${randomBytes(4).toString('hex')}`;
  // As the service's connection: commands issued in one tick go out in one write.
  const redis = createRedisClient(REDIS_URL, { enableAutoPipelining: true });
  try {
    const watch = createWatchStore(redis, prefix);
    const budgets = createBudgetStore(redis, prefix, 3600);
    const settings = WatchSettings.parse({});
    const task = await budgets.createTask('ag_bench00000001', 'bench', Budget.parse({ maxRuns: 1e6, maxSpend: 1e6 }));
    const limits = { runsPerMinute: 1e7, toolCallsPerMinute: 1e7, spendPerDay: 1e6 };
    let n = 0;
    // Varied calls, as a real agent makes them (a loop would trip the detector and pause the task).
    const watchOnce = async () => {
      const i = n++;
      const r = await watch.admit(
        {
          id: `ex_bench${i}`,
          agentId: 'ag_bench00000001',
          taskId: task.id,
          inputHash: `h${i}`,
          targets: ['profile:js'],
          perMinute: 1e7,
          tainted: false,
          irreversible: false,
        },
        settings,
      );
      if (r.kind !== 'ok') throw new Error(`refused: ${JSON.stringify(r)}`);
    };
    const budgetOnce = async () => {
      const a = await budgets.admit({
        id: `ex_b${n++}`,
        kind: 'run',
        agentId: 'ag_bench00000001',
        limits,
        taskId: task.id,
        worstCase: 0.001,
      });
      if (!a.ok) throw new Error('refused');
    };
    for (let i = 0; i < 2000; i++) await watchOnce();
    // Interleaved, so a drift of the machine's speed falls on all three alike.
    const alone: number[] = [];
    const together: number[] = [];
    const own: number[] = [];
    const time = async (into: number[], f: () => Promise<unknown>) => {
      const t = performance.now();
      await f();
      into.push((performance.now() - t) * 1000);
    };
    for (let i = 0; i < CHECKS; i++) {
      await time(alone, budgetOnce);
      await time(together, () => Promise.all([watchOnce(), budgetOnce()]));
      await time(own, watchOnce);
    }
    for (const a of [alone, together, own]) a.sort((x, y) => x - y);
    const p = (a: number[], q: number) => fmt(percentile(a, q), 1);
    const added = (q: number) => fmt(percentile(together, q) - percentile(alone, q), 1);
    console.log(`admission, ${CHECKS} rounds, sequential, on an auto-pipelining connection like the service's:`);
    console.log(`  budget reservation alone         p50 ${p(alone, 50)} µs, p99 ${p(alone, 99)} µs`);
    console.log(
      `  with the watch detectors beside  p50 ${p(together, 50)} µs, p99 ${p(together, 99)} µs  (one round trip, as the service sends them)`,
    );
    console.log(
      `  added by the detectors            p50 ${added(50)} µs, p99 ${added(99)} µs  (target p50 <= 100 µs over the admission)`,
    );
    console.log(
      `  the detectors' call on its own    p50 ${p(own, 50)} µs, p99 ${p(own, 99)} µs  (a round trip of its own)`,
    );
  } finally {
    redis.disconnect();
    await dropPrefix(prefix);
  }
}

async function detectionToDelivery(): Promise<void> {
  const receiver = await startFakeEndpoint();
  const svc = await startService(
    {
      SANDGATE_PROFILES_DIR: 'test/fixtures/profiles-js',
      SANDGATE_ALERT_WEBHOOK: `${receiver.url}/hook`,
      SANDGATE_WATCH: '{"loop":{"repeats":3}}',
    },
    'warn',
  );
  const lat: number[] = [];
  try {
    for (let trip = 0; trip < TRIPS; trip++) {
      const auth = await svc.agentAuth(['js']);
      const task = await svc.pool.request({
        method: 'POST',
        path: '/v1/tasks',
        headers: { authorization: auth, 'content-type': 'application/json' },
        body: JSON.stringify({ goal: 'trip' }),
      });
      const { id: taskId } = (await task.body.json()) as { id: string };
      const seen = receiver.received.length;
      let trippedAt = 0;
      for (let i = 0; i < 5 && !trippedAt; i++) {
        // From the moment the tripping request is sent: the alert can beat its own 423 reply.
        const sentAt = Date.now();
        const res = await svc.pool.request({
          method: 'POST',
          path: '/v1/executions',
          headers: { authorization: auth, 'content-type': 'application/json' },
          body: JSON.stringify({ profile: 'js', code: `"trip ${trip}"`, taskId }),
        });
        await res.body.dump();
        if (res.statusCode === 423) trippedAt = sentAt;
      }
      if (!trippedAt) throw new Error('the loop detector did not trip');
      const until = Date.now() + 10_000;
      while (receiver.received.length === seen && Date.now() < until) await new Promise((r) => setTimeout(r, 2));
      const hit = receiver.received[seen];
      if (!hit) throw new Error('no delivery within 10 s');
      lat.push(hit.at - trippedAt);
    }
  } finally {
    await svc.stop();
    await receiver.close();
  }
  lat.sort((a, b) => a - b);
  console.log(`detection to delivery, ${TRIPS} loops tripped through a service process to a loopback webhook:`);
  console.log(
    `  p50 ${fmt(percentile(lat, 50), 1)} ms, p99 ${fmt(percentile(lat, 99), 1)} ms  (target p99 <= 2000 ms)`,
  );
}

export async function main(): Promise<void> {
  console.log('watch benchmark');
  await admissionCost();
  await detectionToDelivery();
}
