// `?wait=true` in a process that is API and runner: the run is taken here when its engine has a
// free slot (no queue job, no pick-up), and every guarantee of the queue path still holds: the
// slots bound both doors together, a cancel reaches it, a process killed mid-run leaves a run that
// another runner ends `runner_lost` (charged its worst case), and `SANDGATE_RUN_HERE=0` turns it off.
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { composeSandgate } from '../../bin/compose.ts';
import { loadConfig } from '../../contract/config.ts';
import { executionQueueName } from '../../contract/queues.ts';
import { createExecutionStore } from '../../state/executions.ts';
import { queuePrefix, redisKeys } from '../../state/keys.ts';
import { serviceClient } from '../helpers/http-client.ts';
import { freePort, spawnSandgate, waitForOutput } from '../helpers/processes.ts';
import { eventually, REDIS_URL, startSandgate, type TestSandgate, testEnv } from '../helpers/sandgate.ts';

const cleanup: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
});

/** Every job the isolate queue has held (finished jobs are kept, up to a bound far above these). */
async function queuedJobs(sg: TestSandgate): Promise<number> {
  const name = executionQueueName('isolate');
  const queue = new Queue(name, {
    connection: { url: REDIS_URL } as never,
    prefix: queuePrefix(sg.config.SANDGATE_PREFIX, name),
  });
  try {
    const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed');
    return Object.values(counts).reduce((a, b) => a + b, 0);
  } finally {
    await queue.close();
  }
}

const run = (sg: TestSandgate, auth: Record<string, string>, payload: Record<string, unknown>, wait = true) =>
  sg.app!.inject({ method: 'POST', url: `/v1/executions${wait ? '?wait=true' : ''}`, headers: auth, payload });

