// A loopback stand-in for the Docker socket, for fault tests: it forwards to the real dockerd
// until told to hang (then it keeps every connection, old and new, open and answers nothing, as
// a wedged dockerd would), to forward again, or to go away (the socket file removed).
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface DockerProxy {
  path: string;
  hang(): void;
  forward(): void;
  /** Stops listening and removes the socket file: "the Docker socket disappeared". */
  remove(): Promise<void>;
  /** Listens again at the same path. */
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startDockerProxy(target = '/var/run/docker.sock'): Promise<DockerProxy> {
  const path = join(tmpdir(), `sg-docker-${randomBytes(4).toString('hex')}.sock`);
  let hung = false;
  const open = new Set<Socket>();
  let server: Server | undefined;

  const listen = async () => {
    server = createServer({ allowHalfOpen: true }, (client) => {
      open.add(client);
      client.on('close', () => open.delete(client));
      client.on('error', () => {});
      if (hung) return; // accepted, never answered
      const upstream = createConnection({ path: target, allowHalfOpen: true });
      upstream.on('error', () => client.destroy());
      open.add(upstream);
      upstream.on('close', () => open.delete(upstream));
      // Forward while not hung; once hung, bytes in either direction are held back.
      client.on('data', (d) => hung || upstream.write(d));
      upstream.on('data', (d) => hung || client.write(d));
      client.on('end', () => hung || upstream.end());
      upstream.on('end', () => hung || client.end());
    });
    await new Promise<void>((resolve, reject) => server!.once('error', reject).listen(path, resolve));
  };
  const stop = async () => {
    for (const s of open) s.destroy();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
    rmSync(path, { force: true });
  };
  await listen();
  return {
    path,
    hang: () => {
      hung = true;
    },
    forward: () => {
      hung = false;
    },
    remove: stop,
    restore: listen,
    close: stop,
  };
}
