// Tasks: one agent goal, one budget.
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ErrorBody, SandgateError } from '../../contract/errors.ts';
import { TaskId } from '../../contract/execution.ts';
import type { Principal } from '../../contract/principal.ts';
import { CreateTaskRequest, ReportUsageRequest, Task, TaskUsage } from '../../contract/task.ts';
import type { Admission, BudgetStore } from '../../guard/budget/budget-store.ts';
import { TASK_EXHAUSTED, type WorkCanceller } from '../../store/cancel-work.ts';

export interface TaskRouteDeps {
  budgets: BudgetStore;
  canceller: WorkCanceller;
}

/** The refusal of an admission: 429 with Retry-After over a per-minute limit, 402 naming the cap. */
export function admissionError(a: Exclude<Admission, { ok: true }>, taskId: string | null, worstCase: number, perMinute: string): SandgateError {
  if (a.reason === 'rate') {
    return new SandgateError('rate_limited', `more than ${perMinute} per minute; retry after ${a.retryAfterS} s`, { 'retry-after': String(a.retryAfterS) });
  }
  if (a.reason === 'no_task') return new SandgateError('not_found', `no task ${taskId}`);
  if (a.cap === 'spendPerDay') {
    return new SandgateError('budget_exceeded', `spendPerDay: this agent has ${a.left ?? 0} left today; the worst case of this request is ${worstCase}`);
  }
  if (a.cap === 'maxSpend' && a.left !== undefined) {
    return new SandgateError('budget_exceeded', `maxSpend: task ${taskId} has ${a.left} left (after what is reserved); the worst case of this request is ${worstCase}`);
  }
  if (a.cap === 'task') return new SandgateError('budget_exceeded', `task ${taskId} is exhausted`);
  return new SandgateError('budget_exceeded', `${a.cap}: task ${taskId} has used its ${a.cap}; the task is exhausted`);
}

const IdParams = z.strictObject({ id: TaskId });
const errors = { 400: ErrorBody, 401: ErrorBody, 402: ErrorBody, 403: ErrorBody, 404: ErrorBody };

/** An agent sees only its own tasks (others are "not found"); admin and auditor see all. */
export async function taskFor(budgets: BudgetStore, principal: Principal, id: string): Promise<Task> {
  const task = await budgets.getTask(id);
  if (!task || (principal.role === 'agent' && task.agentId !== principal.agentId)) {
    throw new SandgateError('not_found', `no task ${id}`);
  }
  return task;
}

export const taskRoutes: FastifyPluginAsyncZod<TaskRouteDeps> = async (app, { budgets, canceller }) => {
  app.post(
    '/v1/tasks',
    {
      config: { roles: ['agent'] },
      schema: { summary: 'Start a task with its budget', tags: ['tasks'], body: CreateTaskRequest, response: { 201: Task, ...errors } },
    },
    async (request, reply) => reply.code(201).send(await budgets.createTask(request.principal!.id, request.body.goal, request.body.budget)),
  );

  app.get(
    '/v1/tasks/:id',
    {
      config: { roles: ['agent', 'admin', 'auditor'] },
      schema: { summary: 'Budget used and remaining, and status', tags: ['tasks'], params: IdParams, response: { 200: Task, ...errors } },
    },
    async (request) => taskFor(budgets, request.principal!, request.params.id),
  );

  app.post(
    '/v1/tasks/:id/usage',
    {
      config: { roles: ['agent'] },
      schema: {
        summary: 'Report model usage (tokens, cost) against the task; 402 once a cap is passed',
        tags: ['tasks'],
        params: IdParams,
        body: ReportUsageRequest,
        response: { 200: z.object({ remaining: TaskUsage }), ...errors },
      },
    },
    async (request) => {
      const task = await taskFor(budgets, request.principal!, request.params.id);
      const agent = request.agent!;
      const outcome = await budgets.reportUsage(task.id, agent.id, agent.limits, request.body.tokens, request.body.cost);
      if (!outcome.ok) {
        if ('missing' in outcome) throw new SandgateError('not_found', `no task ${task.id}`);
        if (outcome.cap === 'spendPerDay') throw new SandgateError('budget_exceeded', `spendPerDay: this agent has spent its budget for today`);
        // Stop, not spiral: nothing queued for a spent task runs.
        await canceller.cancelQueuedOfTask(task.id, TASK_EXHAUSTED);
        throw new SandgateError('budget_exceeded', `${outcome.cap}: task ${task.id} passed its ${outcome.cap}; the task is exhausted`);
      }
      return { remaining: (await budgets.getTask(task.id))!.remaining };
    },
  );
};
