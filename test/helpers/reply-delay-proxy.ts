// A TCP proxy in front of a real Redis that, once a command carrying a given marker has gone
// through, holds back every reply to that connection for a while: the command runs in Redis, but
// its caller's deadline passes before the answer arrives (an "unanswered" command, as when a
// connection drops after Redis did the work). Replies keep their order; nothing is lost.
// Or, with `cutOnce`, a Redis that goes away at a chosen command: that command never reaches it,
// every connection drops and new ones are refused for a while (an outage mid-admission).
import { once } from 'node:events';
import { createConnection, createServer, type Socket } from 'node:net';

export interface ReplyDelayProxy {
  url: string;
  /** Holds the replies of the next connection that sends `marker`, for `ms`. */
  armOnce(marker: string, ms: number): void;
  /** How many times the hold was applied. */
  held(): number;
  /** The next command carrying `marker` is dropped, every connection with it; none for `ms`. */
  cutOnce(marker: string, ms: number): void;
  /** How many times the cut was applied. */
  cut(): number;
  close(): Promise<void>;
}

export async function startReplyDelayProxy(target: { host: string; port: number }): Promise<ReplyDelayProxy> {
  let armed: { marker: string; ms: number } | undefined;
  let held = 0;
  let cutArmed: { marker: string; ms: number } | undefined;
  let cuts = 0;
  let refuseUntil = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    if (Date.now() < refuseUntil) {
      client.destroy();
      return;
    }
    const upstream = createConnection(target);
    sockets.add(client).add(upstream);
    let holding: Buffer[] | undefined;
    upstream.on('data', (d: Buffer) => (holding ? holding.push(d) : client.write(d)));
    client.on('data', (d: Buffer) => {
      const c = cutArmed;
      if (c && d.includes(c.marker)) {
        cutArmed = undefined;
        cuts++;
        refuseUntil = Date.now() + c.ms;
        for (const s of sockets) s.destroy();
        return;
      }
      const a = armed;
      if (a && d.includes(a.marker)) {
        armed = undefined;
        held++;
        holding = [];
        setTimeout(() => {
          for (const b of holding ?? []) client.write(b);
          holding = undefined;
        }, a.ms);
      }
      upstream.write(d);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    url: `redis://127.0.0.1:${port}`,
    armOnce(marker, ms) {
      armed = { marker, ms };
    },
    held: () => held,
    cutOnce(marker, ms) {
      cutArmed = { marker, ms };
    },
    cut: () => cuts,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
