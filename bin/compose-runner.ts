// The runner side of a process: its heartbeat, the local engines, the execution workers and the
// actions worker. Everything it needs beyond its own connections comes from the core.

import type { Registry } from 'prom-client';
import type { ActionStatus } from '../contract/action.ts';
import { buildNotifyWorker } from '../runner/notify-worker.ts';
import { createRunMetrics } from '../runner/run-metrics.ts';
import { buildActionWorker } from '../runner/tools/action-worker.ts';
import type { Lookup } from '../runner/tools/egress/safe-fetch.ts';
import { createToolBridge } from '../runner/tools/tool-bridge.ts';
import { buildWorker, type RunnerHandle } from '../runner/worker.ts';
import { redisKeys } from '../state/keys.ts';
import { createLocalRuns } from '../state/local-runs.ts';
import { createRecordEvents } from '../state/record-events.ts';
import { registerRunner } from '../state/runners.ts';
import type { Core } from './compose-core.ts';
import { connect, makeEngines } from './compose-parts.ts';
import type { Closer } from './shutdown.ts';

export interface RunnerSide {
  runner: RunnerHandle;
  closeActionWorker: () => Promise<void>;
  /** Closed after the workers, in this order. */
  closers: Closer[];
}

export async function composeRunnerSide(
  core: Core,
  registry: Registry,
  env: Record<string, string | undefined>,
  lookup: Lookup | undefined,
): Promise<RunnerSide> {
  const { config, log } = core;
  const closers: Closer[] = [];
  const runners = await registerRunner(core.redis, config.SANDGATE_PREFIX, config.SANDGATE_HEARTBEAT_TTL_MS);
  // Runs even past the shutdown deadline: its removal lets the next runner reap at once.
  closers.push({ name: 'runner heartbeat', close: () => runners.stop(), must: true });
  // BullMQ leaves a connection it was handed open: these two are closed with the runner.
  const workerConnection = await connect(config.REDIS_URL, 'sandgate-worker', { maxRetriesPerRequest: null });
  const actionConnection = await connect(config.REDIS_URL, 'sandgate-action-worker', { maxRetriesPerRequest: null });
  const notifyConnection = await connect(config.REDIS_URL, 'sandgate-notify-worker', { maxRetriesPerRequest: null });
  closers.push({
    name: 'worker connections',
    must: true,
    close: async () => {
      workerConnection.disconnect();
      actionConnection.disconnect();
      notifyConnection.disconnect();
    },
  });
  const actionEvents = await createRecordEvents<ActionStatus>(
    await connect(config.REDIS_URL, 'sandgate-action-events'),
    core.actions.doneChannel,
  );
  closers.push({ name: 'action events', close: () => actionEvents.close() });
  const bridge = createToolBridge({
    toolCalls: core.toolCalls,
    agents: core.agents,
    actions: core.actions,
    events: actionEvents,
  });
  const metrics = createRunMetrics(registry);
  core.local.engines = makeEngines(config, log, core.profiles, runners, bridge, metrics);
  // A first answer from Docker before the process says it started (bounded: a missing engine
  // must not delay the start of js runs).
  await core.local.engines.docker?.health.ready(1500);
  const runner = await buildWorker({
    config,
    connection: workerConnection,
    subscriber: await connect(config.REDIS_URL, 'sandgate-cancel-sub'),
    executions: core.executions,
    profiles: core.profiles,
    engines: core.local.engines,
    metrics,
    stages: core.stages,
    logger: log.child({ part: 'runner' }),
    streams: core.streams,
    store: core.store,
    // On the command connection, as the store's start: a run is listed before it starts.
    local: createLocalRuns(core.redis, redisKeys(config.SANDGATE_PREFIX), runners),
  });
  if (config.SANDGATE_RUN_HERE) core.local.claimHere = runner.claimHere;
  const actionWorker = await buildActionWorker({
    config,
    connection: actionConnection,
    toolCalls: core.toolCalls,
    tools: core.tools,
    env,
    logger: log.child({ part: 'actions' }),
    ...(lookup && { lookup }),
  });
  // Runners deliver alerts (an API-only process raises them; the queue holds them for a runner).
  const notifyWorker = await buildNotifyWorker({
    connection: notifyConnection,
    prefix: config.SANDGATE_PREFIX,
    alerts: core.alerts,
    audit: core.auditTrail.audit,
    sinks: core.sinks,
    renotify: core.renotify,
    logger: log.child({ part: 'notify' }),
  });
  return {
    runner,
    closeActionWorker: async () => {
      await Promise.all([actionWorker.close(), notifyWorker.close()]);
    },
    closers,
  };
}
