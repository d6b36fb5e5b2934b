// The life of a tool call, in one place. POST /v1/actions, `tools.call` from sandboxed code, the
// approvals route and the actions worker call these steps; they re-implement none of them.
//
// `admit`, in this order (refuse before you reveal; audit before effect):
//   1. taint      arguments marked untrusted taint the task, whatever comes of the call
//   2. authorize  Cedar on the tool before anything about it is checked (403)
//   3. inputs     the tool is configured (503), the arguments fit its schema (400)
//   4. checks     admission hooks (a paused task or suspended agent refuses here)
//   5. reserve    rate limit, task caps, its cost against task and day (429/402)
//   6. audit      "action.requested" is durable, or 503 and nothing happens
//   7. record     created only while the agent is not revoked; an irreversible tool's record
//                 waits for a human with its pending approval (expiry scheduled, humans told)
//   8. enqueue    otherwise, onto the actions queue
// A failure after step 5 is undone in one place (undo.ts). Every refusal is audited.
//
// When a tool call is approved (`decide`, approve): the decision moves approval and action
// together (decided once, by a human who did not ask for it) → "approval.decided" is durable
// (else the action fails, nothing is sent, refunded) → the job is queued. A deny or an expiry
// refunds it. Then the worker: `start` (queued → running once; an irreversible call uses its
// approval once, for exactly these arguments; "action.started" durable) → the handler runs →
// `finish` (audit "action.finished", record, settle, taint from an untrusted result).
import type { Logger } from 'pino';
import type { ActionJob, ActionRequest, ActionStatus, Approval, EgressDecision } from '../../contract/action.ts';
import type { Agent, Scopes } from '../../contract/agent.ts';
import { type ResultError, resultError, SandgateError } from '../../contract/errors.ts';
import type { ActionStore } from '../../state/actions.ts';
import type { AgentStore } from '../../state/agents.ts';
import type { BudgetStore } from '../../state/budgets.ts';
import { type Auditor, capped } from '../audit/auditor.ts';
import { canonicalJson, sha256Hex } from '../audit/canonical.ts';
import { authorizeTool } from '../policy/authorize.ts';
import type { PolicyDecisionPoint } from '../policy/decision-point.ts';
import { allowedDestinations } from '../policy/profile-grants.ts';
import type { ToolSet } from '../tools/tool-registry.ts';
import type { Hooks } from './hooks.ts';
import { newId } from './ids.ts';
import { keepTryingWith, landing, withUndo } from './undo.ts';
import { createWorkBudget, type WorkRef } from './work-budget.ts';

export const argsHash = (args: Record<string, unknown>): string => sha256Hex(canonicalJson(args));

export interface ActionLifecycleDeps {
  tools: ToolSet;
  policy: PolicyDecisionPoint;
  budgets: BudgetStore;
  actions: ActionStore;
  agents: AgentStore;
  audit: Auditor;
  hooks: Hooks;
  logger: Logger;
  approvalTtlMs: number;
  /** Puts the job on the actions queue. */
  enqueue(job: ActionJob): Promise<void>;
  /** Schedules the expiry of an approval (a delayed job), so an undecided one ends `expired`. */
  scheduleExpiry(approval: Pick<Approval, 'id' | 'actionId'>, delayMs: number): Promise<void>;
  /** Tells humans an approval waits (the webhook); never blocks the admission. */
  announce(approval: Approval): void;
  /** Stop, not spiral (the executions lifecycle): a spent task stops its queued work. */
  stopTask(agentId: string, taskId: string, cap: string): Promise<void>;
  /** Aborted at shutdown: an undo step still retrying through an outage stops. */
  stopRetrying?: AbortSignal;
  /** How long such a step keeps trying (default 5 minutes). */
  undoHoldMs?: number;
}

export interface ActionCaller {
  agent: Agent;
  scopes: Scopes | undefined;
  /** Already checked to belong to the agent. */
  taskId: string | null;
}

