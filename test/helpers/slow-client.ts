// Slowloris clients on real loopback sockets: each trickles its request one byte at a time and
// records when and how the server ended the connection.
import { connect, type Socket } from 'node:net';

export interface SlowClient {
  /** Resolves when the server closed the connection: after how long, and what it answered. */
  closed: Promise<{ afterMs: number; answer: string; refused: boolean }>;
  destroy(): void;
}

export type SlowKind = 'headers' | 'body';

/**
 * `headers`: a request line and headers that never end; `body`: complete headers announcing a
 * body that then comes one byte per `everyMs`. `refused`: closed without a word (the connection
 * limit); a deadline answers 408 first.
 */
export function slowClient(
  port: number,
  kind: SlowKind,
  opts: { everyMs?: number; path?: string; headers?: Record<string, string> } = {},
): SlowClient {
  const { everyMs = 1000, path = '/v1/executions' } = opts;
  const extra = Object.entries(opts.headers ?? {})
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  const started = Date.now();
  const socket: Socket = connect(port, '127.0.0.1');
  let answer = '';
  let timer: NodeJS.Timeout | undefined;
  const trickle = () => {
    if (socket.destroyed) return;
    socket.write('a');
  };
  socket.on('connect', () => {
    const head =
      kind === 'headers'
        ? `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\n${extra}x-slow: `
        : `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\n${extra}content-type: application/json\r\ncontent-length: 100000\r\n\r\n`;
    socket.write(head);
    timer = setInterval(trickle, everyMs);
  });
  socket.on('data', (d) => (answer += d));
  socket.on('error', () => {});
  const closed = new Promise<{ afterMs: number; answer: string; refused: boolean }>((resolve) => {
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ afterMs: Date.now() - started, answer, refused: answer === '' });
    });
  });
  return {
    closed,
    destroy: () => {
      clearInterval(timer);
      socket.destroy();
    },
  };
}

/** A connection that sends its first bytes and then nothing, to fill the connection limit. */
export function stalledClient(port: number): SlowClient {
  return slowClient(port, 'headers', { everyMs: 3_600_000, path: '/healthz' });
}
