// How a container run ended, decided only from facts the program cannot shape: the engine's own
// deadline and cancel, the exit status the supervisor's wait(2) returned, the cgroup's OOM-kill
// count, and Docker's view of a container that stopped before its supervisor could report. Pure.
import { resultError } from '../../../contract/errors.ts';
import type { EngineResult } from '../../../contract/execution.ts';

export interface RunFacts {
  /** The engine ended the run itself. */
  ending: 'timed_out' | 'cancelled' | undefined;
  /** The program's exit status from the supervisor's trailer; undefined when none arrived. */
  exitCode: number | undefined;
  /** OOM kills in the container's cgroup; undefined when it could not be read. */
  oomKills: number | undefined;
  /** Docker's state of a container that stopped before its supervisor reported. */
  stopped?: { oomKilled: boolean; exitCode: number | null } | undefined;
  limits: { timeoutMs: number; memoryMb: number };
}

export type Verdict = Pick<EngineResult, 'status' | 'exitCode'> & Pick<Partial<EngineResult>, 'error'>;

export function runVerdict(f: RunFacts): Verdict {
  const memory = resultError('memory_exceeded', f.limits.memoryMb);
  if (f.ending === 'timed_out') {
    return { status: 'timed_out', exitCode: null, error: resultError('timed_out', f.limits.timeoutMs) };
  }
  if (f.ending === 'cancelled') return { status: 'cancelled', exitCode: null, error: resultError('cancelled') };
  if (f.exitCode !== undefined) {
    if (f.exitCode !== 0 && (f.oomKills ?? 0) > 0)
      return { status: 'memory_exceeded', exitCode: f.exitCode, error: memory };
    if (f.exitCode === 0) return { status: 'succeeded', exitCode: 0 };
    return { status: 'failed', exitCode: f.exitCode, error: resultError('nonzero_exit', f.exitCode) };
  }
  if (f.stopped?.oomKilled || (f.oomKills ?? 0) > 0)
    return { status: 'memory_exceeded', exitCode: null, error: memory };
  return {
    status: 'failed',
    exitCode: null,
    error: resultError('sandbox_died'),
  };
}
