// buildApp(deps): the fastify application, assembled from what the composition root hands in.
// It never listens and never connects; the caller owns every resource.
import type { Queue } from 'bullmq';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { Registry } from 'prom-client';
import type { ActionStatus } from '../contract/action.ts';
import type { AuditVerifyResult } from '../contract/audit.ts';
import type { Config } from '../contract/config.ts';
import type { EngineName } from '../contract/profile.ts';
import type { Auditor } from '../guard/audit/auditor.ts';
import type { CitedVerifyDeps } from '../guard/audit/cited-verify.ts';
import type { AdminTokenCheck } from '../guard/identity/admin-token.ts';
import type { TokenService } from '../guard/identity/tokens.ts';
import type { ActionLifecycle } from '../guard/lifecycle/action-lifecycle.ts';
import type { ExecutionLifecycle } from '../guard/lifecycle/execution-lifecycle.ts';
import type { StageClock } from '../guard/lifecycle/stages.ts';
import type { TaskLifecycle } from '../guard/lifecycle/task-lifecycle.ts';
import type { PolicyDecisionPoint } from '../guard/policy/decision-point.ts';
import type { ProfileSet } from '../guard/profiles.ts';
import type { ToolSet } from '../guard/tools/tool-registry.ts';
import type { Overview } from '../guard/watch/overview.ts';
import type { Watch } from '../guard/watch/watch.ts';
import type { ActionStore } from '../state/actions.ts';
import type { ActivityStore } from '../state/activity.ts';
import type { AgentStore } from '../state/agents.ts';
import type { AlertStore } from '../state/alerts.ts';
import type { AuditIndex } from '../state/audit-index.ts';
import type { BudgetStore } from '../state/budgets.ts';
import type { EventStreamReader } from '../state/event-streams.ts';
import type { ExecutionStore } from '../state/executions.ts';
import type { IdempotencyStore } from '../state/idempotency.ts';
import { redisKeys } from '../state/keys.ts';
import type { McpEventLog } from '../state/mcp-events.ts';
import type { PrincipalStore } from '../state/principals.ts';
import type { RecordEvents } from '../state/record-events.ts';
import type { RedisClient } from '../state/redis-client.ts';
import type { StreamTail } from '../state/stream-tail.ts';
import { installAuth } from './auth.ts';
import { consoleRoutes } from './console/console-routes.ts';
import { installErrorHandling } from './error-handler.ts';
import { type EventStreamServer, registerEventStreamMetrics } from './event-stream.ts';
import { applyHttpLimits, clientErrorHandler, httpServerOptions } from './http-limits.ts';
import { mcpRoutes } from './mcp/mcp-routes.ts';
import { mcpResource } from './mcp/resource.ts';
import { runFollower } from './mcp/run-follower.ts';
import { registerOpenApi } from './openapi.ts';
import { registerQueueDashboard } from './queue-dashboard.ts';
import { registerQueueMetrics } from './queue-metrics.ts';
import { actionRoutes } from './routes/actions.ts';
import { activityRoutes } from './routes/activity.ts';
import { agentRoutes } from './routes/agents.ts';
import { alertRoutes } from './routes/alerts.ts';
import { auditRoutes } from './routes/audit.ts';
import { evidenceRoutes } from './routes/evidence.ts';
import { executionRoutes } from './routes/executions.ts';
import { meRoutes } from './routes/me.ts';
import { type ReadinessChecks, serviceRoutes } from './routes/service.ts';
import { taskRoutes } from './routes/tasks.ts';

