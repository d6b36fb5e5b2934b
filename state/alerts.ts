// Alert records in Redis: raised by lua/alert-raise (deduplicated per agent and detector while
// open, its response applied in the same step), handled by a human through lua/alert-update,
// listed newest first, with the deliveries made for each.

import type { Alert, AlertStatus, Detector, HoldReason, Response, Severity } from '../contract/watch.ts';
import { execAll } from './exec-all.ts';
import { redisKeys } from './keys.ts';
import type { RedisClient } from './redis-client.ts';
import { defineScripts } from './scripts.ts';

export interface NewAlert {
  id: string;
  detector: Detector;
  severity: Severity;
  agentId: string;
  taskId: string | null;
  action: Response;
  summary: string;
  evidence: Record<string, unknown>;
  auditIds: string[];
  resumes: Alert['resumes'];
}

/** The marker a response sets: the agent suspended, the task paused, the agent throttled. */
export interface Marker {
  key: 'suspended' | 'paused' | 'throttle';
  hold: HoldReason;
  ttlS: number;
}

export type Delivery = Alert['deliveries'][number];

export interface AlertStore {
  raise(alert: NewAlert, marker: Marker | undefined): Promise<{ raised: boolean; id: string }>;
  get(id: string): Promise<Alert | undefined>;
  list(q: {
    status?: AlertStatus | undefined;
    agentId?: string | undefined;
    taskId?: string | undefined;
    detector?: Detector | undefined;
    limit: number;
  }): Promise<Alert[]>;
  update(
    id: string,
    to: 'acknowledged' | 'resolved',
    by: string,
    reason: string | null,
  ): Promise<{ ok: true } | { ok: false; why: 'missing' | 'refused'; status?: string }>;
  /** Alerts not yet resolved (open or acknowledged), newest first. */
  unresolved(limit: number): Promise<Alert[]>;
  addDelivery(id: string, delivery: Delivery): Promise<void>;
  openCount(): Promise<number>;
}

const at = (ms: string | undefined) => (ms ? new Date(Number(ms)).toISOString() : '');

export function createAlertStore(redis: RedisClient, prefix: string, ttlSeconds: number): AlertStore {
  const scripts = defineScripts(redis);
  const keys = redisKeys(prefix);
  const a = keys.alert;
  const deliveriesKey = a.deliveries;

  const get = async (id: string): Promise<Alert | undefined> => {
    const [h, deliveries] = await Promise.all([redis.hgetall(a.record(id)), redis.lrange(deliveriesKey(id), 0, 49)]);
    if (!h.fields) return undefined;
    const f = JSON.parse(h.fields) as Omit<NewAlert, 'id' | 'auditIds'>;
    const first = JSON.parse(h.auditIds ?? '[]') as string[];
    const later = h.lastAuditIds ? (JSON.parse(h.lastAuditIds) as string[]) : [];
    return {
      id,
      ...f,
      status: h.status as AlertStatus,
      auditIds: [...new Set([...later, ...first])].slice(0, 30),
      count: Number(h.count ?? 1),
      raisedAt: at(h.raisedAtMs),
      lastSeenAt: at(h.lastSeenAtMs),
      acknowledgedBy: h.acknowledgedBy || null,
      acknowledgedAt: h.acknowledgedAt || null,
      resolvedBy: h.resolvedBy || null,
      resolvedAt: h.resolvedAt || null,
      reason: h.reason || null,
      deliveries: deliveries.map((d) => JSON.parse(d) as Delivery),
    };
  };

  return {
    async raise(alert, marker) {
      const { id, auditIds, ...fields } = alert;
      const nowMs = Date.now();
      const markerKey =
        marker?.key === 'suspended'
          ? keys.watch.suspended(alert.agentId)
          : marker?.key === 'paused'
            ? keys.agent.task(alert.agentId, alert.taskId, keys.watch.paused)
            : keys.watch.throttle(alert.agentId); // throttle, or (no marker) a key the script leaves alone
      const [verdict, existing] = await scripts.alertRaise(
        {
          open: a.open(alert.agentId, alert.detector),
          record: a.record(id),
          ofAgent: a.ofAgent(alert.agentId),
          marker: markerKey,
        },
        {
          id,
          nowMs,
          fields: JSON.stringify(fields),
          auditIds: JSON.stringify(auditIds),
          markerValue: JSON.stringify(marker?.hold ?? null),
          setMarker: marker !== undefined,
          markerTtlS: marker?.ttlS ?? 0,
          ttlS: ttlSeconds,
        },
      );
      // The global lists after the agent's step (their own slots): only a raised alert joins them
      // (most firings are deduplicated). A failure in between leaves the alert on its agent's
      // list and found by id; readers of the global lists skip entries whose record is gone.
      if (verdict === 'raised') {
        await Promise.all([redis.zadd(a.all, nowMs, id), redis.zadd(a.openSet, nowMs, id)]);
      }
      return { raised: verdict === 'raised', id: existing };
    },

    get,

    async list(q) {
      const index = q.agentId ? a.ofAgent(q.agentId) : q.status === 'open' ? a.openSet : a.all;
      const out: Alert[] = [];
      // Newest first; filters may skip records, so read on (bounded) until the page is full.
      for (let offset = 0; out.length < q.limit && offset < 5000; offset += 200) {
        const ids = await redis.zrevrange(index, offset, offset + 199);
        if (ids.length === 0) break;
        for (const alert of await Promise.all(ids.map(get))) {
          if (!alert) continue;
          if (q.status && alert.status !== q.status) continue;
          if (q.detector && alert.detector !== q.detector) continue;
          if (q.taskId && alert.taskId !== q.taskId) continue;
          out.push(alert);
          if (out.length === q.limit) break;
        }
      }
      return out;
    },

    async update(id, to, by, reason) {
      const alert = await get(id);
      if (!alert) return { ok: false, why: 'missing' };
      const [verdict, status] = await scripts.alertUpdate(
        { record: a.record(id), open: a.open(alert.agentId, alert.detector) },
        { to, by, reason: reason ?? '', at: new Date().toISOString() },
      );
      // Off the global open list after the record says resolved: readers filter by status meanwhile.
      if (verdict === 'ok' && to === 'resolved') await redis.zrem(a.openSet, id);
      if (verdict === 'ok') return { ok: true };
      return { ok: false, why: verdict === 'missing' ? 'missing' : 'refused', ...(status && { status }) };
    },

    async unresolved(limit) {
      const ids = await redis.zrevrange(a.openSet, 0, limit - 1);
      const found = await Promise.all(ids.map(get));
      return found.filter((x): x is Alert => x !== undefined && x.status !== 'resolved');
    },

    async addDelivery(id, delivery) {
      await execAll(
        redis
          .multi()
          .lpush(deliveriesKey(id), JSON.stringify(delivery))
          .ltrim(deliveriesKey(id), 0, 49)
          .expire(deliveriesKey(id), ttlSeconds),
      );
    },

    openCount: () => redis.zcard(a.openSet),
  };
}
