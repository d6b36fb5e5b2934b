// What every engine offers the worker. An engine turns one job into one result; a failure of the
// user's code is a status in the result, never a thrown error.
import type { EngineResult, ExecutionJob } from '../../contract/execution.ts';
import type { EngineName, Profile } from '../../contract/profile.ts';

export interface Engine {
  readonly name: EngineName;
  /** Runs one job. `signal` aborts it (cancel, shutdown): the result then says `cancelled`. */
  run(job: ExecutionJob, profile: Profile, signal: AbortSignal): Promise<EngineResult>;
  /** Throws when the engine cannot take work here (for /readyz). */
  check(): Promise<void>;
  close(): Promise<void>;
}
