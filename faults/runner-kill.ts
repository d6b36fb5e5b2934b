// kill -9 of one of two runner processes under load (js and docker python runs): only the runs it
// held end `runner_lost`, none starts twice, every other run ends with its real status, and the
// surviving runner reaps the dead one's containers once its heartbeat expires (5 s here).
import { hostname } from 'node:os';
import { containersOf } from '../test/helpers/docker.ts';
import {
  auditCounts,
  containersLeft,
  lanes,
  type Scenario,
  s,
  sleep,
  tally,
  terminate,
  until,
  waitFinal,
} from './lib.ts';

const JS_RUNS = 60;
const PY_RUNS = 16;

export const runnerKill: Scenario = {
  name: 'runner-kill',
  budgetMs: 150_000,
  async run(ctx) {
    const redis = await ctx.redis();
    // Short locks and heartbeat: the survivor finds the dead runner's jobs and containers within seconds.
    const inst = await ctx.instance(redis, ['js', 'python'], {
      SANDGATE_LOCK_MS: '2000',
      SANDGATE_STALLED_CHECK_MS: '500',
      SANDGATE_REAP_INTERVAL_MS: '2000',
      SANDGATE_HEARTBEAT_TTL_MS: '5000',
    });
    const api = await ctx.spawn(inst, 'api');
    const victim = await ctx.spawn(inst, 'runner');
    const survivor = await ctx.spawn(inst, 'runner');
    const { token } = await inst.client.agent(
      { profiles: ['js', 'python'] },
      { runsPerMinute: 100_000, spendPerDay: 1e6 },
    );
    // Warm pools on both, so the load lands on both runners' containers.
    await until(20_000, async () => (await containersOf(inst.prefix)).length >= 8, 250);

    const jobs = [
      ...Array.from({ length: JS_RUNS }, (_, i) => ({
        profile: 'js',
        code: `const t = Date.now(); while (Date.now() - t < 400) {} "js-${i}"`,
      })),
      ...Array.from({ length: PY_RUNS }, (_, i) => ({
        profile: 'python',
        code: `import time; time.sleep(1.5); print("py-${i}")`,
      })),
    ].sort(() => Math.random() - 0.5);
    const answers = await lanes(jobs.length, 16, (i) => inst.client.execute(token, jobs[i]!));
    const ids = answers.filter((a) => a.status === 202).map((a) => a.body.id as string);
    await sleep(800);

    const victimPid = victim.child.proc.pid!;
    const victimOwner = `${hostname()}-${victimPid}-`;
    const victimContainers = async () =>
      (await containersOf(inst.prefix)).filter((c) => c.Labels['sandgate.owner']?.startsWith(victimOwner)).length;
    const heldContainers = await victimContainers();
    victim.kill('SIGKILL');
    await victim.child.exited;
    const killedAt = Date.now();

    const records = await waitFinal(redis.url, inst.prefix, ids, 60_000);
    const { lost, duplicated } = tally(ids, records);
    const started = await auditCounts(inst.dataDir, 'run.started', victimPid);
    const finishedByVictim = await auditCounts(inst.dataDir, 'run.finished', victimPid);
    const startedBySurvivor = await auditCounts(inst.dataDir, 'run.started', survivor.child.proc.pid!);
    const held = [...started.keys()].filter((id) => !finishedByVictim.has(id));
    const runnerLost = ids.filter((id) => records.get(id)?.error === 'runner_lost');
    // A job it had taken but not yet started is failed the same way (and refunded).
    const neverStarted = runnerLost.filter((id) => records.get(id)?.starts === 0).length;
    const heldNotLost = held.filter((id) => records.get(id)?.error !== 'runner_lost');
    const lostNotHeld = runnerLost.filter((id) => startedBySurvivor.has(id));
    const wrongOutput = ids.filter((id) => {
      const r = records.get(id);
      if (!r || r.error === 'runner_lost') return false;
      return r.status !== 'succeeded';
    });
    const reapedIn = await until(60_000, async () => (await victimContainers()) === 0, 500);
    const reapedAfter = reapedIn === undefined ? undefined : Date.now() - killedAt;

    await terminate(survivor);
    await terminate(api);
    const left = await containersLeft(inst.prefix);
    const crashed = ctx.crashes();
    const problems = [
      ...(answers.length !== ids.length ? [`${answers.length - ids.length} submissions refused`] : []),
      ...(lost ? [`${lost} lost (not final)`] : []),
      ...(duplicated ? [`${duplicated} started twice`] : []),
      ...(heldNotLost.length ? [`${heldNotLost.length} runs the killed runner held did not end runner_lost`] : []),
      ...(lostNotHeld.length ? [`${lostNotHeld.length} runs of the surviving runner ended runner_lost`] : []),
      ...(wrongOutput.length
        ? [`${wrongOutput.length} runs did not succeed (first: ${JSON.stringify(records.get(wrongOutput[0]!))})`]
        : []),
      ...(reapedAfter === undefined ? ['the killed runner’s containers were not reaped within 60 s'] : []),
      ...(left ? [`${left} containers left`] : []),
      ...crashed,
    ];
    return {
      line: `runner kill: ${ids.length} runs (${JS_RUNS} js, ${PY_RUNS} python), the killed runner had started ${held.length} (per its audit chain), ${runnerLost.length} ended runner_lost (${neverStarted} taken but not started), ${lostNotHeld.length} of the survivor's, ${duplicated} started twice, ${lost} lost, its ${heldContainers} containers reaped in ${reapedAfter === undefined ? 'never' : s(reapedAfter)}, ${crashed.length} crashed, ${left} containers left`,
      problems,
    };
  },
};
