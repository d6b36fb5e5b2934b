// The composition root: the one place that connects to Redis, loads profiles and keys, and wires
// the API side and/or the runner side together over one core. `bin/sandgate.ts` calls it; so do
// the integration tests. The order of shutdown is stated once, in close() below.
import type { FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { ReadinessChecks } from '../api/routes/service.ts';
import type { Config } from '../contract/config.ts';
import type { PolicyDecisionPoint } from '../guard/policy/decision-point.ts';
import type { DockerEngine } from '../runner/engines/docker/docker-engine.ts';
import type { Engine } from '../runner/engines/engine.ts';
import type { Lookup } from '../runner/tools/egress/safe-fetch.ts';
import type { RunnerHandle } from '../runner/worker.ts';
import { composeApiSide, readinessChecks } from './compose-api.ts';
import { composeCore } from './compose-core.ts';
import { composeRunnerSide } from './compose-runner.ts';
import { type Closer, SHUTDOWN_MARGIN_MS, shutdownClock } from './shutdown.ts';

export { SHUTDOWN_MARGIN_MS };
export type Mode = 'all' | 'api' | 'runner';

export interface Sandgate {
  app: FastifyInstance | undefined;
  runner: RunnerHandle | undefined;
  policy: PolicyDecisionPoint;
  engines: { isolate?: Engine; docker?: DockerEngine };
  registry: Registry;
  /** What /readyz checks: Redis, and each engine (this process's own, or a runner taking its jobs). */
  readiness: ReadinessChecks;
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

export async function composeSandgate({
  config,
  mode,
  logger,
  defaultMetrics = false,
  env = process.env,
  lookup,
}: ComposeOptions): Promise<Sandgate> {
  const log = logger ?? pino({ level: config.SANDGATE_LOG_LEVEL, name: 'sandgate' });
  const registry = new Registry();
  if (defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'sandgate_' });
  const core = await composeCore(config, mode, log, env, registry);
  const runnerSide = mode !== 'api' ? await composeRunnerSide(core, registry, env, lookup) : undefined;
  const apiSide = mode !== 'runner' ? await composeApiSide(core, registry) : undefined;

  return {
    app: apiSide?.app,
    runner: runnerSide?.runner,
    policy: core.policy,
    engines: core.local.engines,
    registry,
    readiness: readinessChecks(core),
    adminToken: apiSide?.adminToken ?? '',
    async close() {
      const { left, step, closer } = shutdownClock(config.SANDGATE_SHUTDOWN_GRACE_MS, log);
      // 1. Stop taking requests, and stop retrying in the background.
      await step('http', async () => apiSide?.app.close(), Math.min(2000, left()));
      core.background.abort();
      // 2. The workers: in-flight runs get the grace period (then are cancelled); what follows
      //    keeps a share of the margin.
      await step(
        'runner',
        () =>
          Promise.all([
            runnerSide?.runner.close(config.SANDGATE_SHUTDOWN_GRACE_MS, Date.now() + Math.max(0, left() - 1700)),
            runnerSide?.closeActionWorker(),
          ]),
        Math.max(0, left() - 1500),
      );
      // 3. The sides' own connections, the heartbeat (always), the queues.
      const queues: Closer[] = [...core.executionQueues.values(), core.actionsQueue, core.notifyQueue].map((q) => ({
        name: `queue ${q.name}`,
        close: () => q.close(),
      }));
      const activity: Closer = {
        name: 'activity counts and evidence',
        close: () => Promise.all([core.activity.flush(), core.watchStore.flush()]),
      };
      for (const c of [...(runnerSide?.closers ?? []), ...(apiSide?.closers ?? []), ...queues, activity])
        await closer(c);
      // 4. The audit trail, last before Redis: everything above may still write records.
      await step('audit', () => core.auditTrail.close(), Math.max(500, left()));
      // 5. Redis.
      const connections = [core.redis, core.queueRedis];
      await step(
        'redis',
        () => Promise.all(connections.map((c) => c.quit().catch(() => c.disconnect()))),
        Math.max(200, Math.min(1000, left())),
      );
      for (const c of connections) c.disconnect();
    },
  };
}
