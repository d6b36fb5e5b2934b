// What both sides of Sandgate share, built once per process: the Redis connection and the state
// on it, the audit trail, the policy decision point, the tools, the queues, the lifecycle hooks
// and the two lifecycles every route and worker goes through.
import { Queue } from 'bullmq';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../contract/config.ts';
import type { EngineName } from '../contract/profile.ts';
import { ACTIONS_QUEUE, executionQueueName, NOTIFY_QUEUE } from '../contract/queues.ts';
import type { Alert } from '../contract/watch.ts';
import { createApprovalAnnouncer } from '../guard/actions/approval-webhook.ts';
import { type AuditTrail, openAuditTrail } from '../guard/audit/audit-trail.ts';
import { type ActionLifecycle, createActionLifecycle } from '../guard/lifecycle/action-lifecycle.ts';
import { observeActivity } from '../guard/lifecycle/activity.ts';
import {
  createExecutionLifecycle,
  type ExecutionLifecycle,
  type ExecutionLifecycleDeps,
} from '../guard/lifecycle/execution-lifecycle.ts';
import { createHooks, type Hooks } from '../guard/lifecycle/hooks.ts';
import type { StageClock } from '../guard/lifecycle/stages.ts';
import { createTaskLifecycle, type TaskLifecycle } from '../guard/lifecycle/task-lifecycle.ts';
import { createPolicyDecisionPoint, type PolicyDecisionPoint } from '../guard/policy/decision-point.ts';
import { loadProfiles, type ProfileSet } from '../guard/profiles.ts';
import { loadTools, type ToolSet } from '../guard/tools/tool-registry.ts';
import { configuredSinks, type SinkConfig } from '../guard/watch/deliveries.ts';
import { createWatch, type NotifyEvent, type Watch } from '../guard/watch/watch.ts';
import { type NotifyJob, RENOTIFY_JOB } from '../runner/notify-worker.ts';
import { EXPIRE_JOB } from '../runner/tools/action-worker.ts';
import { type ActionStore, createActionStore } from '../state/actions.ts';
import { type ActivityStore, createActivityStore } from '../state/activity.ts';
import { type AgentStore, createAgentStore } from '../state/agents.ts';
import { type AlertStore, createAlertStore } from '../state/alerts.ts';
import { type BudgetStore, createBudgetStore } from '../state/budgets.ts';
import { publishCancel } from '../state/cancel-channel.ts';
import { createEventStreamWriter, type EventStreamWriter } from '../state/event-streams.ts';
import { createExecutionStore, type ExecutionStore } from '../state/executions.ts';
import { queuePrefix } from '../state/keys.ts';
import type { RedisClient } from '../state/redis-client.ts';
import { createWatchStore, type WatchStore } from '../state/watch.ts';
import type { Mode } from './compose.ts';
import { connect, type LocalEngines, throttledErrorLog } from './compose-parts.ts';
import { registerAlertMetrics, sinkConfig } from './compose-watch.ts';
import { createStageMetrics } from './stage-metrics.ts';

/** Completed jobs kept per queue: an hour, at most 1000; failed ones a day, at most 5000. */
export const FINISHED_JOBS_KEPT = { age: 3600, count: 1000 } as const;
export const FAILED_JOBS_KEPT = { age: 24 * 3600, count: 5000 } as const;

export interface Core {
  config: Config;
  log: Logger;
  redis: RedisClient;
  /** The queues' connection (BullMQ's scripts live on it, not on `redis`). */
  queueRedis: RedisClient;
  profiles: ProfileSet;
  tools: ToolSet;
  policy: PolicyDecisionPoint;
  store: ExecutionStore;
  /** The event streams of executions and actions (written on `redis`, so in order per process). */
  streams: EventStreamWriter;
  budgets: BudgetStore;
  actions: ActionStore;
  agents: AgentStore;
  auditTrail: AuditTrail;
  executionQueues: ReadonlyMap<EngineName, Queue>;
  actionsQueue: Queue;
  hooks: Hooks;
  /** Per-minute activity of agents and tasks, counted by a lifecycle observer (the console). */
  activity: ActivityStore;
  executions: ExecutionLifecycle;
  toolCalls: ActionLifecycle;
  tasks: TaskLifecycle;
  watchStore: WatchStore;
  alerts: AlertStore;
  watch: Watch;
  notifyQueue: Queue;
  sinks: SinkConfig;
  /** Sends an open alert again to every receiver and schedules the next round. */
  renotify(alertId: string): Promise<void>;
  stages: StageClock;
  /** The engines this process runs, and its runner's door for runs taken here, set by the runner side. */
  local: { engines: LocalEngines; claimHere?: ExecutionLifecycleDeps['claimHere'] };
  /** Which profiles can run now, from the local engines' last probes (never a call to Docker). */
  availableProfiles(): Promise<ReadonlySet<string>>;
  /** Aborted at shutdown: what retries in the background gives up. */
  background: AbortController;
}

