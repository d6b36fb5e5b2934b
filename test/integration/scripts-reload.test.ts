// A Redis that has lost its scripts (restarted, flushed, a new node): each script call falls back
// from EVALSHA to EVAL once and works, and a finish whose record is read in the same call still
// answers with the record as it is after its move. The finish and its read are one command.
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createExecutionStore } from '../../state/executions.ts';
import { newWorkId } from '../../state/keys.ts';
import { startRedis } from '../helpers/processes.ts';

const cleanup: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
});

describe('scripts Redis does not have', () => {
  it('are sent again as EVAL, and every move still lands once', async () => {
    const server = await startRedis();
    cleanup.push(() => server.stop());
    const redis = new Redis(server.url, { enableAutoPipelining: true });
    cleanup.push(async () => redis.disconnect());
    const store = createExecutionStore(redis, 'sgreload', 3600);
    const agentId = 'ag_reload';
    const meta = (id: string) => ({
      id,
      profile: 'js',
      language: 'javascript' as const,
      agentId,
      taskId: null,
      createdAt: new Date().toISOString(),
    });

    for (let round = 0; round < 3; round++) {
      const id = newWorkId('ex', agentId);
      await redis.script('FLUSH');
      expect(await store.create(meta(id))).toBe(true);
      await redis.script('FLUSH');
      expect(await store.markRunning(id, { agentId, taskId: null })).toBe('started');
      await redis.script('FLUSH');
      const { done, record } = await store.finishAndRead(id, 'succeeded', { exitCode: 0, stdout: 'ok' });
      expect(done).toBe('done');
      expect(record).toMatchObject({ id, status: 'succeeded', stdout: 'ok', exitCode: 0 });
      expect(record?.finishedAt).toEqual(expect.any(String));
      // Moved once: a second finish is refused, and the record did not change.
      expect((await store.finishAndRead(id, 'failed', {})).done).toBe('refused');
      expect((await store.get(id))?.status).toBe('succeeded');
      expect((await store.get(id))?.starts).toBe(1);
    }
    expect((await store.finishAndRead(newWorkId('ex', agentId), 'failed', {})).done).toBe('missing');
  });

  it('a finish and the read of its record are one command', async () => {
    const server = await startRedis();
    cleanup.push(() => server.stop());
    const redis = new Redis(server.url);
    cleanup.push(async () => redis.disconnect());
    const sent: string[] = [];
    const counted = new Proxy(redis, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (typeof value !== 'function' || typeof prop !== 'string') return value;
        return (...args: unknown[]) => {
          sent.push(prop);
          return value.apply(target, args);
        };
      },
    });
    const store = createExecutionStore(counted, 'sgreadone', 3600);
    const agentId = 'ag_readone';
    const id = newWorkId('ex', agentId);
    const createdAt = new Date().toISOString();
    expect(
      await store.createRunning({ id, profile: 'js', language: 'javascript', agentId, taskId: null, createdAt }),
    ).toBe('started');
    sent.length = 0;
    const { done, record } = await store.finishAndRead(id, 'succeeded', { exitCode: 0, stdout: 'one' });
    expect([done, record?.status, record?.stdout]).toEqual(['done', 'succeeded', 'one']);
    expect(sent.filter((c) => c !== 'eval')).toEqual(['evalsha']); // EVAL only when Redis lacked the script
  });
});