describe('runs taken by the runner of the same process', { timeout: 60_000 }, () => {
  it('runs a ?wait=true request here, without a queue job, and answers with the record GET returns', async () => {
    const sg = await startSandgate();
    cleanup.push(() => sg.stop());
    const { auth } = await sg.agent();
    const res = await run(sg, auth, { profile: 'js', code: 'console.log("hi"); 6 * 7' });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ status: 'succeeded', result: 42, stdout: 'hi\n' });
    expect(body.auditIds).toHaveLength(2);
    expect(await queuedJobs(sg)).toBe(0);
    const again = await sg.app!.inject({ method: 'GET', url: `/v1/executions/${body.id}`, headers: auth });
    expect(again.json()).toEqual(body);

    // Without ?wait=true the queue takes it, as before.
    const queued = await run(sg, auth, { profile: 'js', code: '1' }, false);
    expect(queued.statusCode).toBe(202);
    await eventually(async () => ((await queuedJobs(sg)) === 1 ? true : undefined), 5000, 'a queue job');
  });

  it('never runs more at once than the engine concurrency across both doors; the rest queue', async () => {
    const sg = await startSandgate({ SANDGATE_ISOLATE_CONCURRENCY: '1' });
    cleanup.push(() => sg.stop());
    const { auth } = await sg.agent();
    const busy = 'const end = Date.now() + 300; while (Date.now() < end) {} 1';
    const answers = await Promise.all([0, 1, 2].map(() => run(sg, auth, { profile: 'js', code: busy })));
    expect(answers.map((a) => a.statusCode)).toEqual([200, 200, 200]);
    const spans = answers
      .map((a) => a.json())
      .map((e) => [Date.parse(e.startedAt), Date.parse(e.finishedAt)] as const)
      .sort((x, y) => x[0] - y[0]);
    for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
    // One slot: the first was taken here, the others went through the queue.
    expect(await queuedJobs(sg)).toBe(2);
  });

  it('stops a run taken here when it is cancelled', async () => {
    const sg = await startSandgate();
    cleanup.push(() => sg.stop());
    const { id: agentId, auth } = await sg.agent();
    // inject() starts only once it is awaited or then'd.
    const waiting = run(sg, auth, { profile: 'js', code: 'while (true) {}', timeoutMs: 5000 }).then((r) => r);
    const redis = new Redis(REDIS_URL);
    cleanup.push(async () => redis.disconnect());
    const ids = redisKeys(sg.config.SANDGATE_PREFIX);
    const store = createExecutionStore(redis, sg.config.SANDGATE_PREFIX, 3600);
    const id = await eventually(async () => {
      const [only] = await redis.smembers(ids.agent.executions(agentId));
      return only && (await store.get(only))?.status === 'running' ? only : undefined;
    }, 10_000);
    const del = await sg.app!.inject({ method: 'DELETE', url: `/v1/executions/${id}`, headers: auth });
    expect(del.statusCode).toBe(200);
    const started = Date.now();
    const answer = await waiting;
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(answer.statusCode).toBe(200);
    expect(answer.json()).toMatchObject({ id, status: 'cancelled' });
    expect(answer.json().usage.wallMs).toBeGreaterThan(0);
  });

  it('with SANDGATE_RUN_HERE=0 every run goes through the queue', async () => {
    const sg = await startSandgate({ SANDGATE_RUN_HERE: '0' });
    cleanup.push(() => sg.stop());
    const { auth } = await sg.agent();
    const res = await run(sg, auth, { profile: 'js', code: '1 + 1' });
    expect(res.statusCode).toBe(200);
    expect(res.json().result).toBe(2);
    expect(await queuedJobs(sg)).toBe(1);
  });

  it('a process killed mid-run: another runner ends the run runner_lost, charged its worst case, started once', async () => {
    const env = testEnv({
      SANDGATE_HEARTBEAT_TTL_MS: '3000',
      SANDGATE_RUNNER_METRICS_PORT: '0',
      SANDGATE_PROFILES_DIR: 'test/fixtures/profiles-js',
      SANDGATE_DATA_DIR: '/tmp',
    });
    const port = await freePort();
    const child = spawnSandgate('all', { ...env, PORT: String(port) });
    cleanup.push(async () => child.proc.kill('SIGKILL'));
    await waitForOutput(child, /sandgate started/);
    const client = serviceClient(port, env.SANDGATE_ADMIN_TOKEN!);
    const agent = await client.agent({ profiles: ['js'] });
    // Its process dies under it: no answer.
    const request = client
      .execute(agent.token, { profile: 'js', code: 'while (true) {}', timeoutMs: 5000 }, true)
      .catch((e: Error) => e);

    const redis = new Redis(REDIS_URL);
    cleanup.push(async () => redis.disconnect());
    const keys = redisKeys(env.SANDGATE_PREFIX!);
    const store = createExecutionStore(redis, env.SANDGATE_PREFIX!, 3600);
    const id = await eventually(async () => {
      const [only] = await redis.smembers(keys.agent.executions(agent.id));
      return only && (await store.get(only))?.status === 'running' ? only : undefined;
    }, 10_000);
    expect(await redis.exists(keys.reservation(id))).toBe(1);
    child.proc.kill('SIGKILL');
    await child.exited;
    expect(await request).toBeInstanceOf(Error);

    const rescuer = await composeSandgate({
      config: loadConfig(env),
      mode: 'runner',
      logger: pino({ level: 'silent' }),
    });
    cleanup.push(() => rescuer.close());
    const final = await eventually(
      async () => {
        const r = await store.get(id);
        return r && r.status !== 'running' ? r : undefined;
      },
      20_000,
      'the orphaned run to be ended',
    );
    expect(final.status).toBe('failed');
    expect(final.error?.code).toBe('runner_lost');
    expect(final.starts).toBe(1);
    // Settled at its worst case (one round trip after the record's end): the reservation is gone
    // and the day's spend holds it.
    await eventually(async () => ((await redis.exists(keys.reservation(id))) === 0 ? true : undefined), 5000).catch(
      () => {},
    );
    expect(await redis.exists(keys.reservation(id))).toBe(0);
    const day = await redis.hgetall(keys.agent.spendDay(agent.id));
    expect(Number(day.spent)).toBeGreaterThan(0);
    expect(Number(day.reserved)).toBe(0);
    // The dead runner is dropped from the list of runners to sweep.
    await eventually(async () => ((await redis.scard(keys.runnersWithRuns)) === 0 ? true : undefined), 10_000);
  });
});
