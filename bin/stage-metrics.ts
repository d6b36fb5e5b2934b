// sandgate_stage_seconds{stage}: the clock of guard/lifecycle/stages.ts as a Prometheus
// histogram, buckets fine enough for steps that take tens of microseconds.
import { Histogram, type Registry } from 'prom-client';
import { STAGES, type StageClock } from '../guard/lifecycle/stages.ts';

export function createStageMetrics(registry: Registry): StageClock {
  const histogram = new Histogram({
    name: 'sandgate_stage_seconds',
    help: 'Time spent in each step of a run (API and runner side)',
    labelNames: ['stage'] as const,
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers: [registry],
  });
  // Children made once: observe() on the hot path does no label lookup.
  const children = new Map(STAGES.map((s) => [s, histogram.labels({ stage: s })]));
  return { observe: (stage, ms) => children.get(stage)?.observe(ms / 1000) };
}
