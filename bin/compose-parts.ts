// Pieces of the composition root: connections, the local engines, small caching and logging
// helpers. Only bin/compose.ts uses them.
import type { RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../contract/config.ts';
import type { DockerProfile } from '../contract/profile.ts';
import type { ProfileSet } from '../guard/profiles.ts';
import { createDockerEngine, type DockerEngine } from '../runner/engines/docker/docker-engine.ts';
import type { Engine } from '../runner/engines/engine.ts';
import { createIsolateEngine, type ToolBridge } from '../runner/engines/isolate/isolate-engine.ts';
import type { RunMetrics } from '../runner/run-metrics.ts';
import { createRedisClient, type RedisClient } from '../state/redis-client.ts';
import type { RunnerRegistry } from '../state/runners.ts';

/** Logs a recurring error (a reconnect loop) at most once per 10 s per source. */
export function throttledErrorLog(log: Logger, source: string): (err: Error) => void {
  let last = 0;
  return (err) => {
    const now = Date.now();
    if (now - last < 10_000) return;
    last = now;
    log.error({ err: err.message, source }, 'connection error');
  };
}

/** A connection to what REDIS_URL names (a node or a cluster), connected before it is handed out. */
export async function connect(url: string, name: string, extra: RedisOptions = {}): Promise<RedisClient> {
  const redis = createRedisClient(url, { lazyConnect: true, connectionName: name, ...extra });
  redis.on('error', () => {}); // reported through failing commands and /readyz, not as crashes
  await redis.connect();
  return redis;
}

export interface LocalEngines {
  isolate?: Engine;
  docker?: DockerEngine;
}

export function makeEngines(
  config: Config,
  logger: Logger,
  profiles: ProfileSet,
  runners: RunnerRegistry,
  tools: ToolBridge,
  metrics: RunMetrics,
): LocalEngines {
  const list = [...profiles.values()];
  const engines: LocalEngines = {};
  if (list.some((p) => p.engine === 'isolate')) {
    engines.isolate = createIsolateEngine({
      warm: config.SANDGATE_ISOLATE_WARM,
      lowPriorityRefill: config.SANDGATE_ISOLATE_LOW_PRIORITY_REFILL,
      syncSliceMs: config.SANDGATE_ISOLATE_SYNC_SLICE_MS,
      onRestarted: () => metrics.restarted(),
      onCatastrophicError: (message) => {
        logger.fatal({ message }, 'isolated-vm lost control of an isolate; aborting the runner');
        process.abort();
      },
      onThreadError: (err) => logger.error({ err: err.message }, 'isolate thread error'),
      tools,
    });
  }
  const dockerProfiles = list.filter((p): p is DockerProfile => p.engine === 'docker');
  if (dockerProfiles.length) {
    const logs = new Map<string, (e: Error) => void>();
    engines.docker = createDockerEngine({
      socketPath: config.SANDGATE_DOCKER_SOCKET,
      reapIntervalMs: config.SANDGATE_REAP_INTERVAL_MS,
      probeIntervalMs: config.SANDGATE_DOCKER_PROBE_MS,
      profiles: dockerProfiles,
      prefix: config.SANDGATE_PREFIX,
      owner: runners.id,
      isOwnerAlive: (owner) => runners.isAlive(owner),
      onError: (e, what) => {
        if (!logs.has(what)) logs.set(what, throttledErrorLog(logger, `docker ${what}`));
        logs.get(what)!(e);
      },
      // One line per change of state, not one per failed call.
      onHealthChange: (state) =>
        state.healthy
          ? logger.info({ runtimes: [...state.runtimes] }, 'docker engine available')
          : logger.error(
              { reason: state.reason },
              'docker engine unavailable: docker profiles answer 503 until it is back',
            ),
    });
  }
  return engines;
}
