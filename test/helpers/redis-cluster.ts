// A real Redis Cluster for the tests: three masters (redis-server in cluster mode, no
// persistence) on loopback ports, joined by `redis-cli --cluster create`, torn down after.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort } from './processes.ts';

const run = promisify(execFile);

export interface TestCluster {
  /** REDIS_URL for Sandgate: redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3 */
  url: string;
  ports: number[];
  /** The master that serves a key (its port), by CLUSTER KEYSLOT and CLUSTER SLOTS. */
  masterOf(key: string): Promise<number>;
  /** Kills one master (SIGKILL): with full slot coverage required, the cluster goes down. */
  kill(port: number): Promise<void>;
  /** How many keys each master holds, in the order of `ports`. */
  keyCounts(): Promise<number[]>;
  stop(): Promise<void>;
}

async function untilOk(port: number, deadline: number): Promise<void> {
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null });
  probe.on('error', () => {});
  try {
    for (;;) {
      try {
        if (probe.status !== 'ready') await probe.connect();
        if ((await probe.cluster('INFO')).includes('cluster_state:ok')) return;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) throw new Error(`cluster node ${port} not ok in time`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    probe.disconnect();
  }
}

export async function startRedisCluster(masters = 3): Promise<TestCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'sg-cluster-'));
  const ports: number[] = [];
  const procs: ChildProcess[] = [];
  const stop = async () => {
    await Promise.all(
      procs.map(async (p) => {
        if (p.exitCode !== null || p.signalCode !== null) return;
        p.kill('SIGKILL');
        await once(p, 'exit');
      }),
    );
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters; i++) {
      // The bus port is chosen too (not port + 10000, which may be taken or out of range).
      const [port, bus] = [await freePort(), await freePort()];
      ports.push(port);
      // biome-ignore format: one option per pair
      const args = [
        '--port', String(port), '--cluster-port', String(bus), '--bind', '127.0.0.1',
        '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout', '2000', '--dir', dir, '--save', '', '--appendonly', 'no',
      ];
      procs.push(spawn('redis-server', args, { stdio: 'ignore' }));
    }
    const deadline = Date.now() + 20_000;
    for (const port of ports) {
      const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null });
      probe.on('error', () => {});
      for (;;) {
        try {
          await probe.connect();
          await probe.ping();
          break;
        } catch {
          if (Date.now() > deadline) throw new Error(`redis-server ${port} did not start`);
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      probe.disconnect();
    }
    await run(
      'redis-cli',
      ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'],
      { timeout: 20_000 },
    );
    for (const port of ports) await untilOk(port, deadline);
  } catch (e) {
    await stop();
    throw e;
  }

  const admin = new Redis({ port: ports[0], host: '127.0.0.1', lazyConnect: true });
  admin.on('error', () => {});
  let connected: Promise<void> | undefined;
  return {
    url: `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`,
    ports,
    async masterOf(key) {
      connected ??= admin.connect();
      await connected;
      const slot = Number(await admin.cluster('KEYSLOT', key));
      const ranges = await admin.cluster('SLOTS');
      const master = ranges.find(([from, to]) => slot >= from && slot <= to)?.[2];
      if (!master) throw new Error(`no master serves slot ${slot}`);
      return master[1];
    },
    async kill(port) {
      const p = procs[ports.indexOf(port)];
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      p.kill('SIGKILL');
      await once(p, 'exit');
    },
    async keyCounts() {
      return Promise.all(
        ports.map(async (port) => {
          const node = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null });
          node.on('error', () => {});
          try {
            await node.connect();
            return await node.dbsize();
          } finally {
            node.disconnect();
          }
        }),
      );
    },
    async stop() {
      admin.disconnect();
      await stop();
    },
  };
}
