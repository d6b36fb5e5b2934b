// Which task a piece of work belongs to, and whether the caller may name it: a task-bound token
// implies its task and refuses any other (403); an agent sees only its own tasks, anything else is
// "not found" (404), so task ids of others leak nothing.
import { SandgateError } from '../../contract/errors.ts';
import type { Principal } from '../../contract/principal.ts';
import type { Task } from '../../contract/task.ts';
import type { BudgetStore } from '../../state/budgets.ts';

export function taskIdFor(principal: Principal, asked: string | undefined): string | null {
  if (principal.role !== 'agent' || !principal.taskId) return asked ?? null;
  if (asked && asked !== principal.taskId) throw new SandgateError('forbidden', `this token is bound to task ${principal.taskId}`);
  return principal.taskId;
}

export async function taskFor(budgets: BudgetStore, principal: Principal, id: string): Promise<Task> {
  const task = await budgets.getTask(id);
  if (!task || (principal.role === 'agent' && task.agentId !== principal.agentId)) throw new SandgateError('not_found', `no task ${id}`);
  return task;
}