export interface ApiDeps {
  config: Config;
  logger: FastifyBaseLogger;
  redis: RedisClient;
  queues: ReadonlyMap<EngineName, Queue>;
  /** Tool calls; shown on the dashboard and in the metrics beside the execution queues. */
  actionsQueue: Queue;
  store: ExecutionStore;
  events: RecordEvents;
  /** Final statuses of tool calls (an MCP tool call waits for its action's end). */
  actionEvents: RecordEvents<ActionStatus>;
  /** The messages of MCP response streams, for resuming them on any process. */
  mcpEvents: McpEventLog;
  /** The event streams' shared live reader and range reader (MCP sends run output from them). */
  streamTail: StreamTail;
  streamReader: EventStreamReader;
  /** Idempotency-Key of agents' POSTs (runs, tool calls). */
  idempotency: IdempotencyStore;
  /** The life of a run and of a tool call (guard/lifecycle): the routes only call these. */
  executions: ExecutionLifecycle;
  toolCalls: ActionLifecycle;
  tasks: TaskLifecycle;
  watch: Watch;
  alerts: AlertStore;
  agents: AgentStore;
  principals: PrincipalStore;
  tokens: TokenService;
  policy: PolicyDecisionPoint;
  budgets: BudgetStore;
  actions: ActionStore;
  tools: ToolSet;
  audit: Auditor;
  auditIndex: AuditIndex;
  /** Verifies this process's audit directory (GET /v1/audit/verify). */
  verifyAudit: () => Promise<AuditVerifyResult>;
  /** Checks cited records against this process's audit files (the console, the evidence pack). */
  cited: CitedVerifyDeps;
  /** Agents with their figures, and the per-minute activity behind them (the console). */
  overview: Overview;
  activity: ActivityStore;
  admin: AdminTokenCheck;
  profiles: ProfileSet;
  registry: Registry;
  /** Where the time of a run goes (sandgate_stage_seconds). */
  stages: StageClock;
  readiness: ReadinessChecks;
  /** Names of the profiles that can run now (engine up, runtime present). */
  availableProfiles: () => Promise<ReadonlySet<string>>;
  /** Serves the event streams of executions and actions (SSE). */
  eventStreams: EventStreamServer;
}

export async function buildApp(deps: ApiDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger,
    bodyLimit: deps.config.SANDGATE_BODY_LIMIT,
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    http: httpServerOptions(deps.config),
    clientErrorHandler,
  });
  // The longest a request may legitimately wait in silence: a `?wait=true` on the slowest profile.
  const longestWaitMs =
    Math.max(0, ...[...deps.profiles.values()].map((p) => p.limits.timeoutMs)) + deps.config.SANDGATE_WAIT_GRACE_MS;
  applyHttpLimits(app.server, deps.config, longestWaitMs + 10_000);
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandling(app);
  installAuth(app, deps);
  await registerOpenApi(app);
  // The MCP endpoint's resource URL: the configured public URL, or the address this app listens on.
  const resource = mcpResource(deps.config, () => app.server.address());

  // Open event streams end before the server waits for its connections to close.
  app.addHook('preClose', async () => deps.eventStreams.close());
  const keys = redisKeys(deps.config.SANDGATE_PREFIX);
  const queues = [...deps.queues.values(), deps.actionsQueue];
  registerQueueMetrics(deps.registry, queues);
  registerEventStreamMetrics(deps.registry, deps.eventStreams);
  await app.register(serviceRoutes, deps);
  await app.register(taskRoutes, deps);
  await app.register(agentRoutes, { ...deps, mcpResource: resource.url });
  await app.register(executionRoutes, {
    ...deps,
    waitGraceMs: deps.config.SANDGATE_WAIT_GRACE_MS,
    keys,
  });
  await app.register(actionRoutes, { ...deps, keys });
  await app.register(auditRoutes, deps);
  await app.register(alertRoutes, deps);
  await app.register(activityRoutes, deps);
  await app.register(evidenceRoutes, deps);
  await app.register(mcpRoutes, {
    ...deps,
    resource,
    followRun: runFollower(deps.streamTail, deps.streamReader, keys),
    waitGraceMs: deps.config.SANDGATE_WAIT_GRACE_MS,
    longestCallMs: longestWaitMs + 10_000,
  });
  await app.register(meRoutes);
  await app.register(consoleRoutes);
  await registerQueueDashboard(app, queues);
  return app;
}
