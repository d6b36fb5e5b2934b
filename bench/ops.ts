// What one js run costs Redis: the commands (Lua scripts counted once, and the commands inside
// them too, as Redis counts them) and the time Redis spends on them, per run, on a redis-server
// of its own so that nothing else is counted. The scripts are named by their first keys, from
// Redis's slow log at threshold 0. The figure behind "how many runners per Redis node".
import { Redis } from 'ioredis';
import { startRedis } from '../test/helpers/processes.ts';
import { fmt, postAndWait, startService } from './lib.ts';

const RUNS = Number(process.env.BENCH_LATENCY_RUNS ?? 200);

/** A script's name from its keys: the instance prefix, hash tags and ids taken out. */
const shapeOf = (args: string[]): string => {
  if (args[0] !== 'evalsha') return args[0]!;
  const keys = args.slice(3, 3 + Math.min(2, Number(args[2])));
  return `script(${args[2]}) ${keys
    .map((k) =>
      k
        .replace(/^[^:]*sgbench-\w+:?/, '')
        .replace(/\{[^}]*\}:?/g, '')
        .replace(/[A-Za-z0-9_-]{16,}/g, '…'),
    )
    .join(' ')}`;
};

export async function main(): Promise<void> {
  const redisServer = await startRedis();
  const redis = new Redis(redisServer.url);
  const svc = await startService(
    { REDIS_URL: redisServer.url, SANDGATE_PROFILES_DIR: 'test/fixtures/profiles-js' },
    'warn',
  );
  try {
    const auth = await svc.agentAuth(['js']);
    const run = async (i: number) => {
      if (!(await postAndWait(svc, auth, JSON.stringify({ profile: 'js', code: `1 + ${i}` }))))
        throw new Error('a run did not succeed');
    };
    for (let i = 0; i < 30; i++) await run(i);
    await new Promise((r) => setTimeout(r, 300)); // the warm-up's observers finish
    await redis.config('RESETSTAT');
    await redis.config('SET', 'slowlog-log-slower-than', '0');
    await redis.config('SET', 'slowlog-max-len', String(RUNS * 200));
    await redis.slowlog('RESET');
    for (let i = 0; i < RUNS; i++) await run(1000 + i);
    await new Promise((r) => setTimeout(r, 300));
    await redis.config('SET', 'slowlog-log-slower-than', '10000');

    const stats = (await redis.info('commandstats')).split('\n').flatMap((l) => {
      const m = /^cmdstat_([\w|]+):calls=(\d+),usec=(\d+)/.exec(l);
      return m && !m[1]!.startsWith('config') && !m[1]!.startsWith('slowlog') && !m[1]!.startsWith('info')
        ? [{ name: m[1]!, calls: Number(m[2]), usec: Number(m[3]) }]
        : [];
    });
    const scripts = new Map<string, { calls: number; usec: number }>();
    for (const entry of (await redis.slowlog('GET', RUNS * 200)) as Array<[number, number, number, string[]]>) {
      const args = entry[3];
      if (args[0] !== 'evalsha' && args[0] !== 'exec') continue;
      const s = scripts.get(shapeOf(args)) ?? { calls: 0, usec: 0 };
      s.calls++;
      s.usec += entry[2];
      scripts.set(shapeOf(args), s);
    }
    const evals = stats.find((s) => s.name === 'evalsha');
    const inner = stats.filter((s) => s.name !== 'evalsha' && s.name !== 'exec' && s.name !== 'multi');
    console.log(`Redis per js run (${RUNS} sequential runs, own redis-server, slow log on: times are upper bounds)\n`);
    console.log(
      `scripts: ${fmt((evals?.calls ?? 0) / RUNS, 1)} per run, ${fmt((evals?.usec ?? 0) / RUNS, 0)} µs; commands (inside scripts included): ${fmt(inner.reduce((a, s) => a + s.calls, 0) / RUNS, 1)} per run`,
    );
    console.log('\n| script or transaction (by its first keys) | per run | µs per run |\n|---|---:|---:|');
    for (const [shape, s] of [...scripts].sort((a, b) => b[1].usec - a[1].usec))
      console.log(`| ${shape} | ${fmt(s.calls / RUNS, 2)} | ${fmt(s.usec / RUNS, 0)} |`);
    console.log('\n| command | per run | µs per run |\n|---|---:|---:|');
    for (const s of inner.sort((a, b) => b.calls - a.calls).slice(0, 15))
      console.log(`| ${s.name} | ${fmt(s.calls / RUNS, 2)} | ${fmt(s.usec / RUNS, 1)} |`);
  } finally {
    await svc.stop();
    redis.disconnect();
    await redisServer.stop();
  }
}