/** What a tool handler returns: the call's outcome as data, never an exception. */
export interface ToolOutcome {
  ok: boolean;
  result?: unknown;
  error?: { code: string; message: string };
  egress: EgressDecision[];
  /** The result came from outside and is untrusted: the task that receives it becomes tainted. */
  untrustedSource?: string;
}

export type Started = { go: true } | { go: false; ended?: ToolOutcome; held?: true };

export interface ActionLifecycle {
  admit(caller: ActionCaller, request: ActionRequest): Promise<{ id: string; status: ActionStatus }>;
  /** A human's decision on a pending approval; throws 404/403/409 as the API answers them. */
  decide(
    approvalId: string,
    decision: 'approve' | 'deny',
    by: { id: string },
    reason: string | null,
  ): Promise<Approval>;
  /** The expiry timer: an undecided approval ends, its action `expired` and refunded. */
  expire(approvalId: string, actionId: string): Promise<void>;
  /** Cancels an action not yet made (queued or awaiting approval), refunded; false when too late. */
  cancel(id: string, reason: { code: string; message: string }): Promise<boolean>;
  cancelAllOf(agentId: string, reason: { code: string; message: string }): Promise<number>;
  /** The worker's first step: whether the call may be made now. */
  start(job: ActionJob): Promise<Started>;
  finish(job: ActionJob, outcome: ToolOutcome): Promise<void>;
  /** The queue gave up on the job (its runner died); it is not retried. */
  lost(id: string): Promise<void>;
}

const fail = (error: ResultError): ToolOutcome => ({ ok: false, error, egress: [] });

/** The hosts a call names in a `url` argument (http_fetch): what it reaches beyond its tool. */
function hostsIn(args: Record<string, unknown>): string[] {
  if (typeof args.url !== 'string') return [];
  try {
    return [new URL(args.url).hostname.toLowerCase()];
  } catch {
    return [];
  }
}

