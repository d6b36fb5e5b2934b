// sandgate_stage_seconds{stage}: the clock of guard/lifecycle/stages.ts as a Prometheus
// histogram, buckets fine enough for steps that take tens of microseconds. Its counts are plain
// arrays: observe() runs a dozen times on every run's path, where prom-client's own histogram
// converts, validates and hashes its labels on each call (about 3 µs each on this VM); the
// registry reads them as a histogram of the same name and shape when it is scraped.
import type { Metric, Registry } from 'prom-client';
import { STAGES, type Stage, type StageClock } from '../guard/lifecycle/stages.ts';

const NAME = 'sandgate_stage_seconds';
const HELP = 'Time spent in each step of a run (API and runner side)';
const BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5];

interface Counts {
  /** Per bucket, not cumulative (the export sums them); the last slot is above every bound. */
  buckets: Float64Array;
  sum: number;
  count: number;
}

type Value = { labels: Record<string, string | number>; value: number; metricName: string };

export function createStageMetrics(registry: Registry): StageClock {
  const fresh = (): Counts => ({ buckets: new Float64Array(BUCKETS.length + 1), sum: 0, count: 0 });
  const counts = new Map<Stage, Counts>(STAGES.map((s) => [s, fresh()]));
  const values = (): Value[] => {
    const out: Value[] = [];
    for (const [stage, c] of counts) {
      if (c.count === 0) continue; // as prom-client: a label set appears once observed
      let cumulative = 0;
      BUCKETS.forEach((le, i) => {
        cumulative += c.buckets[i]!;
        out.push({ labels: { le, stage }, value: cumulative, metricName: `${NAME}_bucket` });
      });
      out.push({ labels: { le: '+Inf', stage }, value: c.count, metricName: `${NAME}_bucket` });
      out.push({ labels: { stage }, value: c.sum, metricName: `${NAME}_sum` });
      out.push({ labels: { stage }, value: c.count, metricName: `${NAME}_count` });
    }
    return out;
  };
  const metric = {
    name: NAME,
    help: HELP,
    type: 'histogram',
    aggregator: 'sum',
    get: async () => ({ name: NAME, help: HELP, type: 'histogram', aggregator: 'sum', values: values() }),
    reset: () => {
      for (const s of STAGES) counts.set(s, fresh());
    },
  };
  registry.registerMetric(metric as unknown as Metric);
  return {
    observe(stage, ms) {
      const c = counts.get(stage);
      if (!c || !Number.isFinite(ms)) return;
      const seconds = ms / 1000;
      let i = 0;
      while (i < BUCKETS.length && seconds > BUCKETS[i]!) i++;
      c.buckets[i]!++;
      c.sum += seconds;
      c.count++;
    },
  };
}
