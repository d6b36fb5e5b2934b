// The API side of a process: the admin token and signing keys, the readiness checks and the
// fastify app over the core's state and lifecycles.
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { buildApp } from '../api/app.ts';
import { createEventStreamServer } from '../api/event-stream.ts';
import type { ReadinessChecks } from '../api/routes/service.ts';
import type { ActionStatus } from '../contract/action.ts';
import { adminTokenCheck, loadAdminToken } from '../guard/identity/admin-token.ts';
import { loadKeyRing } from '../guard/identity/signing-keys.ts';
import { createTokenService } from '../guard/identity/tokens.ts';
import { createOverview } from '../guard/watch/overview.ts';
import { createEventStreamReader } from '../state/event-streams.ts';
import { createIdempotencyStore } from '../state/idempotency.ts';
import { createMcpEventLog } from '../state/mcp-events.ts';
import { createPrincipalStore } from '../state/principals.ts';
import { createRecordEvents } from '../state/record-events.ts';
import { createStreamTail } from '../state/stream-tail.ts';
import type { Core } from './compose-core.ts';
import { connect, throttledErrorLog } from './compose-parts.ts';
import type { Closer } from './shutdown.ts';

export interface ApiSide {
  app: FastifyInstance;
  adminToken: string;
  closers: Closer[];
}

/** Redis, and each engine a loaded profile needs: local ones from their last probe, remote ones by their workers. */
export function readinessChecks(core: Core): ReadinessChecks {
  const checks: Record<string, () => Promise<void>> = {
    redis: async () => {
      await core.redis.ping();
    },
  };
  for (const [name, queue] of core.executionQueues) {
    const local = core.local.engines[name];
    checks[`engine:${name}`] = local
      ? () => local.check() // the docker engine answers from its last probe, never waits on Docker
      : async () => {
          if ((await queue.getWorkersCount()) === 0) throw new Error(`no runner is taking ${name} jobs`);
        };
  }
  return checks;
}

export async function composeApiSide(core: Core, registry: Registry): Promise<ApiSide> {
  const { config } = core;
  const adminToken = await loadAdminToken(config.SANDGATE_DATA_DIR, config.SANDGATE_ADMIN_TOKEN);
  const keys = await loadKeyRing(config.SANDGATE_DATA_DIR);
  const principals = createPrincipalStore(core.redis, config.SANDGATE_PREFIX);
  const events = await createRecordEvents(
    await connect(config.REDIS_URL, 'sandgate-events-sub'),
    core.store.doneChannel,
  );
  const actionEvents = await createRecordEvents<ActionStatus>(
    await connect(config.REDIS_URL, 'sandgate-action-events-sub'),
    core.actions.doneChannel,
  );
  // One blocking reader of every followed event stream for this process's SSE clients.
  const tailErrors = throttledErrorLog(core.log, 'stream-tail');
  const tail = await createStreamTail(
    await connect(config.REDIS_URL, 'sandgate-stream-tail', { maxRetriesPerRequest: null }),
    core.redis,
    (e) => tailErrors(e),
  );
  const streamReader = createEventStreamReader(core.redis);
  const eventStreams = createEventStreamServer({
    tail,
    reader: streamReader,
    heartbeatMs: config.SANDGATE_STREAM_HEARTBEAT_MS,
    bufferCapBytes: config.SANDGATE_STREAM_BUFFER_BYTES,
    maxLifeMs: config.SANDGATE_STREAM_MAX_MS,
    onError: (e) => tailErrors(e),
  });
  const app = await buildApp({
    config,
    logger: core.log,
    redis: core.redis,
    queues: core.executionQueues,
    actionsQueue: core.actionsQueue,
    store: core.store,
    events,
    actionEvents,
    idempotency: createIdempotencyStore(core.redis, config.SANDGATE_PREFIX),
    mcpEvents: createMcpEventLog(core.redis, config.SANDGATE_PREFIX, config.SANDGATE_MCP_EVENT_TTL_S),
    executions: core.executions,
    toolCalls: core.toolCalls,
    tasks: core.tasks,
    watch: core.watch,
    alerts: core.alerts,
    agents: core.agents,
    actions: core.actions,
    tools: core.tools,
    audit: core.auditTrail.audit,
    auditIndex: core.auditTrail.index,
    verifyAudit: core.auditTrail.verify,
    // The directories openAuditTrail writes this process's chain into: live, then the archive.
    cited: { dirs: core.auditTrail.dirs, verify: core.auditTrail.verify },
    overview: createOverview({
      agents: core.agents,
      watchStore: core.watchStore,
      budgets: core.budgets,
      activity: core.activity,
      alerts: core.alerts,
    }),
    activity: core.activity,
    stages: core.stages,
    principals,
    policy: core.policy,
    budgets: core.budgets,
    tokens: createTokenService(keys),
    admin: adminTokenCheck(adminToken),
    profiles: core.profiles,
    registry,
    readiness: readinessChecks(core),
    availableProfiles: core.availableProfiles,
    eventStreams,
    streamTail: tail,
    streamReader,
  });
  return {
    app,
    adminToken,
    closers: [
      { name: 'execution events', close: () => events.close() },
      { name: 'action events', close: () => actionEvents.close() },
      {
        name: 'event streams',
        close: async () => {
          eventStreams.close();
          tail.close();
        },
      },
    ],
  };
}
