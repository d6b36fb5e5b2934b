// Queue depth, read from Redis when Prometheus scrapes, so every API process reports the truth.
// `sandgate_queue_backlog` is the work no runner has taken yet (waiting, prioritized and delayed
// jobs: a paused task's or a re-tried job's wait too), what an autoscaler scales runners on;
// every API process reports the same figure, so take the max over processes, not the sum.
import type { Queue } from 'bullmq';
import { Gauge, type Registry } from 'prom-client';

const STATES = ['waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized'] as const;
const BACKLOG = ['waiting', 'prioritized', 'delayed'] as const;
type Counts = Map<string, Record<string, number>>;

export function registerQueueMetrics(registry: Registry, queues: readonly Queue[]): void {
  // Both gauges of one scrape share one read of the counts (the registry collects them side by side).
  let last: { at: number; counts: Promise<Counts> } | null = null;
  const read = (): Promise<Counts> => {
    if (last && Date.now() - last.at < 1000) return last.counts;
    const counts = Promise.all(queues.map(async (q) => [q.name, await q.getJobCounts(...STATES)] as const)).then(
      (entries) => new Map(entries),
    );
    last = { at: Date.now(), counts };
    counts.catch(() => {
      last = null; // a failed read is not remembered; the scrape that saw it reports the failure
    });
    return counts;
  };
  new Gauge({
    name: 'sandgate_queue_jobs',
    help: 'Jobs per queue and state',
    labelNames: ['queue', 'state'] as const,
    registers: [registry],
    async collect() {
      const counts = await read();
      this.reset();
      for (const [queue, c] of counts) for (const state of STATES) this.set({ queue, state }, c[state] ?? 0);
    },
  });
  new Gauge({
    name: 'sandgate_queue_backlog',
    help: 'Jobs no runner has taken yet, per queue: waiting + prioritized + delayed',
    labelNames: ['queue'] as const,
    registers: [registry],
    async collect() {
      const counts = await read();
      this.reset();
      for (const [queue, c] of counts)
        this.set(
          { queue },
          BACKLOG.reduce((n, s) => n + (c[s] ?? 0), 0),
        );
    },
  });
}
