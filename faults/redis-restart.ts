// The scenario's redis-server (persistent) restarted while runs are in flight: requests during
// the outage get fast 503s, the service recovers without a restart, and each run in flight ends
// with its real status and output (held and retried by its runner), not runner_lost; one
// run.finished record each.
import {
  auditCounts,
  containersLeft,
  ms,
  percentile,
  type Scenario,
  s,
  sleep,
  terminate,
  until,
  waitFinal,
} from './lib.ts';

const JS_RUNS = 8;
const PY_RUNS = 4;
const OUTAGE_MS = 3000;

export const redisRestart: Scenario = {
  name: 'redis-restart',
  budgetMs: 120_000,
  async run(ctx) {
    const redis = await ctx.redis({ persist: true });
    const inst = await ctx.instance(redis, ['js', 'python']);
    const api = await ctx.spawn(inst, 'api');
    const runner = await ctx.spawn(inst, 'runner');
    const { token } = await inst.client.agent(
      { profiles: ['js', 'python'] },
      { runsPerMinute: 100_000, spendPerDay: 1e6 },
    );
    await until(
      20_000,
      async () =>
        (await inst.client.execute(token, { profile: 'python', code: 'print(1)' }, true)).body.status === 'succeeded',
      500,
    );

    // Each run outlives the outage's start and prints something only it prints.
    const expected = new Map<string, string>();
    const submit = async (profile: string, code: string, out: string) => {
      const a = await inst.client.execute(token, { profile, code });
      if (a.status === 202) expected.set(a.body.id as string, out);
    };
    await Promise.all([
      ...Array.from({ length: JS_RUNS }, (_, i) =>
        submit('js', `const t = Date.now(); while (Date.now() - t < 2500) {} console.log("js-${i}")`, `js-${i}\n`),
      ),
      ...Array.from({ length: PY_RUNS }, (_, i) =>
        submit('python', `import time; time.sleep(2.5); print("py-${i}")`, `py-${i}\n`),
      ),
    ]);
    const ids = [...expected.keys()];
    await until(
      10_000,
      async () =>
        [...(await waitFinal(redis.url, inst.prefix, ids, 0)).values()].filter((r) => r.status === 'running').length ===
        ids.length,
      100,
    );

    await redis.stop();
    const downAt = Date.now();
    const during: { status: number; ms: number }[] = [];
    for (let i = 0; i < 200 && Date.now() - downAt < OUTAGE_MS; i++) {
      const a = await inst.client
        .execute(token, { profile: 'js', code: '1' }, false, 10_000)
        .catch(() => ({ status: 0, ms: 10_000 }));
      during.push({ status: a.status, ms: a.ms });
      await sleep(100);
    }
    await redis.restart();
    const recoveredIn = await until(
      20_000,
      async () => (await inst.client.execute(token, { profile: 'js', code: '6*7' }, true, 5000)).body.result === 42,
      100,
    );

    const records = await waitFinal(redis.url, inst.prefix, ids, 60_000);
    const finished = await auditCounts(inst.dataDir, 'run.finished');
    const real = ids.filter((id) => {
      const r = records.get(id);
      return r?.status === 'succeeded' && r.outcome?.stdout === expected.get(id);
    });
    const runnerLost = ids.filter((id) => records.get(id)?.error === 'runner_lost').length;
    const audited = ids.filter((id) => finished.get(id) === 1).length;
    const fast503 = during.filter((d) => d.status === 503 && d.ms < 1000).length;

    await terminate(runner);
    await terminate(api);
    await until(10_000, async () => (await containersLeft(inst.prefix)) === 0, 500);
    const left = await containersLeft(inst.prefix);
    const crashed = ctx.crashes();
    const problems = [
      ...(ids.length !== JS_RUNS + PY_RUNS ? [`only ${ids.length} of ${JS_RUNS + PY_RUNS} runs were accepted`] : []),
      ...(real.length !== ids.length
        ? [
            `${ids.length - real.length} runs in flight did not end with their real output (${runnerLost} runner_lost; first other: ${JSON.stringify(records.get(ids.find((id) => !real.includes(id))!))?.slice(0, 300)})`,
          ]
        : []),
      ...(audited !== ids.length ? [`${ids.length - audited} runs without exactly one run.finished record`] : []),
      ...(fast503 !== during.length
        ? [`${during.length - fast503} of ${during.length} requests during the outage were not a 503 within 1 s`]
        : []),
      ...(recoveredIn === undefined ? ['no recovery within 20 s of Redis coming back'] : []),
      ...(left ? [`${left} containers left`] : []),
      ...crashed,
    ];
    return {
      line: `redis restart: ${ids.length} runs in flight, ${real.length} ended with their real output, ${runnerLost} runner_lost, outage ${s(OUTAGE_MS)}: ${fast503}/${during.length} fast 503 (p99 ${ms(
        percentile(
          during.map((d) => d.ms),
          99,
        ),
      )}), recovered in ${recoveredIn === undefined ? 'never' : s(recoveredIn)} without a restart, ${crashed.length} crashed, ${left} containers left`,
      problems,
    };
  },
};
