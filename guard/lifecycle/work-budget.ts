// The budget steps every kind of work shares: reserve the worst case at admission, then settle
// exactly once, in one of three ways. This is the one place work is refunded:
//   - `refund`: it never ran (cancelled while queued, refused after its reservation, an engine
//     that could not start it, an approval denied or expired): reservation and count go back;
//   - `cost`: it ran and used this much (measured, capped at the reservation);
//   - `worstCase`: it may have run and nobody can say how much it used (its runner died).
// Stop, not spiral: a settlement that exhausts the task stops the task's queued work.
import type { Agent } from '../../contract/agent.ts';
import type { BudgetStore } from '../../state/budgets.ts';
import { admissionError } from '../budget/admission-error.ts';
import type { Hooks } from './hooks.ts';

export interface WorkRef {
  id: string;
  kind: 'run' | 'tool';
  agentId: string;
  taskId: string | null;
}

export type Settlement = { refund: true } | { cost: number } | { worstCase: true };

/** Settles at the full reservation: the script caps any cost at what was reserved. */
const FULL_RESERVATION = 1e6;

export interface WorkBudget {
  /** Rate limit, task caps and the worst case against task and day, atomically; throws 429/402/404. */
  reserve(work: WorkRef, agent: Agent, worstCase: number): Promise<void>;
  settle(work: WorkRef, how: Settlement): Promise<void>;
}

export interface WorkBudgetDeps {
  budgets: BudgetStore;
  hooks: Hooks;
  /** Stops what is queued for a task whose budget is spent (the executions lifecycle). */
  stopTask(agentId: string, taskId: string, cap: string): Promise<void>;
}

export function createWorkBudget(deps: WorkBudgetDeps): WorkBudget {
  return {
    async reserve(work, agent, worstCase) {
      const admission = await deps.budgets.admit({
        id: work.id,
        kind: work.kind,
        agentId: agent.id,
        limits: agent.limits,
        taskId: work.taskId,
        worstCase,
      });
      if (admission.ok) return;
      const perMinute =
        work.kind === 'run' ? `${agent.limits.runsPerMinute} runs` : `${agent.limits.toolCallsPerMinute} tool calls`;
      throw admissionError(admission, work.taskId, worstCase, perMinute);
    },

    async settle(work, how) {
      const refund = 'refund' in how;
      const cost = 'cost' in how ? how.cost : 'worstCase' in how ? FULL_RESERVATION : 0;
      const settled = await deps.budgets.settle({
        id: work.id,
        agentId: work.agentId,
        taskId: work.taskId,
        cost,
        refund,
      });
      if (!settled.settled) return; // settled before: settling is idempotent
      deps.hooks.emit({
        type: 'settled',
        kind: work.kind,
        id: work.id,
        agentId: work.agentId,
        taskId: work.taskId,
        cost: settled.cost,
        refund,
      });
      const { exhausted } = settled;
      if (exhausted && work.taskId) await deps.stopTask(work.agentId, work.taskId, exhausted);
    },
  };
}
