// Shared by docker-missing and docker-hung: a service (all) on a Docker socket that is broken in
// some way, sampled for 70 s (the reaper runs every 60 s by default: a sweep that meets the broken
// engine must not take the process down), then the engine given back, then a SIGTERM.
import { type DegradedSample, sampleDegraded } from '../test/helpers/degraded-docker.ts';
import { containersLeft, type Instance, ms, percentile, type ScenarioContext, s, terminate, until } from './lib.ts';

export const HOLD_MS = 70_000;

export interface Variant {
  name: string;
  /** The socket the service is started on. */
  socket: string;
  /** Breaks the engine once the service is up and has run one python program (if it can). */
  breakIt?: () => Promise<void> | void;
  /** Gives the engine back; undefined when this variant has nothing to give back. */
  restore?: () => Promise<void> | void;
}

export interface VariantResult {
  name: string;
  restorable: boolean;
  sample: DegradedSample;
  others: number[];
  recoveredMs: number | undefined;
  stopMs: number;
  left: number;
}

/** Runs the variants side by side; each in its own instance on the scenario's Redis. */
export async function holdDegraded(ctx: ScenarioContext, variants: Variant[]): Promise<VariantResult[]> {
  const redis = await ctx.redis();
  const started = await Promise.all(
    variants.map(async (v) => {
      const inst = await ctx.instance(redis, ['js', 'python'], { SANDGATE_DOCKER_SOCKET: v.socket });
      const proc = await ctx.spawn(inst, 'all');
      const { token } = await inst.client.agent(
        { profiles: ['js', 'python'] },
        { runsPerMinute: 100_000, spendPerDay: 1e6 },
      );
      return {
        v,
        inst,
        proc,
        svc: { child: proc.child, client: inst.client, token, stop: async () => proc.child.exited },
      };
    }),
  );
  return Promise.all(
    started.map(async ({ v, inst, proc, svc }) => {
      if (v.breakIt) {
        await until(
          20_000,
          async () =>
            (await svc.client.execute(svc.token, { profile: 'python', code: 'print(1)' }, true)).body.status ===
            'succeeded',
          500,
        );
        await v.breakIt();
        // Give the probe its moment to notice (a second or two) before judging.
        await until(10_000, async () => !(await listedPython(inst)), 200);
      }
      const others: number[] = [];
      const sampling = sampleDegraded(svc, 'python', HOLD_MS, 500);
      const probing = sampleRoutes(inst, HOLD_MS, others);
      const [sample] = await Promise.all([sampling, probing]);
      let recoveredMs: number | undefined;
      if (v.restore) {
        await v.restore();
        recoveredMs = await until(
          30_000,
          async () =>
            (await svc.client.execute(svc.token, { profile: 'python', code: 'print(1)' }, true, 10_000)).body.status ===
            'succeeded',
          200,
        );
      }
      const stopMs = await terminate(proc);
      await until(10_000, async () => (await containersLeft(inst.prefix)) === 0, 500);
      return {
        name: v.name,
        restorable: v.restore !== undefined,
        sample,
        others,
        recoveredMs,
        stopMs,
        left: await containersLeft(inst.prefix),
      };
    }),
  );
}

async function listedPython(inst: Instance): Promise<boolean> {
  const res = await inst.client.call('GET', '/v1/profiles', inst.env.SANDGATE_ADMIN_TOKEN!);
  return (
    ((res.body.profiles ?? []) as { name: string; available: boolean }[]).find((p) => p.name === 'python')
      ?.available === true
  );
}

/** Other routes must answer fast too: /healthz, /readyz (503 naming docker), the queue metrics. */
async function sampleRoutes(inst: Instance, forMs: number, out: number[]): Promise<void> {
  const admin = inst.env.SANDGATE_ADMIN_TOKEN!;
  const untilAt = Date.now() + forMs;
  for (let i = 0; i < 100_000 && Date.now() < untilAt; i++) {
    for (const path of ['/healthz', '/readyz', '/metrics', '/v1/agents']) {
      const a = await inst.client.call('GET', path, admin, undefined, 10_000).catch(() => ({ ms: 10_000 }));
      out.push(a.ms);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** One line of figures and the problems of a docker-degraded scenario. */
export function report(
  title: string,
  results: VariantResult[],
  procs: () => string[],
): { line: string; problems: string[] } {
  const all = (f: (r: VariantResult) => number[]) => results.flatMap(f);
  const js = all((r) => r.sample.js);
  const docker = all((r) => r.sample.docker);
  const profiles = all((r) => r.sample.profiles);
  const others = all((r) => r.others);
  const wrong = results.flatMap((r) => r.sample.wrong);
  const crashed = procs();
  const recovered = results.filter((r) => r.recoveredMs !== undefined);
  const left = results.reduce((n, r) => n + r.left, 0);
  const problems = [
    ...wrong.slice(0, 5).map((w) => `wrong answer: ${w}`),
    ...(wrong.length > 5 ? [`… ${wrong.length - 5} more wrong answers`] : []),
    ...(Math.max(...docker) >= 1000 ? [`a docker run took ${ms(Math.max(...docker))} to be refused (limit 1 s)`] : []),
    ...(Math.max(...profiles) >= 1000 ? [`GET /v1/profiles took ${ms(Math.max(...profiles))} (limit 1 s)`] : []),
    ...(percentile(js, 99) >= 1000 ? [`js p99 ${ms(percentile(js, 99))}`] : []),
    ...(Math.max(...others) >= 2500 ? [`another route took ${ms(Math.max(...others))}`] : []),
    ...results
      .filter((r) => r.restorable && r.recoveredMs === undefined)
      .map((r) => `${r.name}: docker profiles did not recover`),
    ...results.filter((r) => r.left > 0).map((r) => `${r.name}: ${r.left} containers left after the service stopped`),
    ...crashed,
  ];
  const variants = results
    .map(
      (r) =>
        `${r.name}${r.recoveredMs !== undefined ? ` (recovered in ${s(r.recoveredMs)})` : ''}, stop ${s(r.stopMs)}`,
    )
    .join('; ');
  return {
    line: `${title}: up ${s(HOLD_MS)} × ${results.length} [${variants}], js p50 ${ms(percentile(js, 50))} p99 ${ms(percentile(js, 99))}, python 503 p99 ${ms(percentile(docker, 99))} max ${ms(Math.max(...docker))}, /v1/profiles p99 ${ms(percentile(profiles, 99))}, other routes max ${ms(Math.max(...others))}, ${wrong.length} wrong, ${recovered.length} recovered, ${crashed.length} crashed, ${left} containers left`,
    problems,
  };
}
