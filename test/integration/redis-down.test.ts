// Redis goes away: readiness says so (503) and requests fail with 503, not 500 or a hang, and
// nothing is admitted that was not metered.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisKeys } from '../../state/keys.ts';
import { startRedis } from '../helpers/processes.ts';
import { startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

let sg: TestSandgate;
let redis: Awaited<ReturnType<typeof startRedis>>;
let auth: Record<string, string>;

beforeAll(async () => {
  redis = await startRedis();
  sg = await startSandgate({ REDIS_URL: redis.url });
  ({ auth } = await sg.agent());
});
afterAll(async () => {
  await redis.stop();
  await Promise.race([sg.close(), new Promise((r) => setTimeout(r, 5000))]);
});

describe('Redis unreachable', () => {
  it('turns readiness and requests into 503 dependency errors', async () => {
    const before = await sg.app!.inject({
      method: 'POST',
      url: '/v1/executions?wait=true',
      headers: auth,
      payload: { profile: 'js', code: '1' },
    });
    expect(before.statusCode).toBe(200);
    await redis.stop();

    const ready = await sg.app!.inject('/readyz');
    expect(ready.statusCode).toBe(503);
    expect(ready.json().checks.redis).not.toBe('ok');

    const res = await sg.app!.inject({
      method: 'POST',
      url: '/v1/executions',
      headers: auth,
      payload: { profile: 'js', code: '1' },
    });
    expect(res.statusCode).toBe(503);
    expect(res.json().error.code).toBe('dependency_unavailable');
    expect((await sg.app!.inject('/healthz')).statusCode).toBe(200);
  });
});

describe('Redis stopped in the middle of admissions', () => {
  it('answers 503 for what it could not meter, and every 202 it gave was counted against the task', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sandgate-redis-aof-'));
    const persistent = await startRedis({ persistDir: dir });
    const api = await startSandgate({ REDIS_URL: persistent.url }, 'api');
    try {
      const agent = await api.app!.inject({
        method: 'POST',
        url: '/v1/agents',
        headers: api.admin,
        payload: { name: 'burst', grants: { profiles: ['js'] }, limits: { runsPerMinute: 100_000 } },
      });
      const agentId = agent.json().id as string;
      const auth = { authorization: `Bearer ${await api.mint(agentId)}` };
      const task = (
        await api.app!.inject({
          method: 'POST',
          url: '/v1/tasks',
          headers: auth,
          payload: { goal: 'burst', budget: { maxRuns: 10_000 } },
        })
      ).json().id;

      // Ten requests in flight at any time; Redis is killed after the 30th answer.
      const codes: number[] = [];
      const lanes = Array.from({ length: 10 }, async () => {
        while (codes.length < 150) {
          const res = await api.app!.inject({
            method: 'POST',
            url: '/v1/executions',
            headers: auth,
            payload: { profile: 'js', code: '1', taskId: task },
          });
          codes.push(res.statusCode);
          if (codes.length === 30) await persistent.stop();
        }
      });
      await Promise.all(lanes);
      expect(codes.filter((c) => c !== 202 && c !== 503)).toEqual([]);
      const admitted = codes.filter((c) => c === 202).length;
      expect(admitted).toBeGreaterThanOrEqual(30);
      expect(codes.filter((c) => c === 503).length).toBeGreaterThan(100);

      await persistent.restart();
      const direct = new Redis(persistent.url);
      try {
        const keys = redisKeys(api.config.SANDGATE_PREFIX);
        const ids = await direct.smembers(keys.agent.executions(agentId));
        const statuses = await Promise.all(ids.map((id) => direct.hget(keys.execution.record(id), 'status')));
        // Each 202 is a queued record; nothing ran or was queued without an answer saying so.
        expect(statuses.filter((s) => s === 'queued')).toHaveLength(admitted);
        // Metered, never unmetered: every admitted run was counted (a run counted whose answer was
        // lost to the outage errs on the safe side).
        expect(Number(await direct.hget(keys.task.record(task), 'runs'))).toBeGreaterThanOrEqual(admitted);
      } finally {
        direct.disconnect();
      }
    } finally {
      await persistent.stop();
      await Promise.race([api.close(), new Promise((r) => setTimeout(r, 5000))]);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
