// A job as a runner hands it to an engine, for tests that drive an engine directly.
import type { ExecutionJob } from '../../contract/execution.ts';
import type { Profile } from '../../contract/profile.ts';

export function engineJob(profile: Profile, code: string, limits: Partial<ExecutionJob['limits']> = {}): ExecutionJob {
  return {
    id: 'ex_enginejob0001',
    agentId: 'ag_enginejob0001',
    taskId: null,
    profile: profile.name,
    language: profile.language,
    code,
    stdin: '',
    files: [],
    limits: { timeoutMs: 5000, memoryMb: 64, outputBytes: 4096, ...limits },
  };
}
