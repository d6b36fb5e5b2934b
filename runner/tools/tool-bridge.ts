// `tools.call(name, args)` from code in the js profile: the same admission as POST /v1/actions
// (Cedar first, then availability, argument schema, budget, approval) for the agent that submitted
// the code, with the token scopes it had; the shape check here names no tool's schema. The call
// waits for the action's end within the run's own deadline; an irreversible tool answers at once
// with its pending approval, never bypassing it.
import { type Action, ActionRequest, type ActionStatus, FINAL_ACTION_STATUSES } from '../../contract/action.ts';
import { SandgateError } from '../../contract/errors.ts';
import type { ExecutionJob } from '../../contract/execution.ts';
import type { ActionLifecycle } from '../../guard/lifecycle/action-lifecycle.ts';
import type { ActionStore } from '../../state/actions.ts';
import type { AgentStore } from '../../state/agents.ts';
import type { RecordEvents } from '../../state/record-events.ts';
import type { ToolBridge } from '../engines/isolate/isolate-engine.ts';

export interface ToolBridgeDeps {
  toolCalls: ActionLifecycle;
  agents: AgentStore;
  actions: ActionStore;
  events: RecordEvents<ActionStatus>;
}

/** What the script gets back: the action's outcome, without the agent's own bookkeeping. */
const view = (a: Action) => ({
  id: a.id,
  tool: a.tool,
  status: a.status,
  ...(a.result !== undefined && { result: a.result }),
  ...(a.error && { error: a.error }),
  ...(a.approval && { approval: { id: a.approval.id, status: a.approval.status, expiresAt: a.approval.expiresAt } }),
  egress: a.egress,
});

export function createToolBridge(deps: ToolBridgeDeps): ToolBridge {
  return async (job: ExecutionJob, name, args, signal) => {
    const agent = await deps.agents.get(job.agentId);
    if (!agent || agent.revokedAt) throw new SandgateError('agent_revoked', 'the agent has been revoked');
    const request = ActionRequest.safeParse({
      tool: name,
      args,
      ...(job.taskId && { taskId: job.taskId }),
      reasoning: `tools.call from execution ${job.id}`,
    });
    if (!request.success)
      throw new SandgateError(
        'validation_failed',
        request.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
      );
    // A refusal reaches the script as the SandgateError itself: its `code` is the API's.
    const accepted: { id: string; status: ActionStatus } = await deps.toolCalls.admit(
      { agent, scopes: job.scopes, taskId: job.taskId },
      request.data,
    );
    if (accepted.status !== 'awaiting_approval') {
      // Subscribed first, then read: an action that ended in between is not missed.
      const waiter = deps.events.waitForFinal(accepted.id, 24 * 3600 * 1000);
      const stop = () => waiter.cancel();
      signal.addEventListener('abort', stop, { once: true });
      try {
        const now = await deps.actions.get(accepted.id);
        if (!now || !FINAL_ACTION_STATUSES.includes(now.status)) await waiter.done;
      } finally {
        waiter.cancel();
        signal.removeEventListener('abort', stop);
      }
    }
    const action = await deps.actions.get(accepted.id);
    if (!action) throw new SandgateError('not_found', `action ${accepted.id} is gone`);
    return view(action);
  };
}
