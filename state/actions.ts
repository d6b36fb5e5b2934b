// Action records and their approvals in Redis, shared by API and runners. Status changes are Lua
// scripts (lua/action-*, lua/approval-*, lua/transition-2) that check the current state first.

import { type Action, type ActionStatus, type Approval, FINAL_ACTION_STATUSES } from '../contract/action.ts';
import { resultError } from '../contract/errors.ts';
import type { EventStreamWriter } from './event-streams.ts';
import { execAll } from './exec-all.ts';
import type { StartResult } from './executions.ts';
import { redisKeys } from './keys.ts';
import type { RedisClient } from './redis-client.ts';
import { defineScripts } from './scripts.ts';

export interface ActionMeta {
  id: string;
  tool: string;
  agentId: string;
  taskId: string | null;
  args: Record<string, unknown>;
  reasoning: string | null;
  createdAt: string;
  /** Destinations granted when it was asked, for a job queued later (after approval). */
  destinations: string[];
  /** The record of its request in the audit log. */
  auditId?: string;
}

export type ActionOutcome = Pick<Action, 'result' | 'error' | 'egress' | 'usage'>;

/** What an approver sees and decides on; fixed when the approval is requested. */
export type ApprovalData = Pick<
  Approval,
  'tool' | 'args' | 'argsHash' | 'reasoning' | 'taskId' | 'tainted' | 'taintSources' | 'requestedAt'
>;

export type Decided =
  | { ok: true; actionId: string }
  | { ok: false; why: 'missing' | 'expired' | 'self' | 'decided' | 'action'; detail: string };

export interface ActionStore {
  readonly doneChannel: string;
  /** False when the agent is revoked (nothing written). With an approval, it starts pending. */
  create(meta: ActionMeta, approval?: { id: string; data: ApprovalData; ttlMs: number }): Promise<boolean>;
  get(id: string): Promise<(Action & Pick<ActionMeta, 'destinations'>) | undefined>;
  getApproval(id: string): Promise<Approval | undefined>;
  /** Pending approvals, soonest to expire first (expired ones are expired on the way). */
  pendingApprovals(limit: number): Promise<Approval[]>;
  decide(approvalId: string, decision: 'approve' | 'deny', deciderId: string, reason: string | null): Promise<Decided>;
  /** Expires the approval (and its action) if it is due; true when it did. */
  expireIfDue(approvalId: string): Promise<boolean>;
  /** Marks an approved approval used, if it is for this action and these exact arguments. */
  consumeApproval(approvalId: string, actionId: string, argsHash: string): Promise<boolean>;
  /** queued → running unless its agent is suspended or its task paused (`held`: it stays queued). */
  markRunning(id: string, owner: { agentId: string; taskId: string | null }): Promise<StartResult>;
  finish(id: string, status: ActionStatus, outcome: Partial<ActionOutcome>): Promise<boolean>;
  /** Cancels an action that has not started (queued or awaiting approval). */
  cancel(id: string, reason: { code: string; message: string }): Promise<boolean>;
  idsOfAgent(agentId: string): Promise<string[]>;
  /** Adds the id of a later audit record (decided, started, finished) to the action. */
  addAuditId(id: string, auditId: string): Promise<void>;
}

const EXPIRED = { error: resultError('approval_expired') };

