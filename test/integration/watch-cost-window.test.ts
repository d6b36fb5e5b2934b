// The cost detector's window keeps its sum beside it (O(what moved) per call, not O(window)):
// the sum must stay exact as members enter and leave, after a resume, and when the kept sum is
// lost (it is recounted).
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WatchSettings } from '../../contract/watch.ts';
import { newWorkId, redisKeys } from '../../state/keys.ts';
import { createWatchStore, type WatchStore } from '../../state/watch.ts';
import { dropPrefix, REDIS_URL } from '../helpers/sandgate.ts';

const prefix = `sgtest-cost-${randomBytes(4).toString('hex')}`;
let redis: Redis;
let store: WatchStore;
const settings = (perWindow: number, windowS = 1) =>
  WatchSettings.parse({ cost: { enabled: true, perWindow, windowS, response: 'alert' } });
const cost = (scope: 'agent' | 'task', nanos: number) => ({ detector: 'cost', figures: [scope, String(nanos)] });

beforeAll(async () => {
  redis = new Redis(REDIS_URL);
  store = createWatchStore(redis, prefix);
});
afterAll(async () => {
  await dropPrefix(prefix);
  redis.disconnect();
});

describe('the cost window', () => {
  it('fires exactly when the sum of the window passes the threshold, as members enter and leave', async () => {
    const agentId = `ag_${randomBytes(6).toString('hex')}`;
    const s = settings(1.0, 1);
    // 9 × 0.1 = 0.9: under the threshold; the 11th pushes it over (1.1 > 1.0).
    for (let i = 0; i < 10; i++)
      expect(await store.cost({ member: `m${i}`, agentId, taskId: null, cost: 0.1 }, s)).toEqual([]);
    const over = await store.cost({ member: 'm10', agentId, taskId: null, cost: 0.1 }, s);
    expect(over).toEqual([cost('agent', 1_100_000_000)]);
    // After the window, the old members leave and their cost with them.
    await new Promise((r) => setTimeout(r, 1100));
    expect(await store.cost({ member: 'm11', agentId, taskId: null, cost: 0.1 }, s)).toEqual([]);
    expect(await redis.hget(redisKeys(prefix).watch.agentState(agentId), 'spend_sum')).toBe('100000000');
  });

  it('recounts a lost sum from the window instead of starting from zero', async () => {
    const agentId = `ag_${randomBytes(6).toString('hex')}`;
    const s = settings(1.0, 60);
    for (let i = 0; i < 8; i++) await store.cost({ member: `m${i}`, agentId, taskId: null, cost: 0.1 }, s);
    await redis.hdel(redisKeys(prefix).watch.agentState(agentId), 'spend_sum');
    await store.cost({ member: 'm8', agentId, taskId: null, cost: 0.1 }, s);
    expect(await redis.hget(redisKeys(prefix).watch.agentState(agentId), 'spend_sum')).toBe('900000000');
    expect(await store.cost({ member: 'm9', agentId, taskId: null, cost: 0.2 }, s)).toEqual([
      cost('agent', 1_100_000_000),
    ]);
  });

  it('counts afresh after a resume', async () => {
    const agentId = `ag_${randomBytes(6).toString('hex')}`;
    const s = settings(1.0, 60);
    for (let i = 0; i < 9; i++) await store.cost({ member: `m${i}`, agentId, taskId: null, cost: 0.1 }, s);
    await new Promise((r) => setTimeout(r, 5));
    await store.resumeAgent(agentId);
    await new Promise((r) => setTimeout(r, 5));
    expect(await store.cost({ member: 'm9', agentId, taskId: null, cost: 0.5 }, s)).toEqual([]);
    expect(await redis.hget(redisKeys(prefix).watch.agentState(agentId), 'spend_sum')).toBe('500000000');
  });

  it('keeps a task window apart from its agent window', async () => {
    const agentId = `ag_${randomBytes(6).toString('hex')}`;
    const s = settings(1.0, 60);
    const taskId = newWorkId('task', agentId);
    await store.cost({ member: 'a', agentId, taskId: null, cost: 0.8 }, s);
    const t = await store.cost({ member: 'b', agentId, taskId, cost: 0.3 }, s);
    expect(t).toEqual([cost('agent', 1_100_000_000)]); // the agent: 0.8 + 0.3; the task alone is under
    expect(await redis.hget(redisKeys(prefix).watch.taskState(taskId), 'spend_sum')).toBe('300000000');
  });
});
