// The actions runner: a BullMQ Worker on the actions queue. A tool call runs at most once: the
// record moves queued → running exactly once, an irreversible call first uses its approval
// (single-use, bound to this action and these exact arguments), and a job whose runner died is
// failed, never retried. Delayed "expire" jobs end approvals nobody decided on.
import { type Job, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { ActionJob } from '../../contract/action.ts';
import type { Config } from '../../contract/config.ts';
import { ACTIONS_QUEUE } from '../../contract/queues.ts';
import type { ActionStore } from '../../state/actions.ts';
import { argsHash } from '../../guard/actions/admit-action.ts';
import type { BudgetStore } from '../../state/budgets.ts';
import type { AgentStore } from '../../state/agents.ts';
import type { ToolSet } from '../../guard/tools/tool-registry.ts';
import { type Auditor, capped } from '../../guard/audit/auditor.ts';
import type { Lookup } from './egress/safe-fetch.ts';
import type { HandlerResult } from './handlers/handler.ts';
import { runHttpCall } from './handlers/http-call.ts';
import { type HttpFetchArgs, runHttpFetch } from './handlers/http-fetch.ts';

export interface ActionWorkerDeps {
  config: Config;
  connection: Redis;
  actions: ActionStore;
  budgets: BudgetStore;
  agents: AgentStore;
  tools: ToolSet;
  audit: Auditor;
  /** Where handlers read the operator's credentials. */
  env: Record<string, string | undefined>;
  logger: Logger;
  /** Tests play hostile DNS through this. */
  lookup?: Lookup;
}

export const EXPIRE_JOB = 'expire';

const fail = (code: string, message: string): HandlerResult => ({ ok: false, error: { code, message }, egress: [] });

export async function buildActionWorker(deps: ActionWorkerDeps): Promise<{ close(): Promise<void> }> {
  const { actions, budgets, logger } = deps;

  const refundIfEnded = async (actionId: string) => {
    const action = await actions.get(actionId);
    if (action && ['expired', 'denied', 'cancelled'].includes(action.status)) {
      await budgets.settle({ id: action.id, agentId: action.agentId, taskId: action.taskId, cost: 0, refund: true });
    }
  };

  const call = async (job: ActionJob): Promise<HandlerResult> => {
    const tool = deps.tools.get(job.tool);
    if (!tool) return fail('unknown_tool', `this runner has no tool "${job.tool}"`);
    if (tool.definition.irreversible) {
      // Re-derived from the arguments actually about to be sent, not trusted from the job.
      const hash = argsHash(job.args);
      if (hash !== job.argsHash || !job.approvalId || !(await actions.consumeApproval(job.approvalId, job.id, hash))) {
        return fail('approval_invalid', 'no unused approval for this action and these exact arguments; nothing was sent');
      }
    }
    const agent = await deps.agents.get(job.agentId);
    if (!agent || agent.revokedAt) return fail('agent_revoked', 'the agent was revoked before the call ran; nothing was sent');
    if (tool.definition.handler.type === 'http_fetch') return runHttpFetch(tool.definition, job.args as unknown as HttpFetchArgs, job.destinations, deps.lookup);
    return runHttpCall(tool, job.id, job.args, deps.env);
  };

  const process = async (job: Job): Promise<void> => {
    if (job.name === EXPIRE_JOB) {
      const { approvalId, actionId } = job.data as { approvalId: string; actionId: string };
      const expired = await actions.expireIfDue(approvalId);
      await refundIfEnded(actionId);
      const action = expired ? await actions.get(actionId) : undefined;
      if (action) {
        const ctx = { agentId: action.agentId, taskId: action.taskId, subject: actionId };
        const auditId = await deps.audit.record('approval.expired', ctx, { approvalId, tool: action.tool, outcome: 'the action did not run' });
        await actions.addAuditId(actionId, auditId);
      }
      return;
    }
    const parsed = ActionJob.safeParse(job.data);
    if (!parsed.success) {
      logger.error({ jobId: job.id }, 'malformed action job');
      return;
    }
    const data = parsed.data;
    if (!(await actions.markRunning(data.id))) {
      // Cancelled before it started (revocation): refund; or started before by a runner that died.
      await refundIfEnded(data.id);
      return;
    }
    const ctx = { agentId: data.agentId, taskId: data.taskId, subject: data.id };
    const cost = deps.tools.get(data.tool)?.definition.cost ?? 0;
    // Audit before effect: the call is not made unless this record is on disk.
    try {
      await actions.addAuditId(data.id, await deps.audit.record('action.started', ctx, { tool: data.tool, argsHash: data.argsHash, approvalId: data.approvalId }));
    } catch (e) {
      await actions.finish(data.id, 'failed', { error: { code: 'audit_unavailable', message: (e as Error).message }, usage: { cost: 0 } });
      await budgets.settle({ id: data.id, agentId: data.agentId, taskId: data.taskId, cost: 0, refund: true });
      return;
    }
    let outcome: HandlerResult;
    try {
      outcome = await call(data);
    } catch (e) {
      logger.error({ err: e, id: data.id }, 'tool handler fault');
      outcome = fail('tool_fault', 'the tool handler failed; see the runner log');
    }
    const resultText = outcome.result === undefined ? '' : JSON.stringify(outcome.result);
    await deps.audit
      .record('action.finished', ctx, {
        tool: data.tool,
        status: outcome.ok ? 'succeeded' : 'failed',
        result: capped(resultText),
        error: outcome.error ?? null,
        egress: outcome.egress,
        cost,
        untrustedSource: outcome.untrustedSource ?? null,
      })
      .then((auditId) => actions.addAuditId(data.id, auditId))
      .catch((e: Error) => logger.error({ err: e.message, id: data.id }, 'the end of an action could not be audited'));
    await actions.finish(data.id, outcome.ok ? 'succeeded' : 'failed', {
      ...(outcome.result !== undefined && { result: outcome.result }),
      ...(outcome.error && { error: outcome.error }),
      egress: outcome.egress,
      usage: { cost },
    });
    await budgets.settle({ id: data.id, agentId: data.agentId, taskId: data.taskId, cost });
    if (outcome.untrustedSource && data.taskId) await budgets.taint(data.taskId, outcome.untrustedSource);
  };

  const worker = new Worker(ACTIONS_QUEUE, process, {
    connection: deps.connection,
    prefix: deps.config.SANDGATE_PREFIX,
    concurrency: deps.config.SANDGATE_ACTIONS_CONCURRENCY,
    maxStalledCount: 0, // a call must never be made twice
    lockDuration: deps.config.SANDGATE_LOCK_MS,
    stalledInterval: deps.config.SANDGATE_STALLED_CHECK_MS,
  });
  worker.on('failed', (job, err) => {
    if (!job || job.name === EXPIRE_JOB) return;
    logger.warn({ id: job.id, reason: err.message }, 'action job failed in the queue');
    actions
      .finish(String(job.id), 'failed', { error: { code: 'runner_lost', message: 'the runner stopped during the call; it is not retried' } })
      .catch(() => {});
  });
  worker.on('error', () => {}); // Redis outages surface through readiness and failing requests
  await worker.waitUntilReady();
  return { close: () => worker.close() };
}
