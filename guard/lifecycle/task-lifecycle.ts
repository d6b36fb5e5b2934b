// The life of a task: opened with its budget (and the scope it expects), charged the model
// usage its agent reports (audited first; past a cap the task is exhausted and its queued work
// stopped), watched like every other step (hooks).
import type { Agent } from '../../contract/agent.ts';
import { SandgateError } from '../../contract/errors.ts';
import type { Budget, Task, TaskScope, TaskUsage } from '../../contract/task.ts';
import type { BudgetStore } from '../../state/budgets.ts';
import { type Auditor, capped } from '../audit/auditor.ts';
import type { Hooks } from './hooks.ts';

export interface TaskLifecycleDeps {
  budgets: BudgetStore;
  audit: Auditor;
  hooks: Hooks;
  /** Stop, not spiral (the executions lifecycle). */
  stopTask(agentId: string, taskId: string, cap: string): Promise<number>;
}

export interface UsageReport {
  tokens: number;
  cost: number;
  reasoning?: string | undefined;
  prompt?: string | undefined;
}

export interface TaskLifecycle {
  open(agent: Agent, goal: string, budget: Budget, scope: TaskScope | undefined): Promise<Task>;
  /** Charges reported model usage; throws 402 once a cap is passed (the task is then exhausted). */
  reportUsage(agent: Agent, task: Task, usage: UsageReport): Promise<TaskUsage>;
}

export function createTaskLifecycle(deps: TaskLifecycleDeps): TaskLifecycle {
  const { budgets, audit } = deps;
  return {
    async open(agent, goal, budget, scope) {
      const task = await budgets.createTask(agent.id, goal, budget, scope);
      await audit.record(
        'task.created',
        { agentId: agent.id, principalId: agent.id, taskId: task.id },
        { goal: task.goal, budget: task.budget },
      );
      return task;
    },

    async reportUsage(agent, task, { tokens, cost, reasoning, prompt }) {
      const ctx = { agentId: agent.id, principalId: agent.id, taskId: task.id };
      const auditId = await audit.record('usage.reported', ctx, {
        tokens,
        cost,
        reasoning: reasoning ?? null,
        prompt: prompt === undefined ? null : capped(prompt, 65536),
      });
      const outcome = await budgets.reportUsage(task.id, agent.id, agent.limits, tokens, cost);
      deps.hooks.emit({ type: 'usage_reported', agentId: agent.id, taskId: task.id, tokens, cost, auditId });
      if (!outcome.ok) {
        if ('missing' in outcome) throw new SandgateError('not_found', `no task ${task.id}`);
        if (outcome.cap === 'spendPerDay')
          throw new SandgateError('budget_exceeded', 'spendPerDay: this agent has spent its budget for today');
        await deps.stopTask(agent.id, task.id, outcome.cap);
        throw new SandgateError(
          'budget_exceeded',
          `${outcome.cap}: task ${task.id} passed its ${outcome.cap}; the task is exhausted`,
        );
      }
      return (await budgets.getTask(task.id))!.remaining;
    },
  };
}
