// The fault suite's scenario context: each scenario gets its own redis-server on a free port,
// its own prefix, data directory and admin token, processes that are watched for crashes, and a
// cleanup that runs whatever happens. Loopback only.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeContainersOf } from '../test/helpers/docker.ts';
import { type ServiceClient, serviceClient } from '../test/helpers/http-client.ts';
import { type Child, freePort, spawnSandgate, startRedis, waitForOutput } from '../test/helpers/processes.ts';
import { profilesDir } from '../test/helpers/sandgate.ts';

export interface Outcome {
  /** One line of figures. */
  line: string;
  /** What went wrong (lost, duplicated, crashed, left, too slow); empty when all held. */
  problems: string[];
}

export interface Scenario {
  name: string;
  /** The scenario is stopped and failed past this. */
  budgetMs: number;
  run(ctx: ScenarioContext): Promise<Outcome>;
}

export type ScenarioRedis = Awaited<ReturnType<typeof startRedis>>;

/** A spawned service process, watched: a crash is any fatal line or an exit nobody asked for. */
export interface Proc {
  child: Child;
  mode: 'all' | 'api' | 'runner';
  /** Sends a signal the scenario means (its exit is then expected). */
  kill(signal: NodeJS.Signals): void;
  /** Why it counts as crashed, or undefined. */
  crash(): string | undefined;
}

export interface ScenarioContext {
  /** A redis-server of the scenario's own (persistent when `persistDir` is given). */
  redis(opts?: { persist?: boolean }): Promise<ScenarioRedis>;
  /** Environment of one Sandgate instance on `redis`: prefix, admin token, data dir, profiles. */
  instance(redis: ScenarioRedis, profiles: string[], extra?: Record<string, string>): Promise<Instance>;
  /** Starts a process of `instance` and waits for "sandgate started". */
  spawn(instance: Instance, mode: Proc['mode'], extra?: Record<string, string>): Promise<Proc>;
  /** Runs at the end of the scenario, last registered first. */
  defer(fn: () => Promise<unknown>): void;
  /** Crashes of every process spawned so far. */
  crashes(): string[];
}

export interface Instance {
  env: Record<string, string>;
  prefix: string;
  dataDir: string;
  client: ServiceClient;
}

export function createContext(): { ctx: ScenarioContext; close: () => Promise<void> } {
  const deferred: Array<() => Promise<unknown>> = [];
  const procs: Proc[] = [];
  const ctx: ScenarioContext = {
    async redis({ persist = false } = {}) {
      const dir = persist ? await mkdtemp(join(tmpdir(), 'sg-fault-redis-')) : undefined;
      const redis = await startRedis(dir ? { persistDir: dir } : {});
      deferred.push(async () => {
        await redis.stop();
        if (dir) await rm(dir, { recursive: true, force: true });
      });
      return redis;
    },
    async instance(redis, profiles, extra = {}) {
      const prefix = `sgfault-${randomBytes(4).toString('hex')}`;
      const dataDir = await mkdtemp(join(tmpdir(), 'sg-fault-data-'));
      const profDir = await profilesDir(profiles);
      // Registered before any process, so it runs after they are gone.
      deferred.push(async () => {
        await removeContainersOf(prefix).catch(() => 0);
        await rm(dataDir, { recursive: true, force: true });
        await rm(profDir, { recursive: true, force: true });
      });
      const port = await freePort();
      const env = {
        REDIS_URL: redis.url,
        PORT: String(port),
        SANDGATE_PREFIX: prefix,
        SANDGATE_ADMIN_TOKEN: `fault-admin-${randomBytes(16).toString('hex')}`,
        SANDGATE_DATA_DIR: dataDir,
        SANDGATE_PROFILES_DIR: profDir,
        SANDGATE_RUNNER_METRICS_PORT: '0',
        ...extra,
      };
      return { env, prefix, dataDir, client: serviceClient(port, env.SANDGATE_ADMIN_TOKEN) };
    },
    async spawn(instance, mode, extra = {}) {
      const child = spawnSandgate(mode, { ...instance.env, ...extra });
      let expected = false;
      let signal: NodeJS.Signals | undefined;
      const proc: Proc = {
        child,
        mode,
        kill(s) {
          expected = true;
          signal = s;
          child.proc.kill(s);
        },
        crash() {
          const fatal = child.faults();
          if (fatal.length) return fatal[0]!.slice(0, 300);
          const code = child.proc.exitCode;
          const exited = code !== null || child.proc.signalCode !== null;
          if (exited && !expected)
            return `${mode} pid ${child.proc.pid} exited on its own (${code ?? child.proc.signalCode})`;
          if (exited && signal !== 'SIGKILL' && code !== 0)
            return `${mode} pid ${child.proc.pid} exited ${code ?? child.proc.signalCode} after ${signal}`;
          return undefined;
        },
      };
      procs.push(proc);
      deferred.push(async () => {
        if (child.proc.exitCode === null && child.proc.signalCode === null) {
          child.proc.kill('SIGKILL');
          await child.exited;
        }
      });
      await waitForOutput(child, /sandgate started/, 30_000);
      return proc;
    },
    defer(fn) {
      deferred.push(fn);
    },
    crashes: () => procs.map((p) => p.crash()).filter((c): c is string => c !== undefined),
  };
  const close = async () => {
    for (const fn of deferred.reverse()) await fn().catch(() => {});
  };
  return { ctx, close };
}

/** Stops a process with SIGTERM and returns how long it took to exit (ms). */
export async function terminate(proc: Proc): Promise<number> {
  const t = Date.now();
  proc.kill('SIGTERM');
  await proc.child.exited;
  return Date.now() - t;
}
