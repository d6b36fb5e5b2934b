// 200 slowloris connections (100 trickling headers, 100 trickling a body, a byte a second) against
// the default deadlines, while normal traffic is measured: the slow ones are cut at the headers
// (10 s) and request (20 s) deadlines, the normal ones keep their usual latency.

import { loadConfig } from '../contract/config.ts';
import { slowClient } from '../test/helpers/slow-client.ts';
import { ms, noAnswer, percentile, type Scenario, s, sleep, terminate } from './lib.ts';

const SLACK_MS = 2000;

export const slowClients: Scenario = {
  name: 'slow-clients',
  budgetMs: 90_000,
  async run(ctx) {
    const defaults = loadConfig({});
    const redis = await ctx.redis();
    const inst = await ctx.instance(redis, ['js']);
    const proc = await ctx.spawn(inst, 'all');
    const { token } = await inst.client.agent({ profiles: ['js'] }, { runsPerMinute: 100_000, spendPerDay: 1e6 });
    const port = Number(inst.env.PORT);
    const usual = async (n: number) => {
      const out: { ok: boolean; ms: number }[] = [];
      for (let i = 0; i < n; i++) {
        const a = await inst.client.execute(token, { profile: 'js', code: '6*7' }, true, 10_000).catch(noAnswer);
        out.push({ ok: a.status === 200 && a.body.result === 42, ms: a.ms });
        await sleep(50);
      }
      return out;
    };
    const baseline = (await usual(100)).map((n) => n.ms);

    const slow = [
      ...Array.from({ length: 100 }, () => slowClient(port, 'headers')),
      ...Array.from({ length: 100 }, () => slowClient(port, 'body', { headers: { authorization: `Bearer ${token}` } })),
    ];
    let done = false;
    const ends = Promise.all(slow.map((c) => c.closed)).finally(() => (done = true));
    const normal: { ok: boolean; ms: number }[] = [];
    // Two lanes of an agent's usual traffic, until every slow client was cut (bounded by the budget).
    await Promise.all(
      [0, 1].map(async () => {
        for (let i = 0; i < 10_000 && !done; i++) normal.push(...(await usual(1)));
      }),
    );
    const results = await ends;
    await terminate(proc);

    const headers = results.slice(0, 100);
    const bodies = results.slice(100);
    const cut = (rs: typeof results, limit: number) =>
      rs.filter((r) => r.answer.includes('"code":"request_timeout"') && r.afterMs < limit + SLACK_MS);
    const headersCut = cut(headers, defaults.SANDGATE_HEADERS_TIMEOUT_MS);
    const bodiesCut = cut(bodies, defaults.SANDGATE_REQUEST_TIMEOUT_MS);
    const latencies = normal.filter((n) => n.ok).map((n) => n.ms);
    const failed = normal.length - latencies.length;
    const crashed = ctx.crashes();
    const problems = [
      ...(headersCut.length !== 100
        ? [`${100 - headersCut.length} header tricklers not cut by the headers deadline`]
        : []),
      ...(bodiesCut.length !== 100 ? [`${100 - bodiesCut.length} body tricklers not cut by the request deadline`] : []),
      ...(failed ? [`${failed} normal requests failed`] : []),
      ...(percentile(latencies, 99) > 1000 ? [`normal p99 ${ms(percentile(latencies, 99))}`] : []),
      ...crashed,
    ];
    const maxCut = (rs: typeof results) => s(Math.max(...rs.map((r) => r.afterMs)));
    return {
      line: `slow clients: 200 slowloris held, ${headersCut.length}/100 header tricklers cut at ≤ ${maxCut(headers)} (deadline ${s(defaults.SANDGATE_HEADERS_TIMEOUT_MS)}), ${bodiesCut.length}/100 body tricklers cut at ≤ ${maxCut(bodies)} (deadline ${s(defaults.SANDGATE_REQUEST_TIMEOUT_MS)}); normal: ${normal.length} requests, ${failed} failed, p50 ${ms(percentile(latencies, 50))} p99 ${ms(percentile(latencies, 99))} (alone before: p50 ${ms(percentile(baseline, 50))} p99 ${ms(percentile(baseline, 99))}), ${crashed.length} crashed`,
      problems,
    };
  },
};
