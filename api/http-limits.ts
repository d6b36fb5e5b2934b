// Deadlines and limits of every HTTP server Sandgate listens with (the API and a runner's
// /metrics): a client that trickles its headers or body is cut, idle connections close, and a
// connection limit keeps a flood of sockets from exhausting the process.
import { type Server, type ServerOptions, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Config } from '../contract/config.ts';
import { ERRORS, type ErrorCode, errorBody } from '../contract/errors.ts';

type LimitsConfig = Pick<
  Config,
  | 'SANDGATE_REQUEST_TIMEOUT_MS'
  | 'SANDGATE_HEADERS_TIMEOUT_MS'
  | 'SANDGATE_KEEP_ALIVE_TIMEOUT_MS'
  | 'SANDGATE_MAX_CONNECTIONS'
  | 'SANDGATE_MAX_REQUESTS_PER_SOCKET'
>;

/** Options for http.createServer (fastify passes them through as `http`). */
export function httpServerOptions(config: LimitsConfig): ServerOptions {
  return {
    requestTimeout: config.SANDGATE_REQUEST_TIMEOUT_MS,
    headersTimeout: config.SANDGATE_HEADERS_TIMEOUT_MS,
    keepAliveTimeout: config.SANDGATE_KEEP_ALIVE_TIMEOUT_MS,
    // Node looks for expired requests only this often (30 s by default), which would stretch
    // every deadline above by up to that much.
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(config.SANDGATE_HEADERS_TIMEOUT_MS / 4))),
  };
}

/**
 * Sets the limits on a created server (after fastify, which assigns its own defaults). `idleMs`:
 * a socket silent both ways this long is destroyed (a client that never reads its answer); it
 * must exceed the longest silent wait a request may legitimately have (`?wait=true`).
 */
export function applyHttpLimits(server: Server, config: LimitsConfig, idleMs: number): void {
  server.requestTimeout = config.SANDGATE_REQUEST_TIMEOUT_MS;
  server.headersTimeout = config.SANDGATE_HEADERS_TIMEOUT_MS;
  server.keepAliveTimeout = config.SANDGATE_KEEP_ALIVE_TIMEOUT_MS;
  server.maxConnections = config.SANDGATE_MAX_CONNECTIONS;
  server.maxRequestsPerSocket = config.SANDGATE_MAX_REQUESTS_PER_SOCKET || null;
  server.setTimeout(idleMs);
}

const CLIENT_ERRORS: Record<string, [ErrorCode, string]> = {
  ERR_HTTP_REQUEST_TIMEOUT: [
    'request_timeout',
    'the request did not arrive in time; send headers and body without pausing',
  ],
  HPE_HEADER_OVERFLOW: ['headers_too_large', 'the request headers are too large'],
};

/**
 * Answers what never became a request (a deadline passed, malformed HTTP) in the service's error
 * shape, then closes the connection. For fastify's `clientErrorHandler` and a plain server's
 * 'clientError' event.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [code, message] = CLIENT_ERRORS[err.code ?? ''] ?? ['bad_request', 'the request is not valid HTTP/1.1'];
  if (socket.writable) {
    const body = JSON.stringify(errorBody(code, message));
    const status = ERRORS[code];
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
