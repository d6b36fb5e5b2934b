// /metrics of a runner-only process, under the API's connection deadlines, with /healthz and
// /readyz (Redis and this runner's engines, as the API's /readyz) for orchestrator probes. Its port may be taken
// (a second runner on the host, another exporter): then it takes the next free one of a few and
// says so in one line, so every runner on a host stays observable at a port the log names; when
// none is free it runs without /metrics. Either way the runner keeps running work.
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { applyHttpLimits, clientErrorHandler, httpServerOptions } from '../api/http-limits.ts';
import { checkReadiness, type ReadinessChecks } from '../api/routes/service.ts';
import type { Config } from '../contract/config.ts';
import { errorBody } from '../contract/errors.ts';

/** Ports tried from the configured one: the configured port and the next ones. */
export const METRICS_PORT_TRIES = 10;

export interface MetricsServer {
  /** The port it listens on; undefined when it could not listen. */
  port: number | undefined;
  close(): Promise<void>;
}

const json = (res: import('node:http').ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
};

export async function startRunnerMetrics(
  registry: Registry,
  config: Config,
  logger: Logger,
  readiness: ReadinessChecks = {},
): Promise<MetricsServer> {
  const server = createServer(httpServerOptions(config), (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method === 'GET' && path === '/healthz') return json(res, 200, { status: 'ok' });
    if (req.method === 'GET' && path === '/readyz') {
      checkReadiness(readiness).then(
        ({ ok, body }) => json(res, ok ? 200 : 503, body),
        (e: Error) => json(res, 503, errorBody('dependency_unavailable', e.message)),
      );
      return;
    }
    if (path !== '/metrics' || req.method !== 'GET') {
      json(res, 404, errorBody('route_not_found', 'only GET /metrics, /healthz and /readyz are served here'));
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (e: Error) =>
        res
          .writeHead(503, { 'content-type': 'application/json' })
          .end(JSON.stringify(errorBody('dependency_unavailable', `metrics could not be collected: ${e.message}`))),
    );
  });
  applyHttpLimits(server, config, config.SANDGATE_REQUEST_TIMEOUT_MS);
  server.on('clientError', clientErrorHandler);

  const first = config.SANDGATE_RUNNER_METRICS_PORT;
  const last = Math.min(65_535, first + METRICS_PORT_TRIES - 1);
  for (let port = first; port <= last; port++) {
    const error = await listen(server, port, config.HOST);
    if (!error) {
      if (port === first) logger.info({ port }, 'runner metrics listening');
      else
        logger.warn(
          { port, configured: first },
          `runner metrics: port ${first} is in use (another runner?); serving /metrics on ${port} instead`,
        );
      return { port, close: () => closeServer(server) };
    }
    if (error.code !== 'EADDRINUSE') {
      logger.warn(
        { port, err: error.message },
        `runner metrics: cannot listen on ${config.HOST}:${port} (${error.code}); this runner runs without /metrics`,
      );
      return { port: undefined, close: async () => {} };
    }
  }
  logger.warn(
    { from: first, to: last },
    `runner metrics: ports ${first}-${last} are all in use; this runner runs without /metrics`,
  );
  return { port: undefined, close: async () => {} };
}

/** Listens, or returns why not (a server may listen again after a failed listen). */
async function listen(server: Server, port: number, host: string): Promise<NodeJS.ErrnoException | undefined> {
  try {
    server.listen(port, host);
    await once(server, 'listening'); // rejects with the 'error' event
    return undefined;
  } catch (e) {
    return e as NodeJS.ErrnoException;
  }
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
