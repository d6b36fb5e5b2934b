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
import { ACTIONS_QUEUE, executionQueueName } from '../contract/queues.ts';
import { adminTokenCheck, loadAdminToken } from '../guard/identity/admin-token.ts';
import { createAgentStore } from '../guard/identity/agent-store.ts';
import { createBudgetStore } from '../guard/budget/budget-store.ts';
import { createWorkCanceller } from '../store/cancel-work.ts';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createAuditIndex } from '../guard/audit/audit-index.ts';
import { loadAuditSigner } from '../guard/audit/audit-signer.ts';
import { createAuditWriter } from '../guard/audit/audit-writer.ts';
import { verifyAuditDir } from '../guard/audit/audit-verify.ts';
import { createAuditor } from '../guard/audit/auditor.ts';
import { createActionStore } from '../guard/actions/action-store.ts';
import { createApprovalAnnouncer } from '../guard/actions/approval-webhook.ts';
import { loadTools } from '../guard/tools/tool-registry.ts';
import { buildActionWorker, EXPIRE_JOB } from '../runner/tools/action-worker.ts';
import type { Lookup } from '../runner/tools/egress/safe-fetch.ts';
import { createPrincipalStore } from '../guard/identity/principal-store.ts';
import { createPolicyDecisionPoint, type PolicyDecisionPoint } from '../guard/policy/decision-point.ts';
import { loadKeyRing } from '../guard/identity/signing-keys.ts';
import { createTokenService } from '../guard/identity/tokens.ts';
import { createDockerEngine, type DockerEngine } from '../runner/engines/docker/docker-engine.ts';
import type { Engine } from '../runner/engines/engine.ts';
import { createIsolateEngine, type ToolBridge } from '../runner/engines/isolate/isolate-engine.ts';
import { createToolBridge } from '../runner/tools/tool-bridge.ts';
import type { ActionAdmissionDeps } from '../guard/actions/admit-action.ts';
import type { ActionStatus } from '../contract/action.ts';
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
  policy: PolicyDecisionPoint;
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
  /** Where tools read their endpoints and credentials (default: the process environment). */
  env?: Record<string, string | undefined>;
  /** DNS for tool egress (tests play hostile DNS through it). */
  lookup?: Lookup;
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

function makeEngines(config: Config, logger: Logger, profiles: ProfileSet, runners: RunnerRegistry, tools: ToolBridge): LocalEngines {
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
      tools,
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

export async function composeSandgate({ config, mode, logger, defaultMetrics = false, env = process.env, lookup }: ComposeOptions): Promise<Sandgate> {
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
  const tools = await loadTools(config.SANDGATE_TOOLS_DIR, env);
  const actions = createActionStore(redis, prefix, config.SANDGATE_RECORD_TTL_S);
  const agents = createAgentStore(redis, prefix);
  const neededEngines = new Set([...profiles.values()].map((p) => p.engine));
  const closers: Array<() => Promise<unknown>> = [];
  // One audit chain per process start (see guard/audit/): durable before anything it records
  // happens; a Redis index makes every process's records readable from any API process.
  const auditIndex = createAuditIndex(redis, prefix, config.SANDGATE_RECORD_TTL_S);
  const auditDir = join(config.SANDGATE_DATA_DIR, 'audit');
  await mkdir(auditDir, { recursive: true, mode: 0o700 });
  const witnessLog = throttledErrorLog(log, 'audit-witness');
  const auditSigner = loadAuditSigner(config.SANDGATE_AUDIT_KEY_FILE ? { keyFile: config.SANDGATE_AUDIT_KEY_FILE } : { dataDir: config.SANDGATE_DATA_DIR });
  const auditWriter = await createAuditWriter({
    dir: auditDir,
    signer: await auditSigner,
    ...(config.SANDGATE_AUDIT_WITNESS_URL && { witnessUrl: config.SANDGATE_AUDIT_WITNESS_URL }),
    onDurable: (records) => {
      auditIndex.add(records).catch(throttledErrorLog(log, 'audit-index'));
    },
    onWitnessError: (e) => witnessLog(e as Error),
  });
  const audit = createAuditor(auditWriter);
  // API and runners both admit tool calls (POST /v1/actions, and tools.call from sandboxed code).
  const policy = await createPolicyDecisionPoint({ policyDir: config.SANDGATE_POLICIES_DIR });
  const actionsQueue = new Queue(ACTIONS_QUEUE, { connection: redis, prefix });
  actionsQueue.on('error', throttledErrorLog(log, 'queue:actions'));
  closers.push(() => actionsQueue.close());
  const admission: ActionAdmissionDeps = {
    tools,
    policy,
    budgets,
    actions,
    audit,
    approvalTtlMs: config.SANDGATE_APPROVAL_TTL_S * 1000,
    enqueue: async (job) => {
      await actionsQueue.add('call', job, { jobId: job.id });
    },
    scheduleExpiry: async (approval, delayMs) => {
      await actionsQueue.add(EXPIRE_JOB, { approvalId: approval.id, actionId: approval.actionId }, { jobId: `expire-${approval.id}`, delay: delayMs });
    },
    announce: createApprovalAnnouncer(config.SANDGATE_APPROVAL_WEBHOOK, log),
  };

  let runner: RunnerHandle | undefined;
  let engines: LocalEngines = {};
  if (mode !== 'api') {
    const runners = await registerRunner(redis, prefix);
    closers.push(() => runners.stop());
    // BullMQ leaves a connection it was handed open: these two are closed with the runner.
    const workerConnection = await connect(config.REDIS_URL, 'sandgate-worker', { maxRetriesPerRequest: null });
    const actionConnection = await connect(config.REDIS_URL, 'sandgate-action-worker', { maxRetriesPerRequest: null });
    closers.push(async () => {
      workerConnection.disconnect();
      actionConnection.disconnect();
    });
    const actionEvents = await createExecutionEvents<ActionStatus>(await connect(config.REDIS_URL, 'sandgate-action-events'), actions.doneChannel);
    closers.push(() => actionEvents.close());
    engines = makeEngines(config, log, profiles, runners, createToolBridge({ admission, agents, actions, events: actionEvents }));
    runner = await buildWorker({
      config,
      connection: workerConnection,
      subscriber: await connect(config.REDIS_URL, 'sandgate-cancel-sub'),
      store,
      budgets,
      canceller: runnerCanceller,
      audit,
      profiles,
      engines,
      metrics: createRunMetrics(registry),
      logger: log.child({ part: 'runner' }),
    });
    const actionWorker = await buildActionWorker({
      config,
      connection: actionConnection,
      actions,
      budgets,
      agents,
      tools,
      audit,
      env,
      logger: log.child({ part: 'actions' }),
      ...(lookup && { lookup }),
    });
    closers.unshift(() => actionWorker.close());
  }

  let app: FastifyInstance | undefined;
  let adminToken = '';
  if (mode !== 'runner') {
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
      actionsQueue,
      store,
      events,
      agents,
      actions,
      tools,
      admission,
      audit,
      auditIndex,
      verifyAudit: async () => verifyAuditDir(auditDir, { publicKeys: [(await auditSigner).publicKeyPem] }),
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
      // Last before Redis: everything above may still write records (a run's end, an expiry).
      await step('audit', () => auditWriter.close());
      await step('redis', () => redis.quit().catch(() => redis.disconnect()), 2000);
      redis.disconnect();
    },
  };
}
