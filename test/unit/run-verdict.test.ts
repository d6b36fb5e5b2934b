// The verdict of a container run, from engine-side facts only.
import { describe, expect, it } from 'vitest';
import { type RunFacts, runVerdict } from '../../runner/engines/docker/run-verdict.ts';

const base: RunFacts = {
  ending: undefined,
  exitCode: undefined,
  oomKills: 0,
  limits: { timeoutMs: 1000, memoryMb: 64 },
};
const v = (f: Partial<RunFacts>) => runVerdict({ ...base, ...f });

describe('the docker run verdict', () => {
  it('exit 0 succeeds, any other exit fails with that code', () => {
    expect(v({ exitCode: 0 })).toEqual({ status: 'succeeded', exitCode: 0 });
    expect(v({ exitCode: 9 })).toMatchObject({ status: 'failed', exitCode: 9, error: { code: 'nonzero_exit' } });
  });

  it("the engine's own deadline and cancel win over whatever the program reported", () => {
    expect(v({ ending: 'timed_out', exitCode: 0 })).toMatchObject({ status: 'timed_out', exitCode: null });
    expect(v({ ending: 'cancelled', exitCode: 0 })).toMatchObject({ status: 'cancelled', exitCode: null });
  });

  it('an OOM kill in the cgroup with a non-zero exit is memory_exceeded', () => {
    expect(v({ exitCode: 137, oomKills: 1 })).toMatchObject({
      status: 'memory_exceeded',
      exitCode: 137,
      error: { code: 'memory_exceeded' },
    });
    // A child was OOM-killed but the program handled it and exited 0: its own success.
    expect(v({ exitCode: 0, oomKills: 1 })).toMatchObject({ status: 'succeeded' });
  });

  it('a container that stopped before reporting is memory_exceeded when Docker or the cgroup says OOM, else sandbox_died', () => {
    expect(v({ stopped: { oomKilled: true, exitCode: 137 } })).toMatchObject({
      status: 'memory_exceeded',
      exitCode: null,
    });
    expect(v({ stopped: { oomKilled: false, exitCode: 0 } })).toMatchObject({
      status: 'failed',
      exitCode: null,
      error: { code: 'sandbox_died' },
    });
    expect(v({ oomKills: undefined })).toMatchObject({ status: 'failed', error: { code: 'sandbox_died' } });
  });
});
