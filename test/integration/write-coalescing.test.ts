// Background copies that many runs share one round trip: activity counts and the audit read
// index wait a few ms and go to Redis together, and nothing of them is lost or double counted;
// a reader of the index sees what its own process just made durable (read your writes).
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../contract/audit.ts';
import { createIndexCopier, INDEX_COALESCE_MS } from '../../guard/audit/index-copier.ts';
import { COALESCE_MS, createActivityStore } from '../../state/activity.ts';
import { type AuditIndex, createAuditIndex } from '../../state/audit-index.ts';
import { newWorkId } from '../../state/keys.ts';
import { dropPrefix, REDIS_URL, testEnv } from '../helpers/sandgate.ts';

const prefix = testEnv().SANDGATE_PREFIX!;
const redis = new Redis(REDIS_URL, { enableAutoPipelining: true });
afterAll(async () => {
  redis.disconnect();
  await dropPrefix(prefix);
});

/** The real client, counting the commands sent through it by name. */
function counting(): { client: Redis; sent: Map<string, number> } {
  const sent = new Map<string, number>();
  const client = new Proxy(redis, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function' || typeof prop !== 'string') return value;
      return (...args: unknown[]) => {
        sent.set(prop, (sent.get(prop) ?? 0) + 1);
        return value.apply(target, args);
      };
    },
  });
  return { client, sent };
}

/** One bucket of two minutes that holds `at`. */
const window = (at: number): [number, number, number] => {
  const from = at - (at % 120_000);
  return [from, from + 120_000, 120_000];
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('activity counts', () => {
  it('events of one window are summed and written once per key and minute, each add resolving once written', async () => {
    const { client, sent } = counting();
    const store = createActivityStore(client, prefix);
    const agentId = `ag_coalesce${Date.now()}`;
    const taskId = newWorkId('task', agentId);
    const at = Date.now();
    const adds = Array.from({ length: 40 }, (_, i) =>
      store.add({ agentId, taskId: i % 2 ? taskId : null, metric: 'runs', amount: 1, atMs: at }),
    );
    adds.push(store.add({ agentId, taskId, metric: 'spend', amount: 0.25, atMs: at }));
    expect(sent.get('hincrby') ?? 0).toBe(0); // nothing sent before the window closes
    await Promise.all(adds);
    // agent: runs + spend; task: runs + spend. Four fields, not 41 events × scopes.
    expect(sent.get('hincrby')).toBe(4);
    const [agent] = await store.buckets('agent', agentId, ...window(at));
    const [task] = await store.buckets('task', taskId, ...window(at));
    expect(agent).toMatchObject({ runs: 40, spend: 0.25 });
    expect(task).toMatchObject({ runs: 20, spend: 0.25 });
  });

  it('flush() writes what waits at once (shutdown), and a later add still gets its own write', async () => {
    const store = createActivityStore(redis, prefix);
    const agentId = `ag_flush${Date.now()}`;
    const at = Date.now();
    const waiting = store.add({ agentId, taskId: null, metric: 'refused', amount: 3, atMs: at });
    const t = performance.now();
    await store.flush();
    await waiting;
    expect(performance.now() - t).toBeLessThan(COALESCE_MS * 5);
    await store.add({ agentId, taskId: null, metric: 'refused', amount: 2, atMs: at });
    const [b] = await store.buckets('agent', agentId, ...window(at));
    expect(b?.refused).toBe(5);
  });
});

const record = (agentId: string, n: number): AuditRecord =>
  ({
    id: `rec-${agentId}-${n}`,
    seq: n,
    time: new Date(Date.now() + n).toISOString(),
    kind: 'run.finished',
    agentId,
    taskId: null,
    data: { n },
    prevHash: 'p',
    hash: 'h',
  }) as unknown as AuditRecord;

describe('audit index copier', () => {
  it('batches that arrive within the window are copied in one add, in order', async () => {
    const index = createAuditIndex(redis, prefix, 600);
    const adds: number[] = [];
    const watched: AuditIndex = {
      ...index,
      add: (rs) => {
        adds.push(rs.length);
        return index.add(rs);
      },
    };
    const errors: Error[] = [];
    const copier = createIndexCopier(watched, (e) => errors.push(e));
    const agentId = `ag_idx${Date.now()}`;
    for (let n = 0; n < 5; n++) copier.add([record(agentId, 2 * n), record(agentId, 2 * n + 1)]);
    expect(adds).toEqual([]);
    await sleep(INDEX_COALESCE_MS * 4);
    expect(adds).toEqual([10]);
    const { records } = await index.query({ agentId, limit: 50 });
    expect(records.map((r) => (r.data as { n: number }).n)).toEqual([...Array(10).keys()]);
    expect(errors).toEqual([]);
    await copier.close(500);
  });

  it('now() copies what waits without the window: a reader sees its own process write', async () => {
    const index = createAuditIndex(redis, prefix, 600);
    const copier = createIndexCopier(index, () => {});
    const agentId = `ag_now${Date.now()}`;
    copier.add([record(agentId, 1)]);
    expect(copier.pending()).toBe(1);
    await copier.now();
    expect(copier.pending()).toBe(0);
    expect((await index.query({ agentId, limit: 5 })).records).toHaveLength(1);
    await copier.close(500);
  });
});
