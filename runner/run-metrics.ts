// Run metrics, recorded where runs end (the runner) into the registry the composition root owns.
import { Counter, Histogram, type Registry } from 'prom-client';

export interface RunMetrics {
  observe(profile: string, status: string, wallMs: number, cpuMs: number): void;
  /** A js run's first attempt outlasted its synchronous slice; the run started again (SANDGATE_ISOLATE_SYNC_SLICE_MS). */
  restarted(): void;
}

export function createRunMetrics(registry: Registry): RunMetrics {
  const runs = new Counter({
    name: 'sandgate_runs_total',
    help: 'Finished runs by profile and final status',
    labelNames: ['profile', 'status'] as const,
    registers: [registry],
  });
  const wall = new Histogram({
    name: 'sandgate_run_wall_seconds',
    help: 'Wall-clock duration of runs inside the engine',
    labelNames: ['profile', 'status'] as const,
    buckets: [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const cpu = new Histogram({
    name: 'sandgate_run_cpu_seconds',
    help: 'CPU time of runs',
    labelNames: ['profile'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60],
    registers: [registry],
  });
  const restarts = new Counter({
    name: 'sandgate_isolate_slice_restarts_total',
    help: 'js runs whose synchronous part outlasted its slice on the isolate thread and that started again off it',
    registers: [registry],
  });
  return {
    restarted: () => restarts.inc(),
    observe(profile, status, wallMs, cpuMs) {
      runs.inc({ profile, status });
      wall.observe({ profile, status }, wallMs / 1000);
      cpu.observe({ profile }, cpuMs / 1000);
    },
  };
}
