// Ten cycles of start → load (js and python runs longer than the grace period) → SIGTERM, the
// last three with the Docker socket hung: each exit is 0 and within SANDGATE_SHUTDOWN_GRACE_MS
// plus the fixed margin; no run is lost or started twice; once Docker answers again the next
// start reaps what a hung shutdown left, so no container is left in the end.
import { SHUTDOWN_MARGIN_MS } from '../bin/compose.ts';
import { containersOf } from '../test/helpers/docker.ts';
import { startDockerProxy } from '../test/helpers/docker-proxy.ts';
import { containersLeft, lanes, type Scenario, s, sleep, tally, terminate, until, waitFinal } from './lib.ts';

const CYCLES = 10;
const HUNG_FROM = 8; // cycles 8, 9 and 10 shut down with Docker hung
const GRACE_MS = 2000;
/** What process exit and the OS may add beyond the service's own bound. */
const EXIT_MARGIN_MS = 750;

export const shutdownCycles: Scenario = {
  name: 'shutdown-cycles',
  budgetMs: 240_000,
  async run(ctx) {
    const proxy = await startDockerProxy();
    ctx.defer(() => proxy.close());
    const redis = await ctx.redis();
    // Short locks: a run a hung shutdown could not settle is found by the next start within seconds.
    const inst = await ctx.instance(redis, ['js', 'python'], {
      SANDGATE_SHUTDOWN_GRACE_MS: String(GRACE_MS),
      SANDGATE_DOCKER_SOCKET: proxy.path,
      SANDGATE_LOCK_MS: '3000',
      SANDGATE_STALLED_CHECK_MS: '1000',
    });
    const limit = GRACE_MS + SHUTDOWN_MARGIN_MS + EXIT_MARGIN_MS;
    const ids: string[] = [];
    const stops: number[] = [];
    const exitCodes: (number | null)[] = [];
    let token = '';
    for (let cycle = 1; cycle <= CYCLES; cycle++) {
      proxy.forward();
      const proc = await ctx.spawn(inst, 'all');
      if (!token)
        ({ token } = await inst.client.agent(
          { profiles: ['js', 'python'] },
          { runsPerMinute: 100_000, spendPerDay: 1e6 },
        ));
      await until(
        20_000,
        async () => (await containersOf(inst.prefix)).filter((c) => c.State === 'running').length >= 2,
        250,
      );
      const jobs = [
        ...Array.from({ length: 4 }, (_, i) => ({
          profile: 'js',
          code: `const t = Date.now(); while (Date.now() - t < ${i % 2 ? 4000 : 300}) {} ${i}`,
        })),
        ...Array.from({ length: 2 }, (_, i) => ({
          profile: 'python',
          code: `import time; time.sleep(${i ? 4 : 0.2}); print(${i})`,
        })),
      ];
      const answers = await lanes(jobs.length, jobs.length, (i) => inst.client.execute(token, jobs[i]!));
      ids.push(...answers.filter((a) => a.status === 202).map((a) => a.body.id as string));
      await sleep(500);
      if (cycle >= HUNG_FROM) proxy.hang();
      stops.push(await terminate(proc));
      exitCodes.push(proc.child.proc.exitCode);
    }
    // Docker answers again: one more start reaps what the hung shutdowns left and runs what the
    // last cycles left queued.
    proxy.forward();
    const last = await ctx.spawn(inst, 'all');
    const records = await waitFinal(redis.url, inst.prefix, ids, 60_000);
    await terminate(last);
    await until(15_000, async () => (await containersLeft(inst.prefix)) === 0, 500);
    const left = await containersLeft(inst.prefix);

    const { lost, duplicated } = tally(ids, records);
    const open = ids
      .map((id) => records.get(id)?.status ?? 'missing')
      .filter((st) => st === 'queued' || st === 'running' || st === 'missing');
    const runnerLost = ids.filter((id) => records.get(id)?.error === 'runner_lost').length;
    const shutdownCancelled = ids.filter((id) => records.get(id)?.error === 'runner_shutdown').length;
    const slow = stops.filter((t) => t > limit).length;
    const nonZero = exitCodes.filter((c) => c !== 0).length;
    const crashed = ctx.crashes();
    const problems = [
      ...(slow ? [`${slow} shutdowns took longer than ${s(limit)}: ${stops.map((t) => s(t)).join(', ')}`] : []),
      ...(nonZero ? [`${nonZero} exits were not 0: ${exitCodes.join(', ')}`] : []),
      ...(lost ? [`${lost} runs not final a minute after the last start: ${open.join(', ')}`] : []),
      ...(duplicated ? [`${duplicated} runs started twice`] : []),
      ...(left ? [`${left} containers left`] : []),
      ...crashed,
    ];
    const hung = stops.slice(HUNG_FROM - 1);
    return {
      line: `shutdown cycles: ${CYCLES} cycles (${CYCLES - HUNG_FROM + 1} with Docker hung), exit max ${s(Math.max(...stops))} (hung: max ${s(Math.max(...hung))}; limit ${s(limit)} = grace ${s(GRACE_MS)} + margin ${s(SHUTDOWN_MARGIN_MS + EXIT_MARGIN_MS)}), ${CYCLES - nonZero}/${CYCLES} exit 0, ${ids.length} runs: ${shutdownCancelled} cancelled by a shutdown, ${runnerLost} runner_lost, ${lost} lost, ${duplicated} started twice, ${crashed.length} crashed, ${left} containers left`,
      problems,
    };
  },
};
