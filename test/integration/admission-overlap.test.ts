// Admission sends what does not depend on each other together: the checks with the reservation,
// the request's audit record with the execution record, the end's audit record with the record's
// move. What each overlap must still guarantee: a refused check leaves the budget as it was, a
// record whose audit record failed is taken back whole, nothing starts before its request is
// durable, and every audit id a record names is in the log.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEventStreamWriter } from '../../state/event-streams.ts';
import { createExecutionStore } from '../../state/executions.ts';
import { newWorkId, redisKeys } from '../../state/keys.ts';
import { REDIS_URL, startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

let sg: TestSandgate;
let redis: Redis;
beforeAll(async () => {
  sg = await startSandgate();
  redis = new Redis(REDIS_URL);
});
afterAll(async () => {
  redis.disconnect();
  await sg.stop();
});

const post = (auth: Record<string, string>, payload: Record<string, unknown>, wait = true) =>
  sg.app!.inject({ method: 'POST', url: `/v1/executions${wait ? '?wait=true' : ''}`, headers: auth, payload });

/** Every audit record this process wrote, by id. */
async function auditRecords(): Promise<Map<string, { kind: string; subject?: string; seq: number }>> {
  const dir = join(sg.config.SANDGATE_DATA_DIR, 'audit');
  const out = new Map<string, { kind: string; subject?: string; seq: number }>();
  for (const f of (await readdir(dir)).filter((n) => n.endsWith('.jsonl'))) {
    for (const line of (await readFile(join(dir, f), 'utf8')).split('\n').filter(Boolean)) {
      const r = JSON.parse(line) as { id: string; kind: string; subject?: string; seq: number };
      out.set(r.id, r);
    }
  }
  return out;
}

describe('admission with its round trips overlapped', { timeout: 60_000 }, () => {
  it('a check that refuses (suspended agent) gives back the reservation sent beside it', async () => {
    const { id: agentId, auth } = await sg.agent();
    const task = await sg.app!.inject({
      method: 'POST',
      url: '/v1/tasks',
      headers: auth,
      payload: { goal: 'overlap', budget: { maxRuns: 3, maxSpend: 1 } },
    });
    expect(task.statusCode).toBe(201);
    const taskId = task.json().id as string;
    expect((await post(auth, { profile: 'js', code: '1', taskId })).statusCode).toBe(200);
    const suspended = await sg.app!.inject({
      method: 'POST',
      url: `/v1/agents/${agentId}/suspend`,
      headers: sg.admin,
      payload: { reason: 'test' },
    });
    expect(suspended.statusCode).toBe(200);
    // Several refused attempts: none may eat into the task's runs or hold any money.
    for (let i = 0; i < 4; i++) {
      const refused = await post(auth, { profile: 'js', code: `${i}`, taskId });
      expect(refused.statusCode).toBe(423);
      expect(refused.json().error.code).toBe('agent_suspended');
    }
    const keys = redisKeys(sg.config.SANDGATE_PREFIX);
    expect(Number(await redis.hget(keys.agent.spendDay(agentId), 'reserved'))).toBe(0);
    const shown = await sg.app!.inject({ url: `/v1/tasks/${taskId}`, headers: auth });
    expect(shown.json()).toMatchObject({ used: { runs: 1 } });
    await sg.app!.inject({ method: 'POST', url: `/v1/agents/${agentId}/resume`, headers: sg.admin, payload: {} });
    // maxRuns 3, one used: two more fit, the refused four took none of them.
    expect((await post(auth, { profile: 'js', code: 'a', taskId })).statusCode).toBe(200);
    expect((await post(auth, { profile: 'js', code: 'b', taskId })).statusCode).toBe(200);
    const over = await post(auth, { profile: 'js', code: 'c', taskId });
    expect(over.statusCode).toBe(402);
  });

  it('every audit id a finished record names is durable, the request before its start, the start before its end', async () => {
    const { auth } = await sg.agent();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await post(auth, { profile: 'js', code: `console.log(${i}); ${i}` }, i % 2 === 0);
      expect([200, 202]).toContain(res.statusCode);
      ids.push(res.json().id as string);
    }
    for (const id of ids) {
      let record: { status: string; auditIds: string[]; auditId: string } | undefined;
      for (let i = 0; i < 100 && record?.status !== 'succeeded'; i++) {
        record = (await sg.app!.inject({ url: `/v1/executions/${id}`, headers: auth })).json();
        if (record?.status !== 'succeeded') await new Promise((r) => setTimeout(r, 50));
      }
      expect(record?.status).toBe('succeeded');
      const log = await auditRecords();
      const named = record!.auditIds.map((a) => log.get(a));
      expect(named.map((r) => r?.kind)).toEqual(['execution.requested', 'run.finished']);
      expect(named.every((r) => r?.subject === id)).toBe(true);
      const started = [...log.values()].find((r) => r.kind === 'run.started' && r.subject === id);
      expect(started).toBeDefined();
      expect(named[0]!.seq).toBeLessThan(started!.seq);
      expect(started!.seq).toBeLessThan(named[1]!.seq);
    }
  });

  it('discard takes back a record that never started, and leaves one that did', async () => {
    const { id: agentId } = await sg.agent();
    const store = createExecutionStore(redis, sg.config.SANDGATE_PREFIX, 3600);
    const keys = redisKeys(sg.config.SANDGATE_PREFIX);
    const meta = (id: string) => ({
      id,
      profile: 'js',
      language: 'javascript' as const,
      agentId,
      taskId: null,
      createdAt: new Date().toISOString(),
    });
    const untold = meta(newWorkId('ex', agentId));
    expect(await store.create(untold)).toBe(true);
    expect(await store.discard(untold)).toBe(true);
    expect(await store.get(untold.id)).toBeUndefined();
    expect(await redis.exists(keys.execution.stream(untold.id))).toBe(0);
    expect(await store.idsOfAgent(agentId)).not.toContain(untold.id);
    expect(await store.discard(untold)).toBe(false); // gone: nothing to take back twice

    const started = meta(newWorkId('ex', agentId));
    expect(await store.create(started)).toBe(true);
    expect(await store.markRunning(started.id, { agentId, taskId: null })).toBe('started');
    expect(await store.discard(started)).toBe(false);
    expect((await store.get(started.id))?.status).toBe('running');
    expect(await store.idsOfAgent(agentId)).toContain(started.id);
  });

  it('a run created running (runs here): started in the same call, held when its agent or task is, none when revoked', async () => {
    const { id: agentId } = await sg.agent();
    const store = createExecutionStore(redis, sg.config.SANDGATE_PREFIX, 3600, createEventStreamWriter(redis, 3600));
    const keys = redisKeys(sg.config.SANDGATE_PREFIX);
    const meta = (id: string, taskId: string | null = null) => ({
      id,
      profile: 'js',
      language: 'javascript' as const,
      agentId,
      taskId,
      createdAt: new Date().toISOString(),
    });
    const events = async (id: string) =>
      ((await redis.xrange(keys.execution.stream(id), '-', '+')) as Array<[string, string[]]>).map(
        ([, f]) => JSON.parse(f[3]!).status as string,
      );

    const born = meta(newWorkId('ex', agentId));
    expect(await store.createRunning(born)).toBe('started');
    const record = await store.get(born.id);
    expect(record).toMatchObject({ status: 'running', starts: 1 });
    expect(record?.startedAt).toBeTruthy();
    expect(await events(born.id)).toEqual(['queued', 'running']);
    // It cannot be started a second time (a queue job of it would be skipped).
    expect(await store.markRunning(born.id, { agentId, taskId: null })).toBe('refused');
    // Its request's audit record failed: taken back whole, although it is running (nothing ran).
    expect(await store.discard(born)).toBe(true);
    expect(await store.get(born.id)).toBeUndefined();
    expect(await redis.exists(keys.execution.stream(born.id))).toBe(0);

    // Moved on since (it ended): never taken back.
    const ended = meta(newWorkId('ex', agentId));
    expect(await store.createRunning(ended)).toBe('started');
    expect(await store.finish(ended.id, 'succeeded', {})).toBe('done');
    expect(await store.discard(ended)).toBe(false);

    // A paused task: created queued (it waits on the queue), with no running event.
    const taskId = newWorkId('task', agentId);
    await redis.set(keys.agent.task(agentId, taskId, keys.watch.paused), '{}');
    const paused = meta(newWorkId('ex', agentId), taskId);
    expect(await store.createRunning(paused)).toBe('held');
    expect((await store.get(paused.id))?.status).toBe('queued');
    expect(await events(paused.id)).toEqual(['queued']);

    // A suspended agent: the same.
    await redis.set(keys.watch.suspended(agentId), '{}');
    const suspended = meta(newWorkId('ex', agentId));
    expect(await store.createRunning(suspended)).toBe('held');
    expect((await store.get(suspended.id))?.status).toBe('queued');
    await redis.del(keys.watch.suspended(agentId));

    // Revoked: nothing written at all.
    await redis.set(keys.agent.revoked(agentId), new Date().toISOString());
    const revoked = meta(newWorkId('ex', agentId));
    expect(await store.createRunning(revoked)).toBe('revoked');
    expect(await redis.exists(keys.execution.record(revoked.id), keys.execution.stream(revoked.id))).toBe(0);
    expect(await store.idsOfAgent(agentId)).not.toContain(revoked.id);
  });
});
