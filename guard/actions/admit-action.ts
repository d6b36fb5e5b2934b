// Admitting one tool call, the same way whether it comes from POST /v1/actions or from code in a
// sandbox (`tools.call`): Cedar must permit it first (grants, scopes, operator policies, taint;
// see policy/authorize.ts), then the tool must be available, the arguments must fit its schema and
// the budget must hold its cost; then it is queued, or, when irreversible, parked for a human.
import { randomBytes } from 'node:crypto';
import type { ActionJob, ActionRequest, ActionStatus, Approval } from '../../contract/action.ts';
import type { Agent, Scopes } from '../../contract/agent.ts';
import { SandgateError } from '../../contract/errors.ts';
import { canonicalJson, sha256Hex } from '../audit/canonical.ts';
import { admissionError } from '../budget/admission-error.ts';
import type { BudgetStore } from '../../state/budgets.ts';
import { authorizeTool } from '../policy/authorize.ts';
import type { PolicyDecisionPoint } from '../policy/decision-point.ts';
import { allowedDestinations } from '../policy/profile-grants.ts';
import type { ToolSet } from '../tools/tool-registry.ts';
import type { ActionStore } from '../../state/actions.ts';
import type { Auditor } from '../audit/auditor.ts';

export interface ActionAdmissionDeps {
  tools: ToolSet;
  policy: PolicyDecisionPoint;
  budgets: BudgetStore;
  actions: ActionStore;
  audit: Auditor;
  approvalTtlMs: number;
  /** Puts the job on the actions queue. */
  enqueue(job: ActionJob): Promise<void>;
  /** Schedules the expiry of an approval (a delayed job), so an undecided one ends `expired`. */
  scheduleExpiry(approval: Pick<Approval, 'id' | 'actionId' | 'agentId' | 'taskId'>, delayMs: number): Promise<void>;
  /** Tells humans an approval waits (the webhook); never blocks the admission. */
  announce(approval: Approval): void;
}

export interface ActionCaller {
  agent: Agent;
  scopes: Scopes | undefined;
  /** Already checked to belong to the agent. */
  taskId: string | null;
}

export const argsHash = (args: Record<string, unknown>): string => sha256Hex(canonicalJson(args));

/** Admits one tool call; a refusal is audited (best effort) with its reason, then thrown. */
export async function admitAction(deps: ActionAdmissionDeps, caller: ActionCaller, request: ActionRequest): Promise<{ id: string; status: ActionStatus }> {
  try {
    return await admit(deps, caller, request);
  } catch (e) {
    if (e instanceof SandgateError && e.code !== 'audit_unavailable') {
      const ctx = { agentId: caller.agent.id, principalId: caller.agent.id, taskId: caller.taskId };
      const data = { tool: request.tool, args: request.args, reasoning: request.reasoning ?? null, refused: { code: e.code, message: e.message } };
      await deps.audit.record('action.refused', ctx, data).catch(() => {});
    }
    throw e;
  }
}

async function admit(deps: ActionAdmissionDeps, caller: ActionCaller, request: ActionRequest): Promise<{ id: string; status: ActionStatus }> {
  const { agent, taskId } = caller;
  // Arguments the agent calls untrusted taint its task whatever comes of the call, so the task's
  // state says nothing about the tool either.
  if (request.untrusted && taskId) await deps.budgets.taint(taskId, `arguments of a ${request.tool} call marked untrusted`);
  const task = taskId ? await deps.budgets.getTask(taskId) : undefined;
  const tainted = request.untrusted || (task?.tainted ?? false);
  // Authorize first: nothing below (configured? arguments?) is told to an agent refused here.
  const { found: tool, decision } = authorizeTool(deps.policy, caller, request.tool, deps.tools.get(request.tool), {
    taskTainted: tainted,
    untrustedArgs: request.untrusted,
  });
  if (!tool.available) throw new SandgateError('tool_unavailable', `tool "${request.tool}" is not configured on this service (its endpoint or credentials are missing)`);
  const problems = tool.checkArgs(request.args);
  if (problems.length) throw new SandgateError('validation_failed', `tool "${request.tool}": ${problems.join('; ')}`);

  const id = `act_${randomBytes(15).toString('base64url')}`;
  const cost = tool.definition.cost;
  const admission = await deps.budgets.admit({ id, kind: 'tool', agentId: agent.id, limits: agent.limits, taskId, worstCase: cost });
  if (!admission.ok) throw admissionError(admission, taskId, cost, `${agent.limits.toolCallsPerMinute} tool calls`);
  const refund = () => deps.budgets.settle({ id, agentId: agent.id, taskId, cost: 0, refund: true }).catch(() => {});

  const hash = argsHash(request.args);
  const destinations = allowedDestinations(agent, caller.scopes);
  const now = new Date().toISOString();
  const meta = { id, tool: tool.definition.name, agentId: agent.id, taskId, args: request.args, reasoning: request.reasoning ?? null, createdAt: now, destinations };
  // Irreversible tools always wait for a human; taint is shown to the approver and to Cedar.
  const approval = tool.definition.irreversible
    ? {
        id: `apr_${randomBytes(15).toString('base64url')}`,
        ttlMs: deps.approvalTtlMs,
        data: {
          tool: meta.tool,
          args: request.args,
          argsHash: hash,
          reasoning: meta.reasoning,
          taskId,
          tainted,
          taintSources: [...(task?.taintSources ?? []), ...(request.untrusted && !taskId ? ['arguments marked untrusted'] : [])],
          requestedAt: now,
        },
      }
    : undefined;
  // Audit before effect: nothing is queued or parked unless this record is on disk.
  let auditId: string;
  try {
    auditId = await deps.audit.record(
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
  } catch (e) {
    await refund();
    throw e;
  }
  if (!(await deps.actions.create({ ...meta, auditId }, approval))) {
    await refund();
    throw new SandgateError('agent_revoked', 'this agent has been revoked');
  }
  if (approval) {
    await deps.scheduleExpiry({ id: approval.id, actionId: id, agentId: agent.id, taskId }, approval.ttlMs);
    const pending = await deps.actions.getApproval(approval.id);
    if (pending) deps.announce(pending);
    return { id, status: 'awaiting_approval' };
  }
  try {
    await deps.enqueue({ id, agentId: agent.id, taskId, tool: meta.tool, args: request.args, argsHash: hash, approvalId: null, destinations });
  } catch (e) {
    await refund();
    await deps.actions.finish(id, 'failed', { error: { code: 'dependency_unavailable', message: 'the action could not be queued' } }).catch(() => {});
    throw e;
  }
  return { id, status: 'queued' };
}
