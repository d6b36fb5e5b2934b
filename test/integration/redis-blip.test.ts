// A finished run is never lost to a Redis blip: Redis restarts while runs are in flight, and
// each of them ends with its real status and output (not runner_lost at its worst case); the
// execution record, the bill and the audit log agree afterwards.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containersOf } from '../helpers/docker.ts';
import { startRedis } from '../helpers/processes.ts';
import { eventually, startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

let sg: TestSandgate;
let redis: Awaited<ReturnType<typeof startRedis>>;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sandgate-blip-'));
  redis = await startRedis({ persistDir: dir });
  sg = await startSandgate({ REDIS_URL: redis.url }, 'all', ['js', 'python']);
});
afterAll(async () => {
  const prefix = sg.config.SANDGATE_PREFIX;
  await sg?.stop();
  await redis.stop();
  await rm(dir, { recursive: true, force: true });
  expect(await containersOf(prefix)).toEqual([]);
});

describe('Redis restarted while runs are in flight', { timeout: 120_000 }, () => {
  it('every run ends with its real status and output, billed what it used, audited once', async () => {
    const { auth } = await sg.agent({ profiles: ['js', 'python'] });
    const call = (method: 'GET' | 'POST', url: string, payload?: Record<string, unknown>) =>
      sg.app!.inject({ method, url, headers: auth, ...(payload && { payload }) });
    const taskId = (await call('POST', '/v1/tasks', { goal: 'blip', budget: { maxSpend: 100 } })).json().id;
    const runs = [
      ...Array.from({ length: 3 }, (_, i) => ({
        profile: 'python',
        code: `import time\ntime.sleep(2)\nprint("py ${i}")`,
        out: `py ${i}\n`,
      })),
      ...Array.from({ length: 3 }, (_, i) => ({
        profile: 'js',
        code: `const t = Date.now(); while (Date.now() - t < 2000) {} console.log("js ${i}")`,
        out: `js ${i}\n`,
      })),
    ];
    const ids: string[] = [];
    for (const r of runs) {
      const res = await call('POST', '/v1/executions', { profile: r.profile, code: r.code, taskId });
      expect(res.statusCode).toBe(202);
      ids.push(res.json().id);
    }
    await eventually(
      async () => {
        const statuses = await Promise.all(
          ids.map(async (id) => (await call('GET', `/v1/executions/${id}`)).json().status),
        );
        return statuses.every((s) => s === 'running') ? true : undefined;
      },
      // A loaded machine (the whole suite on two cores) may take long to start the containers;
      // each run lasts 2 s, so all of them are running at once even when they start a second apart.
      60_000,
      'every run running',
    );

    // Down for three seconds: every run ends while Redis is away.
    await redis.stop();
    await new Promise((r) => setTimeout(r, 3000));
    const backAt = Date.now();
    await redis.restart();

    const finals = await eventually(
      async () => {
        const all = await Promise.all(ids.map(async (id) => (await call('GET', `/v1/executions/${id}`)).json()));
        return all.every((e) => e.status && !['queued', 'running'].includes(e.status)) ? all : undefined;
      },
      30_000,
      'every run to end',
    );
    for (const [i, e] of finals.entries()) {
      expect(e, `run ${i}`).toMatchObject({ status: 'succeeded', stdout: runs[i]!.out, exitCode: 0 });
      expect(e.usage.measured).toBe(true);
      // It did end during the outage: its result was held and written afterwards.
      expect(Date.parse(e.startedAt) + e.usage.wallMs, `run ${i} ended before Redis was back`).toBeLessThan(backAt);
      expect(e.auditIds).toHaveLength(2); // requested, finished
    }
    const task = await eventually(
      async () => {
        const t = (await call('GET', `/v1/tasks/${taskId}`)).json();
        return t.reserved?.spend === 0 ? t : undefined;
      },
      10_000,
      'every run settled',
    );
    expect(task.used.spend).toBeCloseTo(
      finals.reduce((n, e) => n + e.usage.cost, 0),
      9,
    );
    expect(task.used.runs).toBe(runs.length);

    // The audit log says the same: one finished record per run, with the status it ended with.
    // (the Redis index copy catches up by itself after the outage).
    const ends = await eventually(
      async () => {
        const audit = await sg.app!.inject({
          url: `/v1/audit?taskId=${taskId}&kind=run.finished&limit=100`,
          headers: sg.admin,
        });
        const found = audit.json().records.filter((r: { kind: string }) => r.kind === 'run.finished');
        return found.length >= runs.length ? found : undefined;
      },
      10_000,
      'the run.finished records in the index',
    );
    expect(ends).toHaveLength(runs.length);
    for (const r of ends) expect(r.data.status).toBe('succeeded');
  });
});
