// Tasks: one agent goal, one budget.
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ErrorBody, SandgateError } from '../../contract/errors.ts';
import { TaskId } from '../../contract/execution.ts';
import type { Principal } from '../../contract/principal.ts';
import { CreateTaskRequest, ReportUsageRequest, Task, TaskUsage } from '../../contract/task.ts';
import type { BudgetStore } from '../../guard/budget/budget-store.ts';

export interface TaskRouteDeps {
  budgets: BudgetStore;
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

export const taskRoutes: FastifyPluginAsyncZod<TaskRouteDeps> = async (app, { budgets }) => {
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
      const outcome = await budgets.reportUsage(task.id, request.body.tokens, request.body.cost);
      if (!outcome.ok) {
        if ('missing' in outcome) throw new SandgateError('not_found', `no task ${task.id}`);
        throw new SandgateError('budget_exceeded', `task ${task.id} passed its ${outcome.cap}; the task is exhausted`);
      }
      return { remaining: (await budgets.getTask(task.id))!.remaining };
    },
  );
};