/** `streams`: every status change is also told to the action's event stream, its end with the record. */
export function createActionStore(
  redis: RedisClient,
  prefix: string,
  ttlSeconds: number,
  streams?: EventStreamWriter,
): ActionStore {
  const scripts = defineScripts(redis);
  const keys = redisKeys(prefix);
  /** Awaited where another process acts next (it is bounded and never fails). */
  const moved = async (id: string, status: ActionStatus): Promise<void> => {
    if (!streams) return;
    await streams.append(keys.action.stream(id), 'status', { status, at: new Date().toISOString() });
    if (!FINAL_ACTION_STATUSES.includes(status)) return;
    const action = await store.get(id).catch(() => undefined);
    if (action) await streams.append(keys.action.stream(id), 'final', action);
  };
  const actKey = keys.action.record;
  const aprKey = keys.action.approval;
  const pendingKey = keys.action.pendingApprovals;
  const doneChannel = keys.action.doneChannel;
  const now = () => new Date().toISOString();
  const approvalKeys = (approvalId: string, actionId: string) => ({
    approval: aprKey(approvalId),
    action: actKey(actionId),
  });
  // The pending list is global (another cluster slot than the approval's): it is written in its
  // own command after the approval's script, so an entry may name an approval that is no longer
  // pending (decided, expired, cancelled) or, after a failure in between, be missing; readers
  // check the approval itself and drop entries that name nothing pending.
  const unlist = (approvalId: string) => redis.zrem(pendingKey, approvalId);

  const transition = async (id: string, to: ActionStatus, from: readonly string[], fields: Record<string, string>) =>
    (await scripts.transition({ record: actKey(id) }, { doneChannel, to, ttlS: ttlSeconds, from, fields })) === 1;

  const expireIfDue = async (approvalId: string) => {
    const actionId = await redis.hget(aprKey(approvalId), 'actionId');
    if (!actionId) return false;
    const expired = await scripts.approvalExpire(approvalKeys(approvalId, actionId), {
      doneChannel,
      at: now(),
      expiredOutcome: JSON.stringify(EXPIRED),
    });
    if (expired) {
      await unlist(approvalId);
      void moved(actionId, 'expired');
    }
    return expired;
  };

  const getApproval = async (id: string): Promise<Approval | undefined> => {
    const h = await redis.hgetall(aprKey(id));
    if (!h.data) return undefined;
    const data = JSON.parse(h.data) as ApprovalData;
    return {
      id,
      actionId: h.actionId!,
      agentId: h.agentId!,
      ...data,
      status: h.status as Approval['status'],
      expiresAt: new Date(Number(h.expiresAtMs)).toISOString(),
      decidedBy: h.decidedBy || null,
      decidedAt: h.decidedAt || null,
      reason: h.reason || null,
    };
  };

  const createRecord = async (
    meta: ActionMeta,
    approval?: { id: string; data: ApprovalData; ttlMs: number },
  ): Promise<boolean> => {
    const own = {
      action: actKey(meta.id),
      revoked: keys.agent.revoked(meta.agentId),
      agentIndex: keys.agent.actions(meta.agentId),
    };
    const args = { id: meta.id, meta: JSON.stringify(meta), ttlS: ttlSeconds };
    if (!approval) return scripts.actionCreate(own, args);
    const expiresAtMs = await scripts.actionCreateAwaiting(
      { ...own, approval: aprKey(approval.id) },
      {
        ...args,
        approvalId: approval.id,
        data: JSON.stringify(approval.data),
        approvalTtlMs: approval.ttlMs,
        agentId: meta.agentId,
      },
    );
    if (expiresAtMs === 0) return false;
    // Listed after it exists, scored by the expiry Redis set (a failure here leaves it off the
    // list; its expiry job still expires it, and it is found by id).
    await redis.zadd(pendingKey, expiresAtMs, approval.id);
    return true;
  };

  const store: ActionStore = {
    doneChannel,

    async create(meta, approval) {
      const created = await createRecord(meta, approval);
      if (created) await moved(meta.id, approval ? 'awaiting_approval' : 'queued');
      return created;
    },

    async get(id) {
      const [h, laterAuditIds] = await Promise.all([
        redis.hgetall(actKey(id)),
        redis.lrange(keys.action.auditIds(id), 0, -1),
      ]);
      if (!h.meta || !h.status) return undefined;
      const meta = JSON.parse(h.meta) as ActionMeta;
      const outcome = h.outcome ? (JSON.parse(h.outcome) as Partial<ActionOutcome>) : {};
      let approval: Approval | undefined;
      if (h.approvalId) {
        if (h.status === 'awaiting_approval' && (await expireIfDue(h.approvalId))) return this.get(id);
        approval = await getApproval(h.approvalId);
      }
      return {
        ...meta,
        status: h.status as ActionStatus,
        ...(outcome.result !== undefined && { result: outcome.result }),
        ...(outcome.error && { error: outcome.error }),
        ...(approval && {
          approval: {
            id: approval.id,
            status: approval.status,
            expiresAt: approval.expiresAt,
            decidedBy: approval.decidedBy,
            reason: approval.reason,
          },
        }),
        egress: outcome.egress ?? [],
        usage: outcome.usage ?? { cost: 0 },
        auditId: meta.auditId ?? null,
        auditIds: [...(meta.auditId ? [meta.auditId] : []), ...laterAuditIds],
        finishedAt: h.finishedAt ?? null,
      };
    },

    getApproval,

    async pendingApprovals(limit) {
      const ids = await redis.zrange(pendingKey, 0, limit - 1);
      const out: Approval[] = [];
      for (const id of ids) {
        if (await expireIfDue(id)) continue;
        const a = await getApproval(id);
        if (a?.status === 'pending') out.push(a);
        else await unlist(id); // decided, cancelled, or its record is gone: it never pends again
      }
      return out;
    },

    async decide(approvalId, decision, deciderId, reason) {
      const actionId = await redis.hget(aprKey(approvalId), 'actionId');
      if (!actionId) return { ok: false, why: 'missing', detail: '' };
      const denied = { error: resultError('approval_denied', reason) };
      const [verdict, detail] = await scripts.approvalDecide(approvalKeys(approvalId, actionId), {
        doneChannel,
        decision,
        decider: deciderId,
        reason: reason ?? '',
        at: now(),
        deniedOutcome: JSON.stringify(denied),
        expiredOutcome: JSON.stringify(EXPIRED),
      });
      if (verdict === 'ok' || verdict === 'expired') await unlist(approvalId);
      if (verdict === 'ok') await moved(actionId, decision === 'approve' ? 'queued' : 'denied');
      return verdict === 'ok'
        ? { ok: true, actionId }
        : { ok: false, why: verdict as Exclude<Decided, { ok: true }>['why'], detail };
    },

    expireIfDue,

    consumeApproval(approvalId, actionId, argsHash) {
      return scripts.approvalConsume({ approval: aprKey(approvalId) }, { actionId, argsHash });
    },

    async markRunning(id, owner) {
      const started = await scripts.start(
        {
          record: actKey(id),
          suspended: keys.watch.suspended(owner.agentId),
          paused: keys.agent.task(owner.agentId, owner.taskId, keys.watch.paused),
          stream: keys.action.stream(id),
        },
        {
          ttlS: ttlSeconds,
          hasTask: owner.taskId !== null,
          // `running` joins its stream in the same call.
          event: streams && JSON.stringify({ status: 'running', at: now() }),
          fields: { startedAt: now() },
        },
      );
      return started;
    },

    async finish(id, status, outcome) {
      if (!FINAL_ACTION_STATUSES.includes(status)) throw new Error(`finish() needs a final status, got ${status}`);
      const done = await transition(id, status, ['queued', 'running'], {
        outcome: JSON.stringify(outcome),
        finishedAt: now(),
      });
      if (done) void moved(id, status);
      return done;
    },

    async cancel(id, reason) {
      const done = await transition(id, 'cancelled', ['queued', 'awaiting_approval'], {
        outcome: JSON.stringify({ error: reason }),
        finishedAt: now(),
      });
      // Its approval, if any, is moot: off the pending list, and never usable (the runner only
      // uses an approved one). A decision racing this finds the action cancelled and gets 409.
      // Also when an earlier call cancelled it and failed before this step: a retry finishes it.
      const [approvalId, status] = await redis.hmget(actKey(id), 'approvalId', 'status');
      if (approvalId && status === 'cancelled') {
        if ((await redis.hget(aprKey(approvalId), 'status')) === 'pending')
          await redis.hset(aprKey(approvalId), 'status', 'cancelled', 'decidedAt', now());
        await unlist(approvalId);
      }
      if (done) void moved(id, 'cancelled');
      return done;
    },

    idsOfAgent(agentId) {
      return redis.smembers(keys.agent.actions(agentId));
    },

    async addAuditId(id, auditId) {
      // A list, appended in Redis: two records added at once (decided, started) both stay.
      await execAll(
        redis.multi().rpush(keys.action.auditIds(id), auditId).expire(keys.action.auditIds(id), ttlSeconds),
      );
    },
  };
  return store;
}
