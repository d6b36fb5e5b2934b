// What a caller may name. A task-bound token implies its task and refuses any other (403). An
// agent sees only its own tasks, executions and actions: anything else is "not found" (404), the
// same answer as for an id that never existed, so ids of others leak nothing.
import { SandgateError } from '../../contract/errors.ts';
import type { Principal } from '../../contract/principal.ts';
import type { Task } from '../../contract/task.ts';
import type { BudgetStore } from '../../state/budgets.ts';

export function taskIdFor(principal: Principal, asked: string | undefined): string | null {
  if (principal.role !== 'agent' || !principal.taskId) return asked ?? null;
  if (asked && asked !== principal.taskId)
    throw new SandgateError('forbidden', `this token is bound to task ${principal.taskId}`);
  return principal.taskId;
}

export async function taskFor(budgets: BudgetStore, principal: Principal, id: string): Promise<Task> {
  return ownedOrNotFound(principal, await budgets.getTask(id), 'task', id);
}

/** The record when the caller may see it; otherwise the same 404 as for an unknown id. */
export function ownedOrNotFound<T extends { agentId: string }>(
  principal: Principal,
  record: T | undefined,
  what: string,
  id: string,
): T {
  if (!record || (principal.role === 'agent' && record.agentId !== principal.agentId))
    throw new SandgateError('not_found', `no ${what} ${id}`);
  return record;
}
