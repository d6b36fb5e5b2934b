// A job as a runner hands it to an engine, for tests that drive an engine directly.
import type { ExecutionJob } from '../../contract/execution.ts';
import type { Profile } from '../../contract/profile.ts';
import { loadProfiles } from '../../guard/profiles.ts';
import { createIsolateEngine, type IsolateEngineOptions } from '../../runner/engines/isolate/isolate-engine.ts';
import { newWorkId } from '../../state/keys.ts';

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

/**
 * An isolate engine on one thread whose tools answer 'answered' and are logged in `calls`
 * ([name, args] each), with the shipped js profile.
 */
export async function isolateWithToolLog(opts: Omit<IsolateEngineOptions, 'threads' | 'tools'> = {}) {
  const profile = (await loadProfiles('sandbox-profiles')).get('js')!;
  const calls: unknown[] = [];
  const engine = createIsolateEngine({
    ...opts,
    threads: 1,
    tools: async (_job, name, args) => {
      calls.push([name, args]);
      return 'answered';
    },
  });
  return { engine, profile, calls };
}

/** A js job as an admission hands it to this process's runner (claimHere). */
export const hereJob = (agentId: string, code: string): ExecutionJob => ({
  id: newWorkId('ex', agentId),
  agentId,
  taskId: null,
  profile: 'js',
  language: 'javascript',
  code,
  stdin: '',
  files: [],
  limits: { timeoutMs: 5000, memoryMb: 64, outputBytes: 65536 },
});
