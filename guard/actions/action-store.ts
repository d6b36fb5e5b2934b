// Action records and their approvals in Redis, shared by API and runners. Status changes are Lua
// scripts (approval-scripts.ts, transition-script.ts) that check the current state first.
import type { Redis } from 'ioredis';
import { type Action, type ActionStatus, type Approval, FINAL_ACTION_STATUSES } from '../../contract/action.ts';
import { agentRevokedKey } from '../../contract/redis-keys.ts';
import { TRANSITION } from '../records/transition-script.ts';
import { CONSUME, CREATE_ACTION, DECIDE, EXPIRE } from './approval-scripts.ts';
import { execAll } from '../records/exec-all.ts';

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
export type ApprovalData = Pick<Approval, 'tool' | 'args' | 'argsHash' | 'reasoning' | 'taskId' | 'tainted' | 'taintSources' | 'requestedAt'>;

export type Decided = { ok: true } | { ok: false; why: 'missing' | 'expired' | 'self' | 'decided' | 'action'; detail: string };

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
  markRunning(id: string): Promise<boolean>;
  finish(id: string, status: ActionStatus, outcome: Partial<ActionOutcome>): Promise<boolean>;
  /** Cancels an action that has not started (queued or awaiting approval). */
  cancel(id: string, reason: { code: string; message: string }): Promise<boolean>;
  idsOfAgent(agentId: string): Promise<string[]>;
  /** Adds the id of a later audit record (decided, started, finished) to the action. */
  addAuditId(id: string, auditId: string): Promise<void>;
}

type Scripted = Redis & {
  sandgateTransition(record: string, channel: string, ...args: string[]): Promise<number>;
  sandgateCreateAction(numKeys: number, ...keysAndArgs: string[]): Promise<number>;
  sandgateDecide(apr: string, act: string, pending: string, channel: string, ...args: string[]): Promise<[string, string]>;
  sandgateExpire(apr: string, act: string, pending: string, channel: string, ...args: string[]): Promise<number>;
  sandgateConsume(apr: string, actionId: string, argsHash: string): Promise<number>;
};

const EXPIRED = { error: { code: 'approval_expired', message: 'no approver decided in time; the action did not run' } };

export function createActionStore(redis: Redis, prefix: string, ttlSeconds: number): ActionStore {
  if (!('sandgateCreateAction' in redis)) {
    redis.defineCommand('sandgateCreateAction', { lua: CREATE_ACTION });
    redis.defineCommand('sandgateDecide', { numberOfKeys: 4, lua: DECIDE });
    redis.defineCommand('sandgateExpire', { numberOfKeys: 4, lua: EXPIRE });
    redis.defineCommand('sandgateConsume', { numberOfKeys: 1, lua: CONSUME });
  }
  if (!('sandgateTransition' in redis)) redis.defineCommand('sandgateTransition', { numberOfKeys: 2, lua: TRANSITION });
  const scripted = redis as Scripted;
  const actKey = (id: string) => `${prefix}:act:${id}`;
  const aprKey = (id: string) => `${prefix}:apr:${id}`;
  const pendingKey = `${prefix}:apr-pending`;
  const agentIndex = (agentId: string) => `${prefix}:agent-acts:${agentId}`;
  const doneChannel = `${prefix}:act-done`;
  const now = () => new Date().toISOString();

  const transition = async (id: string, to: ActionStatus, from: readonly string[], fields: Record<string, string>) =>
    (await scripted.sandgateTransition(actKey(id), doneChannel, to, String(ttlSeconds), String(from.length), ...from, ...Object.entries(fields).flat())) === 1;

  const expireIfDue = async (approvalId: string) => {
    const actionId = await redis.hget(aprKey(approvalId), 'actionId');
    if (!actionId) return false;
    const args = ['', '', '', now(), '', JSON.stringify(EXPIRED)];
    return (await scripted.sandgateExpire(aprKey(approvalId), actKey(actionId), pendingKey, doneChannel, ...args)) === 1;
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

  return {
    doneChannel,

    async create(meta, approval) {
      const keys = [actKey(meta.id), agentRevokedKey(prefix, meta.agentId), agentIndex(meta.agentId)];
      const args = [meta.id, approval ? 'awaiting_approval' : 'queued', JSON.stringify(meta), String(ttlSeconds)];
      if (approval) {
        keys.push(aprKey(approval.id), pendingKey);
        args.push(approval.id, JSON.stringify(approval.data), String(approval.ttlMs), meta.agentId);
      }
      return (await scripted.sandgateCreateAction(keys.length, ...keys, ...args)) !== 0;
    },

    async get(id) {
      const h = await redis.hgetall(actKey(id));
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
          approval: { id: approval.id, status: approval.status, expiresAt: approval.expiresAt, decidedBy: approval.decidedBy, reason: approval.reason },
        }),
        egress: outcome.egress ?? [],
        usage: outcome.usage ?? { cost: 0 },
        auditId: meta.auditId ?? null,
        auditIds: [...(meta.auditId ? [meta.auditId] : []), ...(h.auditIds ? (JSON.parse(h.auditIds) as string[]) : [])],
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
      }
      return out;
    },

    async decide(approvalId, decision, deciderId, reason) {
      const actionId = await redis.hget(aprKey(approvalId), 'actionId');
      if (!actionId) return { ok: false, why: 'missing', detail: '' };
      const denied = { error: { code: 'approval_denied', message: `denied by an approver${reason ? `: ${reason}` : ''}` } };
      const [verdict, detail] = await scripted.sandgateDecide(
        aprKey(approvalId),
        actKey(actionId),
        pendingKey,
        doneChannel,
        decision,
        deciderId,
        reason ?? '',
        now(),
        JSON.stringify(denied),
        JSON.stringify(EXPIRED),
      );
      return verdict === 'ok' ? { ok: true } : { ok: false, why: verdict as Exclude<Decided, { ok: true }>['why'], detail };
    },

    expireIfDue,

    async consumeApproval(approvalId, actionId, argsHash) {
      return (await scripted.sandgateConsume(aprKey(approvalId), actionId, argsHash)) === 1;
    },

    markRunning(id) {
      return transition(id, 'running', ['queued'], { startedAt: now() });
    },

    finish(id, status, outcome) {
      if (!FINAL_ACTION_STATUSES.includes(status)) throw new Error(`finish() needs a final status, got ${status}`);
      return transition(id, status, ['queued', 'running'], { outcome: JSON.stringify(outcome), finishedAt: now() });
    },

    async cancel(id, reason) {
      const done = await transition(id, 'cancelled', ['queued', 'awaiting_approval'], { outcome: JSON.stringify({ error: reason }), finishedAt: now() });
      // Its approval, if any, is moot: off the pending list, and never usable (the runner only
      // uses an approved one). A decision racing this finds the action cancelled and gets 409.
      const approvalId = done ? await redis.hget(actKey(id), 'approvalId') : null;
      if (approvalId) await execAll(redis.multi().hset(aprKey(approvalId), 'status', 'cancelled', 'decidedAt', now()).zrem(pendingKey, approvalId));
      return done;
    },

    idsOfAgent(agentId) {
      return redis.smembers(agentIndex(agentId));
    },

    async addAuditId(id, auditId) {
      const current = await redis.hget(actKey(id), 'auditIds');
      await redis.hset(actKey(id), 'auditIds', JSON.stringify([...(current ? (JSON.parse(current) as string[]) : []), auditId]));
    },
  };
}
