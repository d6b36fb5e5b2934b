// `node bin/sandgate.ts all|api|runner`: parse the config once, compose, listen, shut down
// gracefully on SIGTERM/SIGINT.
import pino from 'pino';
import { loadConfig } from '../contract/config.ts';
import { composeSandgate, type Mode, SHUTDOWN_MARGIN_MS } from './compose.ts';
import { type MetricsServer, startRunnerMetrics } from './metrics-server.ts';

const mode = (process.argv[2] ?? 'all') as Mode;
if (!['all', 'api', 'runner'].includes(mode)) {
  console.error(`usage: node bin/sandgate.ts [all|api|runner] (got "${mode}")`);
  process.exit(2);
}

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
} catch (e) {
  console.error((e as Error).message);
  process.exit(2);
}
const logger = pino({ level: config.SANDGATE_LOG_LEVEL, name: 'sandgate' });

// An unhandled rejection or exception is a bug (every background task catches its own faults):
// one fatal line with its stack, then exit 1 as Node would, since the process's state is unknown;
// its runs end `runner_lost`, never twice. The test helpers fail a test on such a line.
const die = (what: string) => (err: unknown) => {
  logger.fatal({ err }, what);
  process.exit(1);
};
process.on('unhandledRejection', die('unhandled rejection'));
process.on('uncaughtException', die('uncaught exception'));

let sandgate: Awaited<ReturnType<typeof composeSandgate>>;
try {
  sandgate = await composeSandgate({ config, mode, logger, defaultMetrics: true });
} catch (e) {
  logger.fatal((e as Error).message);
  process.exit(1);
}

let metricsServer: MetricsServer | undefined;
if (sandgate.app) {
  try {
    await sandgate.app.listen({ port: config.PORT, host: config.HOST });
  } catch (e) {
    logger.fatal(
      { port: config.PORT, host: config.HOST },
      `cannot listen on ${config.HOST}:${config.PORT}: ${(e as Error).message}`,
    );
    await Promise.race([
      sandgate.close(),
      new Promise((r) => setTimeout(r, config.SANDGATE_SHUTDOWN_GRACE_MS + SHUTDOWN_MARGIN_MS).unref()),
    ]);
    process.exit(1);
  }
  if (!config.SANDGATE_ADMIN_TOKEN) logger.info(`admin token: ${config.SANDGATE_DATA_DIR}/admin-token`);
} else if (config.SANDGATE_RUNNER_METRICS_PORT) {
  // A runner-only process still exposes its run metrics.
  metricsServer = await startRunnerMetrics(sandgate.registry, config, logger, sandgate.readiness);
}
logger.info({ mode, ...(metricsServer && { metricsPort: metricsServer.port }) }, 'sandgate started');

let stopping = false;
const stop = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down: finishing in-flight runs');
  void metricsServer?.close();
  // Bounded: a dependency that is down (Redis) must not keep the process from exiting.
  const hardStop = setTimeout(
    () => {
      logger.error('shutdown did not complete in time; exiting');
      process.exit(1);
    },
    config.SANDGATE_SHUTDOWN_GRACE_MS + SHUTDOWN_MARGIN_MS + 2000,
  );
  hardStop.unref();
  await sandgate.close();
  logger.info('stopped');
  process.exit(0);
};
process.on('SIGTERM', () => void stop('SIGTERM'));
// SIGHUP re-reads the operator policies; a set that fails validation is refused, the old one stays.
process.on('SIGHUP', () => {
  sandgate.policy
    .reload()
    .then(() => logger.info('policies reloaded'))
    .catch((e: Error) => logger.error({ err: e.message }, 'policy reload refused; the previous policies stay active'));
});
process.on('SIGINT', () => void stop('SIGINT'));
