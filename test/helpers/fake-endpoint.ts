// A real HTTP server on loopback that stands in for the outside world (a mail gateway, a webhook
// receiver, a web page): it records every request it gets, so tests can count what reached it.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

export interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
  /** When it arrived (ms since the epoch). */
  at: number;
}

export interface FakeEndpoint {
  url: string;
  port: number;
  received: Received[];
  close(): Promise<void>;
}

export async function startFakeEndpoint(
  respond: (req: Received, res: ServerResponse) => void = (_, res) => {
    res.setHeader('content-type', 'application/json');
    res.end('{"accepted":true}');
  },
): Promise<FakeEndpoint> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const r = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, at: Date.now() };
      received.push(r);
      respond(r, res);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    received,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
