// The composition root: the one place that connects to Redis, loads profiles and keys, and wires
// the API and/or the runner together. `bin/sandgate.ts` calls it; so do the integration tests.
import { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { Redis, type RedisOptions } from 'ioredis';
import pino, { type Logger } from 'pino';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { buildApp } from '../api/app.ts';
import type { Config } from '../contract/config.ts';
import type { DockerProfile, EngineName } from '../contract/profile.ts';
import { executionQueueName } from '../contract/queues.ts';
import { adminTokenCheck, loadAdminToken } from '../guard/identity/admin-token.ts';
import { createAgentStore } from '../guard/identity/agent-store.ts';
import { createBudgetStore } from '../guard/budget/budget-store.ts';
import { createWorkCanceller } from '../store/cancel-work.ts';
import { createPrincipalStore } from '../guard/identity/principal-store.ts';
import { createPolicyDecisionPoint, type PolicyDecisionPoint } from '../guard/policy/decision-point.ts';
import { loadKeyRing } from '../guard/identity/signing-keys.ts';
import { createTokenService } from '../guard/identity/tokens.ts';
import { createDockerEngine, type DockerEngine } from '../runner/engines/docker/docker-engine.ts';
import type { Engine } from '../runner/engines/engine.ts';
import { createIsolateEngine } from '../runner/engines/isolate/isolate-engine.ts';
import { createRunMetrics } from '../runner/run-metrics.ts';
import { buildWorker, type RunnerHandle } from '../runner/worker.ts';
import { createExecutionEvents } from '../store/execution-events.ts';
import { createExecutionStore } from '../store/execution-store.ts';
import { loadProfiles, type ProfileSet } from '../store/profiles.ts';
import { type RunnerRegistry, registerRunner } from '../store/runner-registry.ts';

export type Mode = 'all' | 'api' | 'runner';

export interface Sandgate {
  app: FastifyInstance | undefined;
  runner: RunnerHandle | undefined;
  policy: PolicyDecisionPoint | undefined;
  engines: { isolate?: Engine; docker?: DockerEngine };
  registry: Registry;
  adminToken: string;
  /** Graceful: stop taking requests and jobs, let in-flight runs finish (or cancel them), disconnect. */
  close(): Promise<void>;
}

export interface ComposeOptions {
  config: Config;
  mode: Mode;
  logger?: Logger;
  /** Process-wide default metrics (event loop, memory): on for the real service, off in tests. */
  defaultMetrics?: boolean;
}

/** Logs a recurring error (a reconnect loop) at most once per 10 s per source. */
function throttledErrorLog(log: Logger, source: string): (err: Error) => void {
  let last = 0;
  return (err) => {
    const now = Date.now();
    if (now - last < 10_000) return;
    last = now;
    log.error({ err: err.message, source }, 'connection error');
  };
}

async function connect(url: string, name: string, extra: RedisOptions = {}): Promise<Redis> {
  const redis = new Redis(url, { lazyConnect: true, connectionName: name, ...extra });
  redis.on('error', () => {}); // reported through failing commands and /readyz, not as crashes
  await redis.connect();
  return redis;
}

interface LocalEngines {
  isolate?: Engine;
  docker?: DockerEngine;
}

function makeEngines(config: Config, logger: Logger, profiles: ProfileSet, runners: RunnerRegistry): LocalEngines {
  const list = [...profiles.values()];
  const engines: LocalEngines = {};
  if (list.some((p) => p.engine === 'isolate')) {
    engines.isolate = createIsolateEngine({
      warm: config.SANDGATE_ISOLATE_WARM,
      onCatastrophicError: (message) => {
        logger.fatal({ message }, 'isolated-vm lost control of an isolate; aborting the runner');
        process.abort();
      },
      onThreadError: (err) => logger.error({ err: err.message }, 'isolate thread error'),
    });
  }
  const dockerProfiles = list.filter((p): p is DockerProfile => p.engine === 'docker');
  if (dockerProfiles.length) {
    const logs = new Map<string, (e: Error) => void>();
    engines.docker = createDockerEngine({
      socketPath: config.SANDGATE_DOCKER_SOCKET,
      profiles: dockerProfiles,
      prefix: config.SANDGATE_PREFIX,
      owner: runners.id,
      isOwnerAlive: (owner) => runners.isAlive(owner),
      onError: (e, what) => {
        if (!logs.has(what)) logs.set(what, throttledErrorLog(logger, `docker ${what}`));
        logs.get(what)!(e);
      },
    });
  }
  return engines;
}

/** Remembers a check's outcome briefly, so hot paths (each POST) do not ask Docker every time. */
function cached<T>(fn: () => Promise<T>, ttlMs: number): () => Promise<T> {
  let at = 0;
  let value: Promise<T> | undefined;
  return () => {
    if (!value || Date.now() - at > ttlMs) {
      at = Date.now();
      value = fn();
      value.catch(() => {
        at = 0; // retry a failure on the next call
      });
    }
    return value;
  };
}

export async function composeSandgate({ config, mode, logger, defaultMetrics = false }: ComposeOptions): Promise<Sandgate> {
  const log = logger ?? pino({ level: config.SANDGATE_LOG_LEVEL, name: 'sandgate' });
  const profiles = await loadProfiles(config.SANDGATE_PROFILES_DIR);
  const registry = new Registry();
  if (defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'sandgate_' });

  // Requests fail fast (503) rather than queue up while Redis is away.
  const redis = await connect(config.REDIS_URL, 'sandgate-cmd', {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    // Commands issued in one tick leave in one write: socket writes are the main thread's
    // largest cost under load.
    enableAutoPipelining: true,
  });
  const prefix = config.SANDGATE_PREFIX;
  const store = createExecutionStore(redis, prefix, config.SANDGATE_RECORD_TTL_S);
  const budgets = createBudgetStore(redis, prefix, config.SANDGATE_RECORD_TTL_S);
  // Runners cancel without dequeuing (a cancelled job that reaches a worker is dropped there);
  // the API also takes the job off its queue.
  const runnerCanceller = createWorkCanceller({ store, budgets, redis, redisPrefix: prefix });
  const neededEngines = new Set([...profiles.values()].map((p) => p.engine));
  const closers: Array<() => Promise<unknown>> = [];

  let runner: RunnerHandle | undefined;
  let engines: LocalEngines = {};
  if (mode !== 'api') {
    const runners = await registerRunner(redis, prefix);
    closers.push(() => runners.stop());
    engines = makeEngines(config, log, profiles, runners);
    runner = await buildWorker({
      config,
      connection: await connect(config.REDIS_URL, 'sandgate-worker', { maxRetriesPerRequest: null }),
      subscriber: await connect(config.REDIS_URL, 'sandgate-cancel-sub'),
      store,
      budgets,
      canceller: runnerCanceller,
      profiles,
      engines,
      metrics: createRunMetrics(registry),
      logger: log.child({ part: 'runner' }),
    });
  }

  let app: FastifyInstance | undefined;
  let policy: PolicyDecisionPoint | undefined;
  let adminToken = '';
  if (mode !== 'runner') {
    policy = await createPolicyDecisionPoint({ policyDir: config.SANDGATE_POLICIES_DIR });
    adminToken = await loadAdminToken(config.SANDGATE_DATA_DIR, config.SANDGATE_ADMIN_TOKEN);
    const keys = await loadKeyRing(config.SANDGATE_DATA_DIR);
    const queues = new Map<EngineName, Queue>(
      [...neededEngines].map((e) => {
        const queue = new Queue(executionQueueName(e), { connection: redis, prefix });
        queue.on('error', throttledErrorLog(log, `queue:${e}`));
        return [e, queue];
      }),
    );
    const events = await createExecutionEvents(await connect(config.REDIS_URL, 'sandgate-events-sub'), store.doneChannel);
    const readiness: Record<string, () => Promise<void>> = {
      redis: async () => {
        await redis.ping();
      },
    };
    const docker = engines.docker;
    const dockerUp = docker ? cached(() => docker.check(), 2000) : undefined;
    for (const [name, queue] of queues) {
      const local = engines[name];
      readiness[`engine:${name}`] =
        name === 'docker' && dockerUp
          ? dockerUp
          : local
            ? () => local.check()
            : async () => {
                if ((await queue.getWorkersCount()) === 0) throw new Error(`no runner is taking ${name} jobs`);
              };
    }
    // Which profiles can run now: a runner-only deployment cannot see the runners' engines, so
    // there every profile counts as available and readiness reports the runners instead.
    const dockerProfiles = docker && dockerUp ? cached(() => dockerUp().then(() => docker.available()), 2000) : undefined;
    const availableProfiles = async (): Promise<ReadonlySet<string>> => {
      if (mode === 'api') return new Set(profiles.keys());
      const names = new Set([...profiles.values()].filter((p) => p.engine === 'isolate' && engines.isolate).map((p) => p.name));
      for (const n of (await dockerProfiles?.().catch(() => undefined)) ?? []) names.add(n);
      return names;
    };
    app = await buildApp({
      config,
      logger: log,
      redis,
      queues,
      store,
      events,
      agents: createAgentStore(redis, prefix),
      principals: createPrincipalStore(redis, prefix),
      policy,
      budgets,
      canceller: createWorkCanceller({
        store,
        budgets,
        redis,
        redisPrefix: prefix,
        dequeue: async (id) => {
          await Promise.all([...queues.values()].map((q) => q.remove(id).catch(() => 0)));
        },
      }),
      tokens: createTokenService(keys),
      admin: adminTokenCheck(adminToken),
      profiles,
      registry,
      readiness,
      availableProfiles,
    });
    closers.push(() => events.close(), ...[...queues.values()].map((q) => () => q.close()));
  }

  return {
    app,
    runner,
    policy,
    engines,
    registry,
    adminToken,
    async close() {
      // Each step is bounded: a dependency that hangs (Redis, Docker) must not keep the
      // process from closing; the step that overran is logged.
      const step = async (name: string, fn: () => Promise<unknown>, ms = 10_000) => {
        let timer: NodeJS.Timeout | undefined;
        const overran = new Promise<void>((resolve) => {
          timer = setTimeout(() => {
            log.error({ step: name, ms }, 'shutdown step overran its deadline; going on');
            resolve();
          }, ms);
        });
        await Promise.race([fn().catch((e: Error) => log.error({ step: name, err: e.message }, 'shutdown step failed')), overran]);
        clearTimeout(timer);
      };
      await step('http', async () => app?.close());
      await step('runner', async () => runner?.close(), config.SANDGATE_SHUTDOWN_GRACE_MS + 10_000);
      for (const [i, c] of closers.entries()) await step(`closer ${i}`, c);
      await step('redis', () => redis.quit().catch(() => redis.disconnect()), 2000);
      redis.disconnect();
    },
  };
}
