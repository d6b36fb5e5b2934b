// Activity of each agent and task per minute: admitted runs and tool calls, refusals, and spend
// (settled work and reported model cost), for the console's "last hour" figures and its charts.
// One hash per hour (`<minute>|<metric>` fields, at most 240), kept 8 days; reading any window
// touches one key per hour of it. Off the request path, the events of COALESCE_MS are summed in
// memory and written together (one round trip for many runs, not one MULTI per event).

import type { ActivityFigures } from '../contract/console.ts';
import { fromNanos, toNanos } from '../contract/money.ts';
import { execAll } from './exec-all.ts';
import { redisKeys } from './keys.ts';
import type { RedisClient } from './redis-client.ts';
import { createWriteBatch } from './write-batch.ts';

export type Metric = 'runs' | 'toolCalls' | 'refused' | 'spend';
export type Scope = 'agent' | 'task';

const KEEP_S = 8 * 86_400;
const MINUTE = 60_000;
const HOUR = 3_600_000;
/** The longest window one read may cover (a week and a day). */
export const MAX_WINDOW_MS = 8 * 86_400_000;

export interface ActivityBucket extends ActivityFigures {
  startMs: number;
}

/** How long counts wait in memory to be written with the others of that time. */
export const COALESCE_MS = 100;

export interface ActivityStore {
  /**
   * Adds `amount` (a count, or money for spend) to the minute of `atMs`, for the agent and its
   * task; resolves once written (within COALESCE_MS, with the others of that time).
   */
  add(event: { agentId: string; taskId: string | null; metric: Metric; amount: number; atMs?: number }): Promise<void>;
  /** Writes what is waiting now (shutdown). */
  flush(): Promise<void>;
  /** Buckets of `bucketMs` (a multiple of a minute) covering [fromMs, toMs), oldest first. */
  buckets(scope: Scope, id: string, fromMs: number, toMs: number, bucketMs: number): Promise<ActivityBucket[]>;
}

const empty = (startMs: number): ActivityBucket => ({ startMs, runs: 0, toolCalls: 0, refused: 0, spend: 0 });

export function createActivityStore(redis: RedisClient, prefix: string): ActivityStore {
  const keys = redisKeys(prefix);
  // key → field → amount: the events of COALESCE_MS, summed, in one round trip. Single-key
  // commands sent in one tick: the auto-pipelining client sends them in one write (one per node
  // on a cluster), with no MULTI of their own.
  const pending = createWriteBatch(
    COALESCE_MS,
    () => new Map<string, Map<string, number>>(),
    (batch) =>
      Promise.all(
        [...batch].flatMap(([key, fields]) => [
          ...[...fields].map(([field, n]) => redis.hincrby(key, field, n)),
          redis.expire(key, KEEP_S),
        ]),
      ),
  );

  return {
    add({ agentId, taskId, metric, amount, atMs = Date.now() }) {
      const hour = Math.floor(atMs / HOUR);
      const field = `${Math.floor(atMs / MINUTE)}|${metric}`;
      const n = metric === 'spend' ? toNanos(amount) : Math.round(amount);
      if (n === 0) return Promise.resolve();
      const scopes = [['agent', agentId], ...(taskId ? [['task', taskId]] : [])] as Array<[Scope, string]>;
      return pending.add((batch) => {
        for (const [scope, id] of scopes) {
          const key = keys.activity(scope, id, hour);
          const fields = batch.get(key) ?? new Map<string, number>();
          fields.set(field, (fields.get(field) ?? 0) + n);
          batch.set(key, fields);
        }
      });
    },

    flush: () => pending.flush(),

    async buckets(scope, id, fromMs, toMs, bucketMs) {
      if (bucketMs < MINUTE || bucketMs % MINUTE !== 0) throw new Error('bucketMs must be whole minutes');
      if (toMs <= fromMs || toMs - fromMs > MAX_WINDOW_MS) throw new Error('the window must be 1 ms to 8 days');
      const first = Math.floor(fromMs / bucketMs) * bucketMs;
      const out: ActivityBucket[] = [];
      for (let start = first; start < toMs; start += bucketMs) out.push(empty(start));
      const hours: number[] = [];
      for (let h = Math.floor(first / HOUR); h * HOUR < toMs; h++) hours.push(h);
      const p = redis.pipeline();
      for (const h of hours) p.hgetall(keys.activity(scope, id, h));
      const hashes = (await execAll(p)) as Array<Record<string, string>>;
      for (const hash of hashes) {
        for (const [field, value] of Object.entries(hash)) {
          const [minute, metric] = field.split('|') as [string, Metric];
          const at = Number(minute) * MINUTE;
          if (at < first || at >= toMs) continue;
          const bucket = out[Math.floor((at - first) / bucketMs)];
          if (!bucket || !(metric in bucket)) continue;
          bucket[metric] += Number(value); // spend in nanos until the end: integer sums never drift
        }
      }
      for (const b of out) b.spend = fromNanos(b.spend);
      return out;
    },
  };
}

/** The sum of some buckets. */
export function totalOf(buckets: readonly ActivityFigures[]): ActivityFigures {
  const t = { runs: 0, toolCalls: 0, refused: 0, spend: 0 };
  for (const b of buckets) {
    t.runs += b.runs;
    t.toolCalls += b.toolCalls;
    t.refused += b.refused;
    t.spend += toNanos(b.spend);
  }
  return { ...t, spend: fromNanos(t.spend) };
}