export function createActionLifecycle(deps: ActionLifecycleDeps): ActionLifecycle {
  const { actions, audit, hooks } = deps;
  const budget = createWorkBudget({ budgets: deps.budgets, hooks, stopTask: deps.stopTask });
  const ref = (a: { id: string; agentId: string; taskId: string | null }): WorkRef => ({
    id: a.id,
    kind: 'tool',
    agentId: a.agentId,
    taskId: a.taskId,
  });
  const costOf = (tool: string) => deps.tools.get(tool)?.definition.cost ?? 0;
  const keepTrying = keepTryingWith({
    logger: deps.logger,
    untilMs: deps.undoHoldMs ?? 5 * 60_000,
    stop: deps.stopRetrying,
  });

  /** An undo step giving back a reservation; retried through an outage until it lands. */
  const giveBack = (work: WorkRef) =>
    landing(() => budget.settle(work, { refund: true }), keepTrying('giving back a reservation', work.id));
  /** Gives back an action's reservation, read from its record (the read retried with it). */
  const refund = (actionId: string) =>
    landing(
      async () => {
        const action = await actions.get(actionId);
        if (action) await budget.settle(ref(action), { refund: true });
      },
      keepTrying('giving back a reservation', actionId),
    )();

  /** Refunds an action that ended without running (denied, expired, cancelled). */
  const refundIfEnded = async (actionId: string) => {
    const action = await actions.get(actionId);
    if (action && ['expired', 'denied', 'cancelled'].includes(action.status))
      await budget.settle(ref(action), { refund: true });
  };

  /**
   * What follows a human's decision, once it is made: its audit record, then the approved action's
   * job or the denied one's refund. Whatever fails here, an approved action must not stay queued
   * with no job (the human, answered 503, finds it decided and cannot decide again): it ends failed
   * and its reservation is given back, retried through an outage until they land.
   */
  async function afterDecision(
    approvalId: string,
    actionId: string,
    decision: 'approve' | 'deny',
    by: { id: string },
    reason: string | null,
  ): Promise<Approval> {
    // Refunded only once it is failed here (a runner that took its job first runs and settles it).
    const undo = (error: ResultError) =>
      decision === 'deny'
        ? refund(actionId)
        : landing(
            async () => {
              if (await actions.finish(actionId, 'failed', { error })) await refund(actionId);
            },
            keepTrying('ending an approved action that could not be queued', actionId),
          )();
    const unqueued = resultError('dependency_unavailable', 'approved, but the action could not be queued');
    const [approval, action] = await Promise.all([actions.getApproval(approvalId), actions.get(actionId)]).catch(
      async (e: unknown) => {
        await undo(unqueued);
        throw e;
      },
    );
    if (!approval || !action) {
      await undo(unqueued);
      throw new SandgateError('dependency_unavailable', 'the decision was made but its action could not be read');
    }
    const ctx = { agentId: action.agentId, principalId: by.id, taskId: action.taskId, subject: action.id };
    try {
      const auditId = await audit.record('approval.decided', ctx, {
        approvalId,
        tool: action.tool,
        argsHash: approval.argsHash,
        decision,
        by: by.id,
        reason,
      });
      await actions.addAuditId(action.id, auditId);
    } catch (e) {
      // Audit before effect: an approval that cannot be recorded sends nothing.
      await undo(resultError('audit_unavailable', 'the approval could not be recorded; nothing was sent'));
      throw e;
    }
    hooks.emit({
      type: 'decided',
      id: action.id,
      agentId: action.agentId,
      taskId: action.taskId,
      target: action.tool,
      decision,
      by: by.id,
    });
    if (decision === 'deny') {
      await refund(action.id);
      return approval;
    }
    const job: ActionJob = {
      id: action.id,
      agentId: action.agentId,
      taskId: action.taskId,
      tool: action.tool,
      args: approval.args,
      argsHash: approval.argsHash,
      approvalId,
      destinations: action.destinations,
    };
    try {
      await deps.enqueue(job);
    } catch (e) {
      await undo(unqueued);
      throw e;
    }
    return approval;
  }

  /**
   * A decision whose answer was lost: if it landed as this principal's, what follows it is done
   * now (an approved action only while it is still queued: if its job failed it was ended failed).
   * Throws while Redis is down, so its caller keeps trying.
   */
  async function finishLostDecision(
    approvalId: string,
    decision: 'approve' | 'deny',
    by: { id: string },
    reason: string | null,
  ): Promise<void> {
    const approval = await actions.getApproval(approvalId);
    const landed = decision === 'approve' ? 'approved' : 'denied';
    if (!approval || approval.status !== landed || approval.decidedBy !== by.id) return; // not this one's
    if (decision === 'approve' && (await actions.get(approval.actionId))?.status !== 'queued') return;
    await afterDecision(approvalId, approval.actionId, decision, by, reason);
  }

  async function admit(caller: ActionCaller, request: ActionRequest): Promise<{ id: string; status: ActionStatus }> {
    const { agent, taskId } = caller;
    // 1. taint: the task's state then says nothing about the tool either.
    if (request.untrusted && taskId)
      await deps.budgets.taint(taskId, `arguments of a ${request.tool} call marked untrusted`);
    const task = taskId ? await deps.budgets.getTask(taskId) : undefined;
    const tainted = request.untrusted || (task?.tainted ?? false);
    // 2. authorize: nothing below (configured? arguments?) is told to an agent refused here.
    const { found: tool, decision } = authorizeTool(deps.policy, caller, request.tool, deps.tools.get(request.tool), {
      taskTainted: tainted,
      untrustedArgs: request.untrusted,
    });
    // 3. inputs.
    if (!tool.available)
      throw new SandgateError(
        'tool_unavailable',
        `tool "${request.tool}" is not configured on this service (its endpoint or credentials are missing)`,
      );
    const problems = tool.checkArgs(request.args);
    if (problems.length) throw new SandgateError('validation_failed', `tool "${request.tool}": ${problems.join('; ')}`);

    const id = newId('act', agent.id);
    const cost = tool.definition.cost;
    const hash = argsHash(request.args);
    const destinations = allowedDestinations(agent, caller.scopes);
    const irreversible = tool.definition.irreversible;
    const attempt = {
      kind: 'tool' as const,
      id,
      agent,
      taskId,
      target: tool.definition.name,
      inputHash: sha256Hex(`${tool.definition.name}\u0000${hash}`),
      irreversible,
      tainted,
      reaches: hostsIn(request.args),
      taskScope: task?.scope ?? null,
      worstCase: cost,
    };
    // 4. checks.
    await hooks.runChecks(attempt);

    return withUndo(async (undo) => {
      // 5. reserve.
      const work = ref({ id, agentId: agent.id, taskId });
      await budget.reserve(work, agent, cost);
      undo.push(giveBack(work));

      const now = new Date().toISOString();
      const meta = {
        id,
        tool: tool.definition.name,
        agentId: agent.id,
        taskId,
        args: request.args,
        reasoning: request.reasoning ?? null,
        createdAt: now,
        destinations,
      };
      // Irreversible tools always wait for a human; taint is shown to the approver and to Cedar.
      const approval = irreversible
        ? {
            id: newId('apr', agent.id),
            ttlMs: deps.approvalTtlMs,
            data: {
              tool: meta.tool,
              args: request.args,
              argsHash: hash,
              reasoning: meta.reasoning,
              taskId,
              tainted,
              taintSources: [
                ...(task?.taintSources ?? []),
                ...(request.untrusted && !taskId ? ['arguments marked untrusted'] : []),
              ],
              requestedAt: now,
            },
          }
        : undefined;

      // 6. audit before effect: nothing is queued or parked unless this record is on disk.
      const auditId = await audit.record(
        'action.requested',
        { agentId: agent.id, principalId: agent.id, taskId, subject: id },
        {
          tool: meta.tool,
          args: request.args,
          argsHash: hash,
          reasoning: meta.reasoning,
          untrusted: request.untrusted,
          tainted,
          decision: { allowed: true, policies: decision.policies },
          budget: { reserved: cost },
          approval: approval ? { id: approval.id, expiresInMs: approval.ttlMs, required: 'irreversible tool' } : null,
          destinations,
        },
      );

      // 7. record. Taken back if anything below fails, so a request answered as failed leaves
      // nothing queued and no approval a human could still grant (a retry would then do it twice).
      const reason = resultError('dependency_unavailable', 'the action could not be queued');
      const takeBack = () => (approval ? actions.cancel(id, reason) : actions.finish(id, 'failed', { error: reason }));
      const created = await actions.create({ ...meta, auditId }, approval).catch((e: unknown) => {
        // Unanswered is not refused: Redis may have made it before the connection dropped. The
        // error answers now; the take-back waits for Redis in the background.
        undo.push(() => void keepTrying('taking back an action whose creation went unanswered', id)(takeBack));
        throw e;
      });
      if (!created) throw new SandgateError('agent_revoked', 'this agent has been revoked');
      undo.push(landing(takeBack, keepTrying('taking back an action whose admission failed', id)));
      if (approval) {
        await deps.scheduleExpiry({ id: approval.id, actionId: id }, approval.ttlMs);
        const pending = await actions.getApproval(approval.id);
        if (pending) deps.announce(pending);
        hooks.emit({ type: 'admitted', attempt, auditId, status: 'awaiting_approval' });
        return { id, status: 'awaiting_approval' as const };
      }
      // 8. enqueue.
      await deps.enqueue({
        id,
        agentId: agent.id,
        taskId,
        tool: meta.tool,
        args: request.args,
        argsHash: hash,
        approvalId: null,
        destinations,
      });
      hooks.emit({ type: 'admitted', attempt, auditId, status: 'queued' });
      return { id, status: 'queued' as const };
    });
  }

  return {
    async admit(caller, request) {
      try {
        return await admit(caller, request);
      } catch (e) {
        if (e instanceof SandgateError && e.code !== 'audit_unavailable') {
          const ctx = { agentId: caller.agent.id, principalId: caller.agent.id, taskId: caller.taskId };
          const data = {
            tool: request.tool,
            args: request.args,
            reasoning: request.reasoning ?? null,
            refused: { code: e.code, message: e.message },
          };
          const auditId = await audit.record('action.refused', ctx, data).catch(() => undefined);
          hooks.emit({
            type: 'refused',
            kind: 'tool',
            agentId: caller.agent.id,
            taskId: caller.taskId,
            target: request.tool,
            code: e.code,
            auditId,
          });
        }
        throw e;
      }
    },

    async decide(approvalId, decision, by, reason) {
      const decided = await actions.decide(approvalId, decision, by.id, reason).catch((e: unknown) => {
        // Unanswered is not refused: the decision may have landed with its answer lost. What
        // follows it is then done once Redis answers, so an approved action is not left queued
        // with no job, where a second decision (decided once: 409) could never reach it.
        void keepTrying(
          'finishing a decision whose answer was lost',
          approvalId,
        )(() => finishLostDecision(approvalId, decision, by, reason));
        throw e;
      });
      if (!decided.ok) {
        if (decided.why === 'missing') throw new SandgateError('not_found', `no approval ${approvalId}`);
        if (decided.why === 'self')
          throw new SandgateError('self_approval', 'the principal that asked for an action cannot decide on it');
        if (decided.why === 'expired')
          throw new SandgateError(
            'invalid_state',
            `approval ${approvalId} expired before it was decided; its action did not run`,
          );
        if (decided.why === 'decided')
          throw new SandgateError(
            'invalid_state',
            `approval ${approvalId} is already ${decided.detail}; an approval is decided once`,
          );
        throw new SandgateError('invalid_state', `the action of approval ${approvalId} is ${decided.detail}`);
      }
      return afterDecision(approvalId, decided.actionId, decision, by, reason);
    },

    async expire(approvalId, actionId) {
      await actions.expireIfDue(approvalId);
      await refundIfEnded(actionId);
      // Expired now, or already: a read of the pending approvals ends those past their time too,
      // without this record or the refund. The log says so either way (a retry after a failure
      // below may say it twice; never not at all).
      const action = await actions.get(actionId);
      if (action?.status !== 'expired') return;
      const ctx = { agentId: action.agentId, taskId: action.taskId, subject: actionId };
      const auditId = await audit.record('approval.expired', ctx, {
        approvalId,
        tool: action.tool,
        outcome: 'the action did not run',
      });
      await actions.addAuditId(actionId, auditId);
      hooks.emit({
        type: 'decided',
        id: actionId,
        agentId: action.agentId,
        taskId: action.taskId,
        target: action.tool,
        decision: 'expire',
        by: null,
      });
    },

    async cancel(id, reason) {
      const action = await actions.get(id);
      if (!action || !(await actions.cancel(id, reason))) return false;
      // Cancelled is final: a second DELETE finds nothing to do, so the refund must land now or later.
      await giveBack(ref(action))();
      return true;
    },

    async cancelAllOf(agentId, reason) {
      let cancelled = 0;
      for (const id of await actions.idsOfAgent(agentId)) if (await this.cancel(id, reason)) cancelled++;
      return cancelled;
    },

    async start(job) {
      const started = await actions.markRunning(job.id, job);
      if (started === 'held') return { go: false, held: true };
      if (started !== 'started') {
        // Cancelled before it started (revocation): refunded; or started before by a runner that died.
        await refundIfEnded(job.id);
        return { go: false };
      }
      const ctx = { agentId: job.agentId, taskId: job.taskId, subject: job.id };
      // Audit before effect: the call is not made unless this record is on disk.
      try {
        await actions.addAuditId(
          job.id,
          await audit.record('action.started', ctx, {
            tool: job.tool,
            argsHash: job.argsHash,
            approvalId: job.approvalId,
          }),
        );
      } catch (e) {
        await actions.finish(job.id, 'failed', {
          error: resultError('audit_unavailable', (e as Error).message),
          usage: { cost: 0 },
        });
        await budget.settle(ref(job), { refund: true });
        return { go: false };
      }
      hooks.emit({
        type: 'started',
        kind: 'tool',
        id: job.id,
        agentId: job.agentId,
        taskId: job.taskId,
        target: job.tool,
      });
      const tool = deps.tools.get(job.tool);
      if (!tool) return { go: false, ended: fail(resultError('unknown_tool', job.tool)) };
      if (tool.definition.irreversible) {
        // Re-derived from the arguments actually about to be sent, not trusted from the job.
        const hash = argsHash(job.args);
        if (
          hash !== job.argsHash ||
          !job.approvalId ||
          !(await actions.consumeApproval(job.approvalId, job.id, hash))
        ) {
          return { go: false, ended: fail(resultError('approval_invalid')) };
        }
      }
      const agent = await deps.agents.get(job.agentId);
      if (!agent || agent.revokedAt) return { go: false, ended: fail(resultError('agent_revoked')) };
      return { go: true };
    },

    async finish(job, outcome) {
      const ctx = { agentId: job.agentId, taskId: job.taskId, subject: job.id };
      const cost = costOf(job.tool);
      const status = outcome.ok ? 'succeeded' : 'failed';
      const resultText = outcome.result === undefined ? '' : JSON.stringify(outcome.result);
      const auditId = await audit
        .record('action.finished', ctx, {
          tool: job.tool,
          status,
          result: capped(resultText),
          error: outcome.error ?? null,
          egress: outcome.egress,
          cost,
          untrustedSource: outcome.untrustedSource ?? null,
        })
        .then(async (auditId) => {
          await actions.addAuditId(job.id, auditId);
          return auditId;
        })
        .catch((e: Error) => {
          deps.logger.error({ err: e.message, id: job.id }, 'the end of an action could not be audited');
          return undefined;
        });
      // Untrusted data taints the task before anyone can see it: the agent's next step, taken on
      // the result, is already judged as a tainted task's.
      if (outcome.untrustedSource && job.taskId) await deps.budgets.taint(job.taskId, outcome.untrustedSource);
      await actions.finish(job.id, status, {
        ...(outcome.result !== undefined && { result: outcome.result }),
        ...(outcome.error && { error: outcome.error }),
        egress: outcome.egress,
        usage: { cost },
      });
      await budget.settle(ref(job), { cost });
      hooks.emit({
        type: 'finished',
        kind: 'tool',
        id: job.id,
        agentId: job.agentId,
        taskId: job.taskId,
        target: job.tool,
        status,
        resultHash: sha256Hex(`${status}\u0000${resultText}\u0000${outcome.error?.code ?? ''}`),
        usage: { cost },
        auditId,
        egress: outcome.egress.map((d) => ({ host: d.host, allowed: d.allowed })),
      });
    },

    async lost(id) {
      // Read first: whether it had started decides what it is charged (a call that started may
      // have been made), and its end goes into the log with its owner (its runner's chain has
      // its start, never its end).
      const action = await actions.get(id);
      const error = resultError('runner_lost', 'call');
      const started = action?.status === 'running';
      const cost = started ? costOf(action.tool) : 0;
      if (!(await actions.finish(id, 'failed', { error, usage: { cost } })) || !action) return;
      // Settled as soon as the record is final; the log then says what it was charged.
      await budget.settle(ref(action), started ? { cost } : { refund: true });
      const ctx = { agentId: action.agentId, taskId: action.taskId, subject: id };
      await audit
        .record('action.finished', ctx, {
          tool: action.tool,
          status: 'failed',
          result: capped(''),
          error,
          egress: [],
          cost,
          untrustedSource: null,
        })
        .then((auditId) => actions.addAuditId(id, auditId))
        .catch((e: Error) =>
          deps.logger.error({ err: e.message, id }, 'the end of a lost action could not be audited'),
        );
    },
  };
}
