// The cost of watching: (1) the admission-side detectors (one Lua call: holds, throttle, loop,
// spike, novelty, tainted flow) against the real Redis, beside the budget admission for scale;
// (2) detection to delivery: from the sending of the request that trips the loop detector to when a
// loopback webhook receiver has the alert, through a real service process.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Budget } from '../contract/task.ts';
import { WatchSettings } from '../contract/watch.ts';
import { createBudgetStore } from '../state/budgets.ts';
import { createWatchStore } from '../state/watch.ts';
import { startFakeEndpoint } from '../test/helpers/fake-endpoint.ts';
import { dropPrefix, REDIS_URL } from '../test/helpers/sandgate.ts';
import { fmt, latencies, percentile, startService } from './lib.ts';

const CHECKS = Number(process.env.BENCH_CHECKS ?? 20_000);
const TRIPS = Number(process.env.BENCH_TRIPS ?? 40);

async function admissionCost(): Promise<void> {
  const prefix = `sgbench-${randomBytes(4).toString('hex')}`;
  const redis = new Redis(REDIS_URL);
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
    const w = (await latencies(CHECKS, watchOnce)).map((ms) => ms * 1000);
    const b = (await latencies(CHECKS, budgetOnce)).map((ms) => ms * 1000);
    console.log(`admission, ${CHECKS} calls each, sequential, one Lua call each:`);
    console.log(
      `  watch detectors  p50 ${fmt(percentile(w, 50), 1)} µs, p99 ${fmt(percentile(w, 99), 1)} µs  (added to every admission; target p50 <= 100 µs)`,
    );
    console.log(`  budget (for scale) p50 ${fmt(percentile(b, 50), 1)} µs, p99 ${fmt(percentile(b, 99), 1)} µs`);
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
