// `node bin/sandgate.ts all|api|runner`: parse the config once, compose, listen, shut down
// gracefully on SIGTERM/SIGINT.
import { createServer } from 'node:http';
import pino from 'pino';
import { loadConfig } from '../contract/config.ts';
import { composeSandgate, type Mode, SHUTDOWN_MARGIN_MS } from './compose.ts';

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

let sandgate: Awaited<ReturnType<typeof composeSandgate>>;
try {
  sandgate = await composeSandgate({ config, mode, logger, defaultMetrics: true });
} catch (e) {
  logger.fatal((e as Error).message);
  process.exit(1);
}

let metricsServer: ReturnType<typeof createServer> | undefined;
if (sandgate.app) {
  await sandgate.app.listen({ port: config.PORT, host: config.HOST });
  if (!config.SANDGATE_ADMIN_TOKEN) logger.info(`admin token: ${config.SANDGATE_DATA_DIR}/admin-token`);
} else if (config.SANDGATE_RUNNER_METRICS_PORT) {
  // A runner-only process still exposes its run metrics.
  const registry = sandgate.registry;
  metricsServer = createServer(async (_req, res) => {
    res.setHeader('content-type', registry.contentType);
    res.end(await registry.metrics());
  }).listen(config.SANDGATE_RUNNER_METRICS_PORT, config.HOST);
}
logger.info({ mode }, 'sandgate started');

let stopping = false;
const stop = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down: finishing in-flight runs');
  metricsServer?.close();
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
