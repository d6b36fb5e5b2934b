// Activity over time, per agent and per task, in buckets the console draws as charts: admitted
// runs and tool calls, refusals, and spend (settled work and reported model cost) per bucket.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AgentId } from '../../contract/agent.ts';
import { Activity, ActivityQuery } from '../../contract/console.ts';
import { ErrorBody, SandgateError } from '../../contract/errors.ts';
import { TaskId } from '../../contract/execution.ts';
import { type ActivityStore, MAX_WINDOW_MS, type Scope, totalOf } from '../../state/activity.ts';
import type { AgentStore } from '../../state/agents.ts';
import type { BudgetStore } from '../../state/budgets.ts';

export interface ActivityRouteDeps {
  activity: ActivityStore;
  agents: AgentStore;
  budgets: BudgetStore;
}

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody };
/** More bars than this is no longer a picture anyone reads. */
const MAX_BUCKETS = 1440;

/** The window of a query, checked: 400 naming what to change. */
function windowOf(q: z.infer<typeof ActivityQuery>) {
  const toMs = q.to ? Date.parse(q.to) : Date.now();
  const fromMs = q.from ? Date.parse(q.from) : toMs - 3_600_000;
  const bucketMs = q.bucketS * 1000;
  if (q.bucketS % 60 !== 0) throw new SandgateError('validation_failed', 'bucketS must be a multiple of 60');
  if (fromMs >= toMs) throw new SandgateError('validation_failed', '`from` must be before `to`');
  if (toMs - fromMs > MAX_WINDOW_MS) throw new SandgateError('validation_failed', 'the window is at most 8 days');
  if ((toMs - fromMs) / bucketMs > MAX_BUCKETS)
    throw new SandgateError('validation_failed', `at most ${MAX_BUCKETS} buckets: widen bucketS or narrow the window`);
  return { fromMs, toMs, bucketMs };
}

export const activityRoutes: FastifyPluginAsyncZod<ActivityRouteDeps> = async (app, deps) => {
  const answer = async (scope: Scope, id: string, q: z.infer<typeof ActivityQuery>) => {
    const { fromMs, toMs, bucketMs } = windowOf(q);
    const buckets = await deps.activity.buckets(scope, id, fromMs, toMs, bucketMs);
    return {
      scope,
      id,
      from: new Date(fromMs).toISOString(),
      to: new Date(toMs).toISOString(),
      bucketS: q.bucketS,
      buckets: buckets.map(({ startMs, ...f }) => ({ start: new Date(startMs).toISOString(), ...f })),
      total: totalOf(buckets),
    };
  };

  app.get(
    '/v1/agents/:id/activity',
    {
      config: { roles: ['admin', 'operator', 'auditor'] },
      schema: {
        summary:
          "An agent's runs, tool calls, refusals and spend over time, in buckets (default: the last hour by minute)",
        tags: ['agents'],
        params: z.strictObject({ id: AgentId }),
        querystring: ActivityQuery,
        response: { 200: Activity, ...errors },
      },
    },
    async (request) => {
      if (!(await deps.agents.get(request.params.id)))
        throw new SandgateError('not_found', `no agent ${request.params.id}`);
      return answer('agent', request.params.id, request.query);
    },
  );

  app.get(
    '/v1/tasks/:id/activity',
    {
      config: { roles: ['admin', 'operator', 'auditor'] },
      schema: {
        summary: "A task's runs, tool calls, refusals and spend over time, in buckets",
        tags: ['tasks'],
        params: z.strictObject({ id: TaskId }),
        querystring: ActivityQuery,
        response: { 200: Activity, ...errors },
      },
    },
    async (request) => {
      if (!(await deps.budgets.getTask(request.params.id)))
        throw new SandgateError('not_found', `no task ${request.params.id}`);
      return answer('task', request.params.id, request.query);
    },
  );
};