export async function composeCore(
  config: Config,
  mode: Mode,
  log: Logger,
  env: Record<string, string | undefined>,
  registry: Registry,
): Promise<Core> {
  const profiles = await loadProfiles(config.SANDGATE_PROFILES_DIR);
  const tools = await loadTools(config.SANDGATE_TOOLS_DIR, env);
  // Requests fail fast (503) rather than queue up while Redis is away.
  const redis = await connect(config.REDIS_URL, 'sandgate-cmd', {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    commandTimeout: config.SANDGATE_REDIS_TIMEOUT_MS,
    // Commands issued in one tick leave in one write: socket writes are the main thread's
    // largest cost under load.
    enableAutoPipelining: true,
  });
  // BullMQ's queues get a connection of their own: BullMQ defines its ~60 scripts on the client it
  // is given, and ioredis copies every defined script onto each pipeline it builds (each
  // auto-pipelined batch): on the command connection that was the largest cost of a run.
  const queueRedis = await connect(config.REDIS_URL, 'sandgate-queue', {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    commandTimeout: config.SANDGATE_REDIS_TIMEOUT_MS,
  });
  const prefix = config.SANDGATE_PREFIX;
  const ttl = config.SANDGATE_RECORD_TTL_S;
  const streamErrors = throttledErrorLog(log, 'event-streams');
  const streams = createEventStreamWriter(redis, ttl, (e) => streamErrors(e));
  const store = createExecutionStore(redis, prefix, ttl, streams);
  const budgets = createBudgetStore(redis, prefix, ttl);
  const actions = createActionStore(redis, prefix, ttl, streams);
  const agents = createAgentStore(redis, prefix);
  const auditErrors = {
    'audit-index': throttledErrorLog(log, 'audit-index'),
    'audit-witness': throttledErrorLog(log, 'audit-witness'),
    'audit-archive': throttledErrorLog(log, 'audit-archive'),
  };
  const auditTrail = await openAuditTrail({
    dataDir: config.SANDGATE_DATA_DIR,
    keyFile: config.SANDGATE_AUDIT_KEY_FILE,
    witnessUrl: config.SANDGATE_AUDIT_WITNESS_URL,
    witnessTimeoutMs: config.SANDGATE_WEBHOOK_TIMEOUT_MS,
    onLoopWriteMaxMs: config.SANDGATE_AUDIT_ON_LOOP_WRITE_MS,
    onSlowWrite: (ms) =>
      log.warn(
        { ms: Math.round(ms * 10) / 10 },
        'audit writes are slow: the next minute of them go to the thread pool, off the event loop',
      ),
    segments: {
      maxBytes: config.SANDGATE_AUDIT_SEGMENT_BYTES,
      maxAgeMs: config.SANDGATE_AUDIT_SEGMENT_AGE_S * 1000,
      archiveDir: config.SANDGATE_AUDIT_ARCHIVE_DIR,
      liveSegments: config.SANDGATE_AUDIT_LIVE_SEGMENTS,
      liveMaxAgeMs: config.SANDGATE_AUDIT_LIVE_AGE_S * 1000,
    },
    redis,
    prefix,
    ttlSeconds: ttl,
    onError: (source, e) => auditErrors[source](e),
  });
  const policy = await createPolicyDecisionPoint({ policyDir: config.SANDGATE_POLICIES_DIR });

  // Finished jobs stay bounded (BullMQ keeps them all by default); the records in Redis and the
  // audit log are what lasts, the job is only how the work travelled.
  const queue = (name: string) => {
    const q = new Queue(name, {
      connection: queueRedis,
      prefix: queuePrefix(prefix, name),
      defaultJobOptions: { removeOnComplete: FINISHED_JOBS_KEPT, removeOnFail: FAILED_JOBS_KEPT },
    });
    q.on('error', throttledErrorLog(log, `queue:${name}`));
    return q;
  };
  const engines = new Set([...profiles.values()].map((p) => p.engine));
  const executionQueues = new Map<EngineName, Queue>([...engines].map((e) => [e, queue(executionQueueName(e))]));
  const actionsQueue = queue(ACTIONS_QUEUE);
  const notifyQueue = queue(NOTIFY_QUEUE);
  const watchStore = createWatchStore(redis, prefix);
  const alerts = createAlertStore(redis, prefix, ttl);

  // A runner-only deployment cannot see the runners' engines: an API-only process counts every
  // profile as available, and its readiness reports the runners instead.
  const local: Core['local'] = { engines: {} };
  const availableProfiles = async (): Promise<ReadonlySet<string>> => {
    if (mode === 'api') return new Set(profiles.keys());
    const names = new Set(
      [...profiles.values()].filter((p) => p.engine === 'isolate' && local.engines.isolate).map((p) => p.name),
    );
    for (const n of local.engines.docker?.available() ?? []) names.add(n);
    return names;
  };

  const hooks = createHooks((e, event) =>
    log.error({ err: e.message, event: event.type }, 'a lifecycle observer failed'),
  );
  const activity = createActivityStore(redis, prefix);
  observeActivity(hooks, activity);
  const stages = createStageMetrics(registry);
  const background = new AbortController();
  const executions = createExecutionLifecycle({
    stopRetrying: background.signal,
    stages,
    store,
    budgets,
    audit: auditTrail.audit,
    policy,
    profiles,
    hooks,
    logger: log,
    publishCancel: (id) => publishCancel(redis, prefix, id),
    resultHoldMs: config.SANDGATE_RESULT_HOLD_MS,
    availableProfiles,
    claimHere: async (job) => local.claimHere?.(job),
    enqueue: async (engine, job) => {
      const q = executionQueues.get(engine);
      if (!q) throw new Error(`no queue for engine ${engine}`);
      await q.add('run', job, { jobId: job.id });
    },
    dequeue: async (id) => {
      await Promise.all([...executionQueues.values()].map((q) => q.remove(id).catch(() => 0)));
    },
  });
  // API and runners both admit tool calls (POST /v1/actions, and tools.call from sandboxed code).
  const toolCalls = createActionLifecycle({
    tools,
    policy,
    budgets,
    actions,
    agents,
    audit: auditTrail.audit,
    hooks,
    logger: log,
    approvalTtlMs: config.SANDGATE_APPROVAL_TTL_S * 1000,
    enqueue: async (job) => {
      await actionsQueue.add('call', job, { jobId: job.id });
    },
    scheduleExpiry: async (approval, delayMs) => {
      await actionsQueue.add(
        EXPIRE_JOB,
        { approvalId: approval.id, actionId: approval.actionId },
        // Retried through a Redis blip at its time (its refund and its audit record must land).
        { jobId: `expire-${approval.id}`, delay: delayMs, attempts: 8, backoff: { type: 'exponential', delay: 1000 } },
      );
    },
    announce: createApprovalAnnouncer(config.SANDGATE_APPROVAL_WEBHOOK, log, config.SANDGATE_WEBHOOK_TIMEOUT_MS),
    stopTask: async (agentId, taskId, cap) => void (await executions.stopTask(agentId, taskId, cap)),
    stopRetrying: background.signal,
    undoHoldMs: config.SANDGATE_RESULT_HOLD_MS,
  });

  const tasks = createTaskLifecycle({
    budgets,
    audit: auditTrail.audit,
    hooks,
    stopTask: (a, t, c) => executions.stopTask(a, t, c),
  });
  const sinks = sinkConfig(config);
  const renotifyMs = config.SANDGATE_WATCH.renotifyS * 1000;
  const notify = async (alert: Alert, event: NotifyEvent) => {
    for (const sink of configuredSinks(sinks)) {
      const job: NotifyJob = { alertId: alert.id, sink, event };
      await notifyQueue.add('deliver', job, {
        attempts: 8,
        backoff: { type: 'exponential', delay: 1000 },
        removeOnComplete: 1000,
        removeOnFail: 1000,
      });
    }
    if (event === 'trigger' || event === 'renotify') {
      await notifyQueue.add(
        RENOTIFY_JOB,
        { alertId: alert.id },
        { delay: renotifyMs, removeOnComplete: true, removeOnFail: true },
      );
    }
  };
  const alertMetrics = registerAlertMetrics(registry, alerts);
  const watchErrors = throttledErrorLog(log, 'watch');
  const watch = createWatch({
    store: watchStore,
    alerts,
    agents,
    audit: auditTrail.audit,
    hooks,
    settings: config.SANDGATE_WATCH,
    notify,
    onRaised: alertMetrics.raised,
    onError: (e, where) => {
      alertMetrics.failed(where);
      watchErrors(new Error(`${where}: ${e.message}`));
    },
  });
  const renotify = async (alertId: string) => {
    const alert = await alerts.get(alertId);
    if (alert?.status === 'open') await notify(alert, 'renotify');
  };
  return {
    background,
    config,
    log,
    redis,
    queueRedis,
    profiles,
    tools,
    policy,
    store,
    streams,
    budgets,
    actions,
    agents,
    auditTrail,
    executionQueues,
    actionsQueue,
    hooks,
    activity,
    executions,
    toolCalls,
    tasks,
    watchStore,
    alerts,
    watch,
    notifyQueue,
    sinks,
    renotify,
    stages,
    local,
    availableProfiles,
  };
}
