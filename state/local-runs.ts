// Runs a runner took straight from the API side of its own process (`?wait=true` with a free
// slot here), which have no queue job: nothing in BullMQ notices when that runner dies. Each is
// listed under its runner before it starts and taken off once its result is written; a runner
// whose heartbeat key has expired (state/runners.ts) is dead, and whoever sweeps next ends what
// it listed (`runner_lost`, charged like a lost queue job). A second sweeper racing the first
// changes nothing: every status move checks the current status, and a settle settles once.
import type { Keys } from './keys.ts';
import type { RedisClient } from './redis-client.ts';
import type { RunnerRegistry } from './runners.ts';

export interface LocalRuns {
  /** Lists a run under this runner; sent before its start on the same connection, so it lands first. */
  add(id: string): Promise<void>;
  /** Takes it off (its result is written); a failure only leaves a line for a sweep to skip. */
  remove(id: string): Promise<void>;
  /** Runs listed by runners that are gone (a dead runner's list, which `forget` then drops). */
  orphans(): Promise<Array<{ runner: string; ids: string[] }>>;
  /** Drops what was ended of a dead runner's list, and the runner once its list is empty. */
  forget(runner: string, ids: string[]): Promise<void>;
}

export function createLocalRuns(redis: RedisClient, keys: Keys, runners: RunnerRegistry): LocalRuns {
  const mine = keys.runnerRuns(runners.id);
  let announced: Promise<unknown> | undefined;
  return {
    async add(id) {
      // The runner is named in the global set once per process (again after a failure).
      announced ??= redis.sadd(keys.runnersWithRuns, runners.id).catch((e: unknown) => {
        announced = undefined;
        throw e;
      });
      await Promise.all([announced, redis.sadd(mine, id)]);
    },
    async remove(id) {
      await redis.srem(mine, id);
    },
    async orphans() {
      const found: Array<{ runner: string; ids: string[] }> = [];
      for (const runner of await redis.smembers(keys.runnersWithRuns)) {
        if (runner === runners.id || (await runners.isAlive(runner))) continue;
        found.push({ runner, ids: await redis.smembers(keys.runnerRuns(runner)) });
      }
      return found;
    },
    async forget(runner, ids) {
      // Dropped only once ended: a sweeper that dies half way leaves the rest to the next one.
      if (ids.length > 0) await redis.srem(keys.runnerRuns(runner), ...ids);
      if ((await redis.scard(keys.runnerRuns(runner))) === 0) await redis.srem(keys.runnersWithRuns, runner);
    },
  };
}
