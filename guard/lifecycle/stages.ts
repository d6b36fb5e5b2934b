// Where a run's time goes: each step of the path reports how long it took, by name, to one
// clock (a Prometheus histogram, `sandgate_stage_seconds{stage}`, in the service). The steps are
// the lifecycle's own, so the table `npm run bench -- isolate` prints reads like the path.
export const STAGES = [
  // API side, in order.
  'auth',
  'policy',
  'checks',
  'budget',
  'audit',
  'record',
  'enqueue',
  /** From the job on its queue to the end published: the runner's part, seen from the API. */
  'wait',
  /** From the end published to the reply handed to the socket (the record read and sent). */
  'reply',
  // Runner side, in order.
  /** From the job added to the worker taking it. */
  'pickup',
  'start',
  /** The engine's own cost: isolate or container set-up and tear-down around the user's code. */
  'sandbox',
  'code',
  /** The end of the run audited and written to its record (which publishes it). */
  'result',
  'settle',
] as const;
export type Stage = (typeof STAGES)[number];

export interface StageClock {
  observe(stage: Stage, ms: number): void;
}

export const NO_STAGES: StageClock = { observe: () => {} };

/** Runs `fn` and reports its duration under `stage`, whether it resolves or throws. */
export async function timed<T>(clock: StageClock, stage: Stage, fn: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await fn();
  } finally {
    clock.observe(stage, performance.now() - started);
  }
}
