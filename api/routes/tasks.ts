// Tasks: one agent goal, one budget.

import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { TaskList, TaskListQuery, Trace, TraceQuery } from '../../contract/console.ts';
import { ErrorBody, SandgateError } from '../../contract/errors.ts';
import { TaskId } from '../../contract/execution.ts';
import { CreateTaskRequest, ReportUsageRequest, Task, TaskUsage } from '../../contract/task.ts';
import { ResumeRequest } from '../../contract/watch.ts';
import { type CitedVerifyDeps, verifyCited } from '../../guard/audit/cited-verify.ts';
import { storyLine } from '../../guard/audit/story.ts';
import { actorsOf, namePeople, type PeopleDeps } from '../../guard/evidence/people.ts';
import { taskFor } from '../../guard/lifecycle/access.ts';
import type { TaskLifecycle } from '../../guard/lifecycle/task-lifecycle.ts';
import type { Watch } from '../../guard/watch/watch.ts';
import type { AuditIndex } from '../../state/audit-index.ts';
import type { BudgetStore } from '../../state/budgets.ts';

export interface TaskRouteDeps extends PeopleDeps {
  budgets: BudgetStore;
  tasks: TaskLifecycle;
  watch: Watch;
  auditIndex: AuditIndex;
  cited: CitedVerifyDeps;
}

const IdParams = z.strictObject({ id: TaskId });
const errors = { 400: ErrorBody, 401: ErrorBody, 402: ErrorBody, 403: ErrorBody, 404: ErrorBody };

export const taskRoutes: FastifyPluginAsyncZod<TaskRouteDeps> = async (app, deps) => {
  const { budgets, tasks, watch, auditIndex } = deps;
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
      const { goal, budget, scope } = request.body;
      return reply.code(201).send(await tasks.open(request.agent!, goal, budget, scope));
    },
  );

  app.get(
    '/v1/tasks',
    {
      config: { roles: ['admin', 'operator', 'auditor'] },
      schema: {
        summary:
          'Tasks newest first, of one agent or of all (those still kept), with budget used and left, taint and pause',
        tags: ['tasks'],
        querystring: TaskListQuery,
        response: { 200: TaskList, ...errors },
      },
    },
    async (request) => {
      const { agentId, status, limit } = request.query;
      // Reading further than the page when filtering keeps "open" honest without a second index.
      const all = await budgets.listTasks({ agentId, limit: status === 'open' ? Math.min(limit * 5, 2500) : limit });
      return { tasks: all.filter((t) => status !== 'open' || t.status === 'active').slice(0, limit) };
    },
  );

  app.get(
    '/v1/tasks/:id',
    {
      config: { roles: ['agent', 'admin', 'operator', 'auditor'] },
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
      return { remaining: await tasks.reportUsage(request.agent!, task, request.body) };
    },
  );

  app.post(
    '/v1/tasks/:id/resume',
    {
      config: { roles: ['operator', 'admin'] },
      schema: {
        summary: 'Resume a task a detector (or a human) paused: its queued work runs, new work is admitted',
        tags: ['alerts'],
        params: IdParams,
        body: ResumeRequest,
        response: { 200: Task, ...errors },
      },
    },
    async (request) => {
      const task = await taskFor(budgets, request.principal!, request.params.id);
      await watch.resumeTask(task.id, task.agentId, request.principal!.id, request.body?.reason ?? null);
      return (await budgets.getTask(task.id))!;
    },
  );

  app.get(
    '/v1/tasks/:id/trace',
    {
      config: { roles: ['agent', 'admin', 'operator', 'auditor'] },
      schema: {
        summary:
          "The task's story from the audit log, in order: what was asked and why, what was decided, what ran, what came back; with verify=true each record is checked against the audit files",
        tags: ['audit'],
        params: IdParams,
        querystring: TraceQuery,
        response: { 200: Trace, ...errors },
      },
    },
    async (request) => {
      const principal = request.principal!;
      const human = principal.role !== 'agent';
      if (!human && request.query.verify === 'true')
        throw new SandgateError('forbidden', 'verify=true is for humans (operator, auditor, admin)');
      const task = await taskFor(budgets, principal, request.params.id);
      const records = [];
      let after: string | undefined;
      for (let page = 0; page < 100; page++) {
        const { records: batch, next } = await auditIndex.query({ taskId: task.id, after, limit: 500 });
        records.push(...batch);
        if (!next) break;
        after = next;
      }
      const story = records.map(storyLine);
      if (!human) return { task, records, story };
      const [people, verification] = await Promise.all([
        namePeople(records.flatMap(actorsOf), deps),
        request.query.verify === 'true' ? verifyCited(records, deps.cited) : undefined,
      ]);
      return { task, records, story, people, ...(verification && { verification }) };
    },
  );
};
