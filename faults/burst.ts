// 10,000 js submissions (202) through an API process and two runner processes: every one reaches
// a final status exactly once (started at most once, one run.finished record), none is lost.
import { auditCounts, lanes, noAnswer, type Scenario, s, tally, terminate, waitFinal } from './lib.ts';

const SUBMISSIONS = 10_000;

export const burst: Scenario = {
  name: 'burst',
  budgetMs: 180_000,
  async run(ctx) {
    const redis = await ctx.redis();
    const inst = await ctx.instance(redis, ['js']);
    const procs = [await ctx.spawn(inst, 'api'), await ctx.spawn(inst, 'runner'), await ctx.spawn(inst, 'runner')];
    const { token } = await inst.client.agent({ profiles: ['js'] }, { runsPerMinute: 100_000, spendPerDay: 1e6 });

    const t0 = Date.now();
    const answers = await lanes(SUBMISSIONS, 64, (i) =>
      inst.client.execute(token, { profile: 'js', code: `${i} + 1` }).catch(noAnswer),
    );
    const submitMs = Date.now() - t0;
    const ids = answers.filter((a) => a.status === 202).map((a) => a.body.id as string);
    const refused = answers.length - ids.length;
    const records = await waitFinal(redis.url, inst.prefix, ids, 120_000);
    const totalMs = Date.now() - t0;
    const { finished, lost, duplicated } = tally(ids, records);
    const finishedRecords = await auditCounts(inst.dataDir, 'run.finished');
    const twiceAudited = ids.filter((id) => (finishedRecords.get(id) ?? 0) > 1).length;
    const notSucceeded = ids.filter((id) => records.get(id)?.status !== 'succeeded').length;

    for (const p of procs) await terminate(p);
    const crashed = ctx.crashes();
    const problems = [
      ...(refused
        ? [
            `${refused} submissions not acknowledged (first: ${JSON.stringify(answers.find((a) => a.status !== 202)?.body)})`,
          ]
        : []),
      ...(lost ? [`${lost} lost`] : []),
      ...(duplicated + twiceAudited ? [`${duplicated} started twice, ${twiceAudited} finished twice`] : []),
      ...(notSucceeded - lost > 0 ? [`${notSucceeded - lost} did not succeed`] : []),
      ...crashed,
    ];
    return {
      line: `burst: ${SUBMISSIONS} submitted, ${ids.length} accepted, ${finished} finished, ${lost} lost, ${duplicated + twiceAudited} duplicated, ${crashed.length} crashed, ${s(totalMs)} (submissions ${s(submitMs)}, ${Math.round(SUBMISSIONS / (submitMs / 1000))}/s)`,
      problems,
    };
  },
};
