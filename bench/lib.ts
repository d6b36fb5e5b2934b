// Shared benchmark plumbing: percentiles, a service in a child process, an HTTP client pool.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Redis } from 'ioredis';
import { Pool } from 'undici';
import { type Child, freePort, spawnSandgate } from '../test/helpers/processes.ts';
import { dropPrefix, REDIS_URL } from '../test/helpers/sandgate.ts';

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export const fmt = (n: number, digits = 2): string => n.toFixed(digits);

export interface BenchService {
  base: string;
  /** Where the service's /metrics are: the API's, and the runner's when it runs apart. */
  metricsBases: string[];
  prefix: string;
  pool: Pool;
  /** Auth header of an agent granted `profiles`. */
  agentAuth(profiles: string[]): Promise<string>;
  /** The admin's auth header. */
  admin: string;
  stop(): Promise<void>;
}

/** Waits until the service answers /readyz (its log may be quiet), or fails with its output. */
async function ready(base: string, child: Child): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (child.proc.exitCode !== null) break;
    const ok = await fetch(`${base}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the service did not become ready:\n${child.output()}`);
}

/**
 * Starts `npm start` (mode all) in its own process, so client and server do not share a thread;
 * with BENCH_SPLIT=1, an API process and a runner process instead (a deployment's shape).
 */
export async function startService(
  env: Record<string, string> = {},
  logLevel = 'info',
): Promise<BenchService & { child: Child; runner: Child | undefined }> {
  const port = await freePort();
  const prefix = `sgbench-${randomBytes(4).toString('hex')}`;
  const adminToken = `bench-admin-${randomBytes(16).toString('hex')}`;
  const split = process.env.BENCH_SPLIT === '1';
  const runnerMetricsPort = await freePort();
  const childEnv = {
    REDIS_URL,
    PORT: String(port),
    SANDGATE_PREFIX: prefix,
    SANDGATE_ADMIN_TOKEN: adminToken,
    SANDGATE_DATA_DIR: `/tmp/${prefix}`,
    SANDGATE_RUNNER_METRICS_PORT: String(runnerMetricsPort),
    ...env,
  };
  // BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the service while it is measured.
  const spawnOpts = {
    logLevel,
    ...(process.env.BENCH_NODE_ARGS && { nodeArgs: process.env.BENCH_NODE_ARGS.split(' ') }),
  };
  const child = spawnSandgate(split ? 'api' : 'all', childEnv, spawnOpts);
  const runner = split ? spawnSandgate('runner', childEnv, spawnOpts) : undefined;
  const base = `http://127.0.0.1:${port}`;
  await ready(base, child);
  const metricsBases = [base, ...(runner ? [`http://127.0.0.1:${runnerMetricsPort}`] : [])];
  const pool = new Pool(base, { connections: 64, pipelining: 1 });
  const call = async (method: 'POST', path: string, body: unknown, auth: string) => {
    const res = await pool.request({
      method,
      path,
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const json = (await res.body.json()) as Record<string, unknown>;
    if (res.statusCode >= 300) throw new Error(`${path}: ${res.statusCode} ${JSON.stringify(json)}`);
    return json;
  };
  return {
    base,
    prefix,
    pool,
    child,
    runner,
    metricsBases,
    admin: `Bearer ${adminToken}`,
    async agentAuth(profiles) {
      const admin = `Bearer ${adminToken}`;
      const agent = await call(
        'POST',
        '/v1/agents',
        { name: 'bench', grants: { profiles }, limits: { runsPerMinute: 100000 } },
        admin,
      );
      const { token } = await call('POST', `/v1/agents/${agent.id}/tokens`, { ttlSeconds: 3600 }, admin);
      return `Bearer ${token}`;
    },
    async stop() {
      await pool.close();
      for (const c of [child, runner]) c?.proc.kill('SIGTERM');
      await Promise.all([child.exited, runner?.exited]);
      await dropPrefix(prefix);
    },
  };
}

/** Runs `op` from `concurrency` loops for `ms`; returns completions per second and failures. */
export async function sustained(
  ms: number,
  concurrency: number,
  op: () => Promise<boolean>,
): Promise<{ perSecond: number; ok: number; failed: number }> {
  let ok = 0;
  let failed = 0;
  const start = performance.now();
  const until = start + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        if (await op()) ok++;
        else failed++;
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  return { perSecond: ok / elapsed, ok, failed };
}

/** CPU seconds (user + system) a process has used, from /proc (Linux clock ticks, 100 per s). */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The redis-server's pid (the benchmark's Redis is on this machine). */
export async function redisPid(url: string): Promise<number> {
  const redis = new Redis(url, { lazyConnect: true });
  try {
    await redis.connect();
    const info = await redis.info('server');
    return Number(/process_id:(\d+)/.exec(info)?.[1]);
  } finally {
    redis.disconnect();
  }
}

export async function latencies(n: number, op: () => Promise<void>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await op();
    out.push(performance.now() - t);
  }
  return out.sort((a, b) => a - b);
}

/** POST /v1/executions?wait=true; true when the run succeeded (and `check` accepts it). */
export async function postAndWait(
  svc: BenchService,
  auth: string,
  body: string,
  check: (json: { status?: string; stdout?: string }) => boolean = () => true,
): Promise<boolean> {
  const res = await svc.pool.request({
    method: 'POST',
    path: '/v1/executions?wait=true',
    headers: { authorization: auth, 'content-type': 'application/json' },
    body,
  });
  const json = (await res.body.json()) as { status?: string; stdout?: string };
  return res.statusCode === 200 && json.status === 'succeeded' && check(json);
}
