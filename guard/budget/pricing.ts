// What a run costs: the worst case, reserved before it is admitted, and the actual cost from its
// measured usage, settled after it ends (in nano-units, contract/money.ts).
import type { ExecutionJob, Usage } from '../../contract/execution.ts';
import { fromNanos, toNanos } from '../../contract/money.ts';
import type { Profile } from '../../contract/profile.ts';

const GB = 1024 ** 3;

/** CPU seconds a run can use at most: one core for the isolate, the profile's CPU quota in Docker. */
function cpuCeilingSeconds(profile: Profile, limits: ExecutionJob['limits']): number {
  const cores = profile.engine === 'docker' ? profile.cpus : 1;
  return (limits.timeoutMs / 1000) * cores;
}

/** Price × the run's ceilings (time, CPU, memory): no run can cost more than this. */
export function worstCaseCost(profile: Profile, limits: ExecutionJob['limits']): number {
  const { perRun, perCpuSecond, perGbSecond } = profile.price;
  const gbSeconds = ((limits.memoryMb * 1024 * 1024) / GB) * (limits.timeoutMs / 1000);
  return fromNanos(toNanos(perRun + perCpuSecond * cpuCeilingSeconds(profile, limits) + perGbSecond * gbSeconds));
}

/**
 * The cost of a finished run from what it measurably used, never above its reservation: the
 * few milliseconds a run overshoots its deadline by are Sandgate's, not the agent's. A run
 * whose usage could not be measured costs its worst case.
 */
export function actualCost(profile: Profile, limits: ExecutionJob['limits'], usage: Omit<Usage, 'cost'>): number {
  // What could not be measured is billed at its worst case, never at zero.
  if (usage.measured === false) return worstCaseCost(profile, limits);
  const { perRun, perCpuSecond, perGbSecond } = profile.price;
  const gbSeconds = (usage.memoryBytes / GB) * (usage.wallMs / 1000);
  const cost = perRun + perCpuSecond * (usage.cpuMs / 1000) + perGbSecond * gbSeconds;
  return fromNanos(Math.min(toNanos(cost), toNanos(worstCaseCost(profile, limits))));
}
