// What a deployment's probes and autoscaler read: a runner-only process answers /healthz and
// /readyz on its metrics port (Kubernetes probes, compose healthchecks); the API exports the
// backlog an autoscaler scales runners on, waiting + prioritized + delayed jobs, not only the
// wait list; and finished jobs are kept bounded by age and count.
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { FAILED_JOBS_KEPT, FINISHED_JOBS_KEPT } from '../../bin/compose-core.ts';
import { executionQueueName } from '../../contract/queues.ts';
import { queuePrefix } from '../../state/keys.ts';
import { freePort, spawnSandgate, waitForOutput } from '../helpers/processes.ts';
import { dropPrefix, eventually, REDIS_URL, startSandgate, type TestSandgate, testEnv } from '../helpers/sandgate.ts';

const cleanup: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
});

describe('deployment probes and the autoscaling figure', { timeout: 120_000 }, () => {
  it('a runner-only process serves /healthz and /readyz beside /metrics', async () => {
    const port = await freePort();
    const env = testEnv({
      SANDGATE_RUNNER_METRICS_PORT: String(port),
      SANDGATE_PROFILES_DIR: 'test/fixtures/profiles-js',
    });
    cleanup.push(() => dropPrefix(env.SANDGATE_PREFIX!));
    const runner = spawnSandgate('runner', env);
    cleanup.push(async () => runner.proc.kill('SIGKILL'));
    await waitForOutput(runner, /sandgate started/, 45_000); // a loaded machine starts processes slowly
    const get = async (path: string) => {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5000) });
      return { status: res.status, text: await res.text() };
    };
    expect(await get('/healthz')).toEqual({ status: 200, text: JSON.stringify({ status: 'ok' }) });
    const ready = await get('/readyz');
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.text)).toEqual({ status: 'ok', checks: { redis: 'ok', 'engine:isolate': 'ok' } });
    expect((await get('/metrics')).text).toContain('sandgate_runs_total');
    const other = await get('/v1/executions');
    expect(other.status).toBe(404);
    expect(JSON.parse(other.text).error.code).toBe('route_not_found');
    runner.proc.kill('SIGTERM');
    expect(await runner.exited).toBe(0);
  });

  it('the API exports the backlog as waiting + prioritized + delayed; finished jobs are bounded', async () => {
    let sg: TestSandgate | undefined = await startSandgate({}, 'api');
    cleanup.push(async () => sg?.stop());
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    cleanup.push(async () => connection.disconnect());
    const name = executionQueueName('isolate');
    const q = new Queue(name, { connection, prefix: queuePrefix(sg.config.SANDGATE_PREFIX, name) });
    cleanup.push(() => q.close());
    // No runner takes these: one waiting, two prioritized, three delayed.
    await q.add('run', { x: 1 });
    for (let i = 0; i < 2; i++) await q.add('run', { x: i }, { priority: 5 });
    for (let i = 0; i < 3; i++) await q.add('run', { x: i }, { delay: 60_000 });
    const metrics = (await sg.app!.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toContain(`sandgate_queue_backlog{queue="${name}"} 6`);
    expect(metrics).toContain(`sandgate_queue_jobs{queue="${name}",state="waiting"} 1`);
    expect(metrics).toContain(`sandgate_queue_jobs{queue="${name}",state="prioritized"} 2`);
    expect(metrics).toContain(`sandgate_queue_jobs{queue="${name}",state="delayed"} 3`);
    await q.obliterate({ force: true });
    await sg.stop();
    sg = undefined;

    // A run through the service: its job carries the bounds, and is gone-or-bounded once done.
    const all = await startSandgate({ SANDGATE_RUN_HERE: '0' }); // the queue's door, not run here
    cleanup.push(() => all.stop());
    const a = await all.agent();
    const res = await all.app!.inject({
      method: 'POST',
      url: '/v1/executions?wait=true',
      headers: a.auth,
      payload: { profile: 'js', code: '1+1' },
    });
    expect(res.json().status).toBe('succeeded');
    const q2 = new Queue(name, { connection, prefix: queuePrefix(all.config.SANDGATE_PREFIX, name) });
    cleanup.push(() => q2.close());
    const job = await eventually(async () => {
      const j = await q2.getJob(res.json().id);
      if (!j || !(await j.isCompleted())) throw new Error('not completed yet');
      return j;
    });
    expect(job.opts).toMatchObject({ removeOnComplete: FINISHED_JOBS_KEPT, removeOnFail: FAILED_JOBS_KEPT });
  });
});
