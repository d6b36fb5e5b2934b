// The composition root: the one place that connects to Redis, loads profiles and keys, and wires
// the API and/or the runner together. `bin/sandgate.ts` calls it; so do the integration tests.
import { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { buildApp } from '../api/app.ts';
import type { Config } from '../contract/config.ts';
import type { EngineName } from '../contract/profile.ts';
import { ACTIONS_QUEUE, executionQueueName } from '../contract/queues.ts';
import { adminTokenCheck, loadAdminToken } from '../guard/identity/admin-token.ts';
import { createAgentStore } from '../state/agents.ts';
import { createBudgetStore } from '../state/budgets.ts';
import { createWorkCanceller } from '../guard/lifecycle/cancel-work.ts';
import { openAuditTrail } from '../guard/audit/audit-trail.ts';
import { createActionStore } from '../state/actions.ts';
import { createApprovalAnnouncer } from '../guard/actions/approval-webhook.ts';
import { loadTools } from '../guard/tools/tool-registry.ts';
import { buildActionWorker, EXPIRE_JOB } from '../runner/tools/action-worker.ts';
import type { Lookup } from '../runner/tools/egress/safe-fetch.ts';
import { createPrincipalStore } from '../state/principals.ts';
import { createPolicyDecisionPoint, type PolicyDecisionPoint } from '../guard/policy/decision-point.ts';
import { loadKeyRing } from '../guard/identity/signing-keys.ts';
import { createTokenService } from '../guard/identity/tokens.ts';
import type { DockerEngine } from '../runner/engines/docker/docker-engine.ts';
import { connect, type LocalEngines, makeEngines, throttledErrorLog } from './compose-parts.ts';
import type { Engine } from '../runner/engines/engine.ts';
import { createToolBridge } from '../runner/tools/tool-bridge.ts';
import type { ActionAdmissionDeps } from '../guard/actions/admit-action.ts';
import type { ActionStatus } from '../contract/action.ts';
import { createRunMetrics } from '../runner/run-metrics.ts';
import { buildWorker, type RunnerHandle } from '../runner/worker.ts';
import { createExecutionEvents } from '../state/record-events.ts';
import { createExecutionStore } from '../state/executions.ts';
import { loadProfiles, } from '../guard/profiles.ts';
import { registerRunner } from '../state/runners.ts';

export type Mode = 'all' | 'api' | 'runner';

/** What shutdown may take beyond SANDGATE_SHUTDOWN_GRACE_MS (closing connections, the pools). */
export const SHUTDOWN_MARGIN_MS = 4000;

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

export async function composeSandgate({ config, mode, logger, defaultMetrics = false, env = process.env, lookup }: ComposeOptions): Promise<Sandgate> {
  const log = logger ?? pino({ level: config.SANDGATE_LOG_LEVEL, name: 'sandgate' });
  const profiles = await loadProfiles(config.SANDGATE_PROFILES_DIR);
  const registry = new Registry();
  if (defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'sandgate_' });

  // Requests fail fast (503) rather than queue up while Redis is away.
  const redis = await connect(config.REDIS_URL, 'sandgate-cmd', {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    commandTimeout: config.SANDGATE_REDIS_TIMEOUT_MS,
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
  // Closed in this order after the HTTP server and the runner; `must` steps run even when the
  // shutdown deadline has passed (the heartbeat: its removal lets the next runner reap at once).
  const closers: Array<{ name: string; close: () => Promise<unknown>; must?: boolean }> = [];
  const auditErrors = { 'audit-index': throttledErrorLog(log, 'audit-index'), 'audit-witness': throttledErrorLog(log, 'audit-witness') };
  const auditTrail = await openAuditTrail({
    dataDir: config.SANDGATE_DATA_DIR,
    keyFile: config.SANDGATE_AUDIT_KEY_FILE,
    witnessUrl: config.SANDGATE_AUDIT_WITNESS_URL,
    redis,
    prefix,
    ttlSeconds: config.SANDGATE_RECORD_TTL_S,
    onError: (source, e) => auditErrors[source](e),
  });
  const { audit } = auditTrail;
  // API and runners both admit tool calls (POST /v1/actions, and tools.call from sandboxed code).
  const policy = await createPolicyDecisionPoint({ policyDir: config.SANDGATE_POLICIES_DIR });
  const actionsQueue = new Queue(ACTIONS_QUEUE, { connection: redis, prefix });
  actionsQueue.on('error', throttledErrorLog(log, 'queue:actions'));
  closers.push({ name: 'actions queue', close: () => actionsQueue.close() });
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
  let closeActionWorker: (() => Promise<void>) | undefined;
  let engines: LocalEngines = {};
  if (mode !== 'api') {
    const runners = await registerRunner(redis, prefix);
    closers.push({ name: 'runner heartbeat', close: () => runners.stop(), must: true });
    // BullMQ leaves a connection it was handed open: these two are closed with the runner.
    const workerConnection = await connect(config.REDIS_URL, 'sandgate-worker', { maxRetriesPerRequest: null });
    const actionConnection = await connect(config.REDIS_URL, 'sandgate-action-worker', { maxRetriesPerRequest: null });
    closers.push({ name: 'worker connections', must: true, close: async () => {
      workerConnection.disconnect();
      actionConnection.disconnect();
    } });
    const actionEvents = await createExecutionEvents<ActionStatus>(await connect(config.REDIS_URL, 'sandgate-action-events'), actions.doneChannel);
    closers.push({ name: 'action events', close: () => actionEvents.close() });
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
    closeActionWorker = () => actionWorker.close();
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
    for (const [name, queue] of queues) {
      const local = engines[name];
      readiness[`engine:${name}`] = local
        ? () => local.check() // the docker engine answers from its last probe, never waits on Docker
        : async () => {
            if ((await queue.getWorkersCount()) === 0) throw new Error(`no runner is taking ${name} jobs`);
          };
    }
    // Which profiles can run now, from the engines' last probes (no call to Docker on a request's
    // path). A runner-only deployment cannot see the runners' engines, so there every profile
    // counts as available and readiness reports the runners instead.
    const availableProfiles = async (): Promise<ReadonlySet<string>> => {
      if (mode === 'api') return new Set(profiles.keys());
      const names = new Set([...profiles.values()].filter((p) => p.engine === 'isolate' && engines.isolate).map((p) => p.name));
      for (const n of docker?.available() ?? []) names.add(n);
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
      auditIndex: auditTrail.index,
      verifyAudit: auditTrail.verify,
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
    closers.push({ name: 'execution events', close: () => events.close() }, ...[...queues.values()].map((q) => ({ name: `queue ${q.name}`, close: () => q.close() })));
  }

  return {
    app,
    runner,
    policy,
    engines,
    registry,
    adminToken,
    async close() {
      // Bounded whatever the dependencies do: everything ends within the grace period plus
      // SHUTDOWN_MARGIN_MS; a step that overruns is named in the log and left behind.
      const endBy = Date.now() + config.SANDGATE_SHUTDOWN_GRACE_MS + SHUTDOWN_MARGIN_MS;
      const left = () => Math.max(0, endBy - Date.now());
      const step = async (name: string, fn: () => Promise<unknown>, ms: number) => {
        let timer: NodeJS.Timeout | undefined;
        const overran = new Promise<void>((resolve) => {
          timer = setTimeout(() => {
            log.error({ step: name, ms: Math.round(ms) }, 'shutdown step overran its deadline; going on');
            resolve();
          }, ms);
        });
        await Promise.race([fn().catch((e: Error) => log.error({ step: name, err: e.message }, 'shutdown step failed')), overran]);
        clearTimeout(timer);
      };
      await step('http', async () => app?.close(), Math.min(2000, left()));
      // In-flight runs get the grace period (the runner cancels them after it); what follows
      // keeps a share of the margin.
      await step('runner', () => Promise.all([runner?.close(), closeActionWorker?.()]), Math.max(0, left() - 1500));
      for (const c of closers) await step(c.name, c.close, c.must ? Math.max(300, Math.min(1000, left())) : Math.min(1000, left()));
      // Last before Redis: everything above may still write records (a run's end, an expiry).
      await step('audit', () => auditTrail.close(), Math.max(500, left()));
      await step('redis', () => redis.quit().catch(() => redis.disconnect()), Math.max(200, Math.min(1000, left())));
      redis.disconnect();
    },
  };
}
