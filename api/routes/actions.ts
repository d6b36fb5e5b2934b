// Tool calls: POST/GET /v1/actions, GET /v1/tools, and the approvals humans decide on; an
// action's status changes as Server-Sent Events (GET /v1/actions/:id/stream).

import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import {
  Action,
  ActionAccepted,
  ActionId,
  ActionRequest,
  Approval,
  ApprovalDecisionRequest,
  ApprovalId,
  ApprovalQuery,
  FINAL_ACTION_STATUSES,
} from '../../contract/action.ts';
import { ErrorBody, SandgateError } from '../../contract/errors.ts';
import { StreamQuery } from '../../contract/execution.ts';
import type { Principal } from '../../contract/principal.ts';
import { ToolInfo } from '../../contract/tool.ts';
import { ownedOrNotFound, taskFor, taskIdFor } from '../../guard/lifecycle/access.ts';
import type { ActionLifecycle } from '../../guard/lifecycle/action-lifecycle.ts';
import { mayCallTool } from '../../guard/policy/authorize.ts';
import type { PolicyDecisionPoint } from '../../guard/policy/decision-point.ts';
import type { ToolSet } from '../../guard/tools/tool-registry.ts';
import type { ActionStore } from '../../state/actions.ts';
import type { BudgetStore } from '../../state/budgets.ts';
import type { IdempotencyStore } from '../../state/idempotency.ts';
import type { Keys } from '../../state/keys.ts';
import { cursorOf, type EventStreamServer } from '../event-stream.ts';
import { idempotency } from '../idempotency.ts';
import { EventStreamBody } from './executions.ts';

export interface ActionRouteDeps {
  toolCalls: ActionLifecycle;
  policy: PolicyDecisionPoint;
  actions: ActionStore;
  budgets: BudgetStore;
  tools: ToolSet;
  eventStreams: EventStreamServer;
  keys: Keys;
  idempotency: IdempotencyStore;
}

const errors = {
  400: ErrorBody,
  401: ErrorBody,
  402: ErrorBody,
  403: ErrorBody,
  404: ErrorBody,
  409: ErrorBody,
  429: ErrorBody,
  503: ErrorBody,
};

export const actionRoutes: FastifyPluginAsyncZod<ActionRouteDeps> = async (app, deps) => {
  const { actions, budgets } = deps;

  /** Agents see only their own actions; anything else is "not found", so ids leak nothing. */
  const loadOwned = async (principal: Principal, id: string) =>
    ownedOrNotFound(principal, await actions.get(id), 'action', id);

  app.get(
    '/v1/tools',
    {
      config: { roles: ['agent', 'admin', 'approver'] },
      schema: {
        summary:
          'The tools this service offers: to an agent, only those it may call (its grants, narrowed by its token and the policies)',
        tags: ['actions'],
        response: { 200: z.object({ tools: z.array(ToolInfo) }), ...errors },
      },
    },
    async (request) => {
      const principal = request.principal!;
      // An agent is not told of tools it may not call, nor of their schemas (refuse before you reveal).
      const caller = principal.role === 'agent' ? { agent: request.agent!, scopes: principal.scopes } : undefined;
      const shown = [...deps.tools.values()].filter((t) => !caller || mayCallTool(deps.policy, caller, t.definition));
      return { tools: shown.map((t) => ({ ...t.definition, available: t.available })) };
    },
  );

  app.post(
    '/v1/actions',
    {
      config: { roles: ['agent'] },
      schema: {
        summary: 'Call a tool: queued, or awaiting a human approver when the tool is irreversible',
        tags: ['actions'],
        body: ActionRequest,
        response: { 202: ActionAccepted, ...errors },
      },
    },
    async (request, reply) => {
      const principal = request.principal!;
      const taskId = taskIdFor(principal, request.body.taskId);
      if (taskId) await taskFor(budgets, principal, taskId);
      const scopes = principal.role === 'agent' ? principal.scopes : undefined;
      const once = await idempotency(deps.idempotency, request, 'tool', request.body);
      if (once.replayId) {
        // A retry of an admitted call: that action as it is now, never a second call.
        const action = await loadOwned(principal, once.replayId);
        return reply.code(202).send({ id: action.id, status: action.status });
      }
      const accepted = await deps.toolCalls
        .admit({ agent: request.agent!, scopes, taskId }, request.body)
        .catch(async (e: unknown) => {
          await once.release();
          throw e;
        });
      await once.settle(accepted.id);
      return reply.code(202).send(accepted);
    },
  );

  app.get(
    '/v1/actions/:id',
    {
      config: { roles: ['agent', 'admin', 'approver'] },
      schema: {
        summary: 'Read an action',
        tags: ['actions'],
        params: z.strictObject({ id: ActionId }),
        response: { 200: Action, ...errors },
      },
    },
    async (request) => loadOwned(request.principal!, request.params.id),
  );

  app.get(
    '/v1/actions/:id/stream',
    {
      config: { roles: ['agent', 'admin', 'approver'] },
      schema: {
        summary:
          "Follow an action's status (awaiting_approval → queued → running → …) as Server-Sent Events, ending with `final`",
        tags: ['actions'],
        params: z.strictObject({ id: ActionId }),
        querystring: StreamQuery,
        response: { 200: EventStreamBody, ...errors },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const after = cursorOf(request, request.query.after);
      await loadOwned(request.principal!, id); // not yours is not found
      return deps.eventStreams.serve(request, reply, {
        key: deps.keys.action.stream(id),
        after,
        finalRecord: async () => {
          const action = await actions.get(id);
          if (!action || !FINAL_ACTION_STATUSES.includes(action.status)) return undefined;
          return { record: action, endedAt: action.finishedAt };
        },
      });
    },
  );

  app.get(
    '/v1/approvals',
    {
      config: { roles: ['approver', 'admin'] },
      schema: {
        summary: 'Approvals waiting for a human, soonest to expire first',
        tags: ['approvals'],
        querystring: ApprovalQuery,
        response: { 200: z.object({ approvals: z.array(Approval) }), ...errors },
      },
    },
    async (request) => {
      const status = request.query.status ?? 'pending';
      if (status !== 'pending')
        throw new SandgateError(
          'validation_failed',
          'only status=pending is listed; read a decided approval by its action',
        );
      return { approvals: await actions.pendingApprovals(200) };
    },
  );

  app.get(
    '/v1/approvals/:id',
    {
      config: { roles: ['approver', 'admin'] },
      schema: {
        summary: 'Read an approval',
        tags: ['approvals'],
        params: z.strictObject({ id: ApprovalId }),
        response: { 200: Approval, ...errors },
      },
    },
    async (request) => {
      await actions.expireIfDue(request.params.id);
      const approval = await actions.getApproval(request.params.id);
      if (!approval) throw new SandgateError('not_found', `no approval ${request.params.id}`);
      return approval;
    },
  );

  app.post(
    '/v1/approvals/:id',
    {
      config: { roles: ['approver'] },
      schema: {
        summary: 'Approve or deny one pending action; an approval is single-use and holds for its exact arguments',
        tags: ['approvals'],
        params: z.strictObject({ id: ApprovalId }),
        body: ApprovalDecisionRequest,
        response: { 200: Approval, ...errors },
      },
    },
    async (request) => {
      const { decision, reason } = request.body;
      return deps.toolCalls.decide(request.params.id, decision, request.principal!, reason ?? null);
    },
  );
};
