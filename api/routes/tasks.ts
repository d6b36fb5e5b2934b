// Tasks: one agent goal, one budget.

import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AuditRecord } from '../../contract/audit.ts';
import { ErrorBody, SandgateError } from '../../contract/errors.ts';
import { TaskId } from '../../contract/execution.ts';
import { CreateTaskRequest, ReportUsageRequest, Task, TaskUsage } from '../../contract/task.ts';
import { type Auditor, capped } from '../../guard/audit/auditor.ts';
import { storyLine } from '../../guard/audit/story.ts';
import { taskFor } from '../../guard/lifecycle/access.ts';
import type { ExecutionLifecycle } from '../../guard/lifecycle/execution-lifecycle.ts';
import type { AuditIndex } from '../../state/audit-index.ts';
import type { BudgetStore } from '../../state/budgets.ts';

export interface TaskRouteDeps {
  budgets: BudgetStore;
  executions: ExecutionLifecycle;
  audit: Auditor;
  auditIndex: AuditIndex;
}

const IdParams = z.strictObject({ id: TaskId });
const errors = { 400: ErrorBody, 401: ErrorBody, 402: ErrorBody, 403: ErrorBody, 404: ErrorBody };

export const taskRoutes: FastifyPluginAsyncZod<TaskRouteDeps> = async (
  app,
  { budgets, executions, audit, auditIndex },
) => {
  app.post(
    '/v1/tasks',
    {
      config: { roles: ['agent'] },
      schema: {
        summary: 'Start a task with its budget',
        tags: ['tasks'],
        body: CreateTaskRequest,
        response: { 201: Task, ...errors },
      },
    },
    async (request, reply) => {
      const principal = request.principal!;
      const task = await budgets.createTask(principal.id, request.body.goal, request.body.budget);
      await audit.record(
        'task.created',
        { agentId: principal.id, principalId: principal.id, taskId: task.id },
        { goal: task.goal, budget: task.budget },
      );
      return reply.code(201).send(task);
    },
  );

  app.get(
    '/v1/tasks/:id',
    {
      config: { roles: ['agent', 'admin', 'auditor'] },
      schema: {
        summary: 'Budget used and remaining, and status',
        tags: ['tasks'],
        params: IdParams,
        response: { 200: Task, ...errors },
      },
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
      const { tokens, cost, reasoning, prompt } = request.body;
      const ctx = { agentId: agent.id, principalId: agent.id, taskId: task.id };
      await audit.record('usage.reported', ctx, {
        tokens,
        cost,
        reasoning: reasoning ?? null,
        prompt: prompt === undefined ? null : capped(prompt, 65536),
      });
      const outcome = await budgets.reportUsage(task.id, agent.id, agent.limits, tokens, cost);
      if (!outcome.ok) {
        if ('missing' in outcome) throw new SandgateError('not_found', `no task ${task.id}`);
        if (outcome.cap === 'spendPerDay')
          throw new SandgateError('budget_exceeded', `spendPerDay: this agent has spent its budget for today`);
        // Stop, not spiral: nothing queued for a spent task runs.
        await executions.stopTask(agent.id, task.id, outcome.cap);
        throw new SandgateError(
          'budget_exceeded',
          `${outcome.cap}: task ${task.id} passed its ${outcome.cap}; the task is exhausted`,
        );
      }
      return { remaining: (await budgets.getTask(task.id))!.remaining };
    },
  );

  app.get(
    '/v1/tasks/:id/trace',
    {
      config: { roles: ['agent', 'admin', 'auditor'] },
      schema: {
        summary:
          "The task's story from the audit log, in order: what was asked and why, what was decided, what ran, what came back",
        tags: ['audit'],
        params: IdParams,
        response: {
          200: z.object({ task: Task, records: z.array(AuditRecord), story: z.array(z.string()) }),
          ...errors,
        },
      },
    },
    async (request) => {
      const task = await taskFor(budgets, request.principal!, request.params.id);
      const records = [];
      let after: string | undefined;
      for (let page = 0; page < 100; page++) {
        const { records: batch, next } = await auditIndex.query({ taskId: task.id, after, limit: 500 });
        records.push(...batch);
        if (!next) break;
        after = next;
      }
      return { task, records, story: records.map(storyLine) };
    },
  );
};
