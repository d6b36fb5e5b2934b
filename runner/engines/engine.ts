// What every engine offers the worker. An engine turns one job into one result; a failure of the
// user's code is a status in the result, never a thrown error.

import type { ResultError } from '../../contract/errors.ts';
import type { EngineResult, ExecutionJob } from '../../contract/execution.ts';
import type { EngineName, Profile } from '../../contract/profile.ts';
import type { OutputListener } from './output-collector.ts';

export interface Engine {
  readonly name: EngineName;
  /**
   * Its runs reach nothing outside the engine but through its tool bridge, which holds each call
   * until the run's `admitted` says yes: such a run may start before its admission has ended
   * (runner/worker.ts, HereClaim.begin).
   */
  readonly sealed?: boolean;
  /**
   * Runs one job. `signal` aborts it (cancel, shutdown): the result then says `cancelled`.
   * `output` is told of the output the run keeps as it arrives (the run's event stream).
   * `admitted` (sealed engines): the run's tool calls wait for it; false, they fail.
   */
  run(
    job: ExecutionJob,
    profile: Profile,
    signal: AbortSignal,
    output?: OutputListener,
    admitted?: Promise<boolean>,
  ): Promise<EngineResult>;
  /** Throws when the engine cannot take work here (for /readyz). */
  check(): Promise<void>;
  /** Told when the engine stops or starts being able to take work (its worker pauses meanwhile). */
  onAvailability?(listener: (available: boolean) => void): void;
  /** Releases what it holds, within `budgetMs` when given (what is left then is the reaper's). */
  close(budgetMs?: number): Promise<void>;
}

/** The engine could not start the run at all (its dependency is failing): nothing of it ran. */
export class EngineUnavailable extends Error {
  override name = 'EngineUnavailable';
}

/**
 * The result of a run Sandgate could not carry out (a fault of the engine, not of the code). The
 * code may have run for all anyone knows: unmeasured, so it is billed at its worst case.
 */
export const faultResult = (error: ResultError): EngineResult => ({
  status: 'failed',
  exitCode: null,
  stdout: '',
  stderr: '',
  truncated: false,
  usage: { cpuMs: 0, wallMs: 0, memoryBytes: 0, measured: false },
  error,
});
