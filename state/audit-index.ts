// A read index of the audit log in Redis, so any API process can answer GET /v1/audit and the
// task trace for records written by every process (on every machine). The files stay the
// evidence; this is a copy for reading, fed after each durable batch and kept for the record TTL.
// Order: time, then record id; members of the sorted sets are "<ms, 15 digits>|<id>" so one
// lexicographic range is both the order and an exact cursor.

import type { AuditRecord } from '../contract/audit.ts';
import { redisKeys } from './keys.ts';
import type { RedisClient } from './redis-client.ts';

export interface AuditQuery {
  taskId?: string | undefined;
  agentId?: string | undefined;
  kind?: string | undefined;
  /** Records after this cursor (the `next` of the previous page). */
  after?: string | undefined;
  /** Only records stamped in [sinceMs, untilMs]. */
  sinceMs?: number | undefined;
  untilMs?: number | undefined;
  limit: number;
}

export interface AuditIndex {
  add(records: readonly AuditRecord[]): Promise<void>;
  query(q: AuditQuery): Promise<{ records: AuditRecord[]; next: string | null }>;
  get(id: string): Promise<AuditRecord | undefined>;
}

const stamp = (ms: number) => String(ms).padStart(15, '0');
const member = (r: AuditRecord) => `${stamp(Date.parse(r.time))}|${r.id}`;

export function createAuditIndex(redis: RedisClient, prefix: string, ttlSeconds: number): AuditIndex {
  const keys = redisKeys(prefix);
  const recKey = keys.audit.record;
  const setKey = (q: Pick<AuditQuery, 'taskId' | 'agentId'>) =>
    q.taskId ? keys.audit.ofTask(q.taskId) : q.agentId ? keys.audit.ofAgent(q.agentId) : keys.audit.all;

  return {
    async add(records) {
      // The keys of one batch lie in many cluster slots: single-key commands (the client
      // pipelines them), records first, then the indexes (one ZADD per index, then its TTL), so
      // an entry names a record already written (until the record's TTL: readers skip what is gone).
      // On one node the order holds within one write (one connection, executed as sent); across a
      // cluster's nodes only by waiting for each step.
      const written = Promise.all(records.map((r) => redis.set(recKey(r.id), JSON.stringify(r), 'EX', ttlSeconds)));
      if (redis.isCluster) await written;
      const indexes = new Map<string, string[]>();
      const expiring = new Set<string>();
      const index = (key: string, m: string) => indexes.set(key, [...(indexes.get(key) ?? []), m]);
      for (const r of records) {
        const m = member(r);
        index(setKey({}), m);
        for (const key of [r.taskId && setKey({ taskId: r.taskId }), r.agentId && setKey({ agentId: r.agentId })])
          if (key) {
            index(key, m);
            expiring.add(key);
          }
      }
      const indexed = Promise.all([...indexes].map(([key, ms]) => redis.zadd(key, ...ms.flatMap((m) => [0, m]))));
      if (redis.isCluster) await indexed;
      await Promise.all([written, indexed, ...[...expiring].map((key) => redis.expire(key, ttlSeconds))]);
    },

    async query(q) {
      const key = setKey(q);
      const records: AuditRecord[] = [];
      let cursor = q.after ? `(${q.after}` : '-';
      // A time window is a lexicographic range too: "<ms>|" sorts before every member of that ms.
      if (q.sinceMs !== undefined && (cursor === '-' || cursor.slice(1) < stamp(q.sinceMs)))
        cursor = `[${stamp(q.sinceMs)}|`;
      const end = q.untilMs === undefined ? '+' : `(${stamp(q.untilMs + 1)}|`;
      // Filtering by kind (or by agent within a task) may skip members: read on until the page is full.
      for (let rounds = 0; records.length < q.limit && rounds < 50; rounds++) {
        const members = await redis.zrangebylex(key, cursor, end, 'LIMIT', 0, Math.max(q.limit, 100));
        if (members.length === 0) return { records, next: null };
        const raw = await Promise.all(members.map((m) => redis.get(recKey(m.slice(m.indexOf('|') + 1)))));
        for (const [i, text] of raw.entries()) {
          cursor = `(${members[i]}`;
          if (!text) continue;
          const r = JSON.parse(text) as AuditRecord;
          if ((q.kind && r.kind !== q.kind) || (q.agentId && q.taskId && r.agentId !== q.agentId)) continue;
          records.push(r);
          if (records.length === q.limit) return { records, next: members[i]! };
        }
      }
      return { records, next: null };
    },

    async get(id) {
      const raw = await redis.get(recKey(id));
      return raw ? (JSON.parse(raw) as AuditRecord) : undefined;
    },
  };
}
