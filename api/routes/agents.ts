// Agents and their tokens (admin only).

import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import {
  Agent,
  AgentId,
  CreateAgentRequest,
  CreatePrincipalRequest,
  CreateTokenRequest,
  PrincipalCreated,
  Revocation,
  RevokeRequest,
  TokenResponse,
} from '../../contract/agent.ts';
import { AgentList, AgentListQuery, AgentSummary, People } from '../../contract/console.ts';
import { ErrorBody, resultError, SandgateError } from '../../contract/errors.ts';
import { ResumeRequest, SuspendRequest } from '../../contract/watch.ts';
import type { Auditor } from '../../guard/audit/auditor.ts';
import { parseDestinationGrants } from '../../guard/egress/destination-grants.ts';
import { namePeople } from '../../guard/evidence/people.ts';
import type { TokenService } from '../../guard/identity/tokens.ts';
import type { ActionLifecycle } from '../../guard/lifecycle/action-lifecycle.ts';
import type { ExecutionLifecycle } from '../../guard/lifecycle/execution-lifecycle.ts';
import { assertScopesWithinGrants } from '../../guard/policy/profile-grants.ts';
import type { ProfileSet } from '../../guard/profiles.ts';
import type { ToolSet } from '../../guard/tools/tool-registry.ts';
import type { Overview } from '../../guard/watch/overview.ts';
import type { Watch } from '../../guard/watch/watch.ts';
import type { AgentStore } from '../../state/agents.ts';
import type { PrincipalStore } from '../../state/principals.ts';

export interface AgentRouteDeps {
  agents: AgentStore;
  principals: PrincipalStore;
  tokens: TokenService;
  profiles: ProfileSet;
  executions: ExecutionLifecycle;
  toolCalls: ActionLifecycle;
  tools: ToolSet;
  audit: Auditor;
  watch: Watch;
  overview: Overview;
  /** The MCP endpoint's resource URL (the audience of its tokens). */
  mcpResource: () => string;
}

const IdParams = z.strictObject({ id: AgentId });
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody };

export const agentRoutes: FastifyPluginAsyncZod<AgentRouteDeps> = async (app, deps) => {
  const { agents, tokens, profiles } = deps;
  const mustGet = async (id: string) => {
    const agent = await agents.get(id);
    if (!agent) throw new SandgateError('not_found', `no agent ${id}`);
    return agent;
  };

  app.post(
    '/v1/agents',
    {
      config: { roles: ['admin'] },
      schema: {
        summary: 'Create an agent with its grants',
        tags: ['agents'],
        body: CreateAgentRequest,
        response: { 201: Agent, ...errors },
      },
    },
    async (request, reply) => {
      const { grants } = request.body;
      const unknown = grants.profiles.filter((p) => !profiles.has(p));
      if (unknown.length)
        throw new SandgateError('unknown_profile', `grants.profiles names unknown profiles: ${unknown.join(', ')}`);
      const unknownTools = grants.tools.filter((t) => !deps.tools.has(t));
      if (unknownTools.length)
        throw new SandgateError('unknown_tool', `grants.tools names unknown tools: ${unknownTools.join(', ')}`);
      parseDestinationGrants(grants.destinations); // a bad grant is a 400 naming it
      const agent = await agents.create(request.body);
      await deps.audit.record(
        'agent.created',
        { agentId: agent.id, principalId: request.principal!.id },
        { name: agent.name, grants: agent.grants, limits: agent.limits },
      );
      return reply.code(201).send(agent);
    },
  );

  app.get(
    '/v1/agents',
    {
      config: { roles: ['admin', 'operator', 'auditor'] },
      schema: {
        summary:
          'Agents, newest first, each with its standing, runs and tool calls in the last hour, spend today against its cap, and unresolved alerts',
        tags: ['agents'],
        querystring: AgentListQuery,
        response: { 200: AgentList, ...errors },
      },
    },
    async (request) => ({ agents: await deps.overview.list(request.query) }),
  );

  app.get(
    '/v1/agents/:id',
    {
      config: { roles: ['admin', 'operator', 'auditor'] },
      schema: {
        summary: 'Read an agent, with the figures of GET /v1/agents and the names of who holds it',
        tags: ['agents'],
        params: IdParams,
        response: { 200: AgentSummary.extend({ people: People }), ...errors },
      },
    },
    async (request) => {
      const summary = await deps.overview.one(await mustGet(request.params.id));
      const holders = [summary.suspended?.by, summary.throttled?.by].filter((x): x is string => !!x);
      return { ...summary, people: await namePeople(holders, deps) };
    },
  );

  app.post(
    '/v1/agents/:id/suspend',
    {
      config: { roles: ['operator', 'admin'] },
      schema: {
        summary:
          'Suspend one agent: like a revocation its work is refused (423), but its queued work waits and a human can resume it',
        tags: ['alerts'],
        params: IdParams,
        body: SuspendRequest,
        response: { 200: Agent, ...errors },
      },
    },
    async (request) => {
      const agent = await mustGet(request.params.id);
      await deps.watch.suspendAgent(agent.id, request.principal!.id, request.body?.reason ?? null);
      return { ...agent, suspended: (await deps.watch.suspension(agent.id)) ?? null };
    },
  );

  app.post(
    '/v1/agents/:id/resume',
    {
      config: { roles: ['operator', 'admin'] },
      schema: {
        summary: 'Resume a suspended or throttled agent: its queued work runs, new work is admitted',
        tags: ['alerts'],
        params: IdParams,
        body: ResumeRequest,
        response: { 200: Agent, ...errors },
      },
    },
    async (request) => {
      const agent = await mustGet(request.params.id);
      await deps.watch.resumeAgent(agent.id, request.principal!.id, request.body?.reason ?? null);
      return { ...agent, suspended: null };
    },
  );

  app.post(
    '/v1/agents/:id/tokens',
    {
      config: { roles: ['admin'] },
      schema: {
        summary: 'Mint a short-lived token for an agent (default 900 s, at most 3600 s)',
        tags: ['agents'],
        params: IdParams,
        body: CreateTokenRequest.default({ ttlSeconds: 900 }),
        response: { 201: TokenResponse, ...errors },
      },
    },
    async (request, reply) => {
      const agent = await mustGet(request.params.id);
      if (agent.revokedAt) throw new SandgateError('invalid_state', `agent ${agent.id} is revoked`);
      assertScopesWithinGrants(agent, request.body.scopes);
      // A token is for one audience: the REST API, or the MCP endpoint named by its resource URL.
      const { resource } = request.body;
      if (resource !== undefined && resource !== deps.mcpResource()) {
        throw new SandgateError(
          'validation_failed',
          `resource: this service's MCP resource is ${deps.mcpResource()}; omit resource for a REST API token`,
        );
      }
      const { token, expiresAt } = await tokens.mint(agent.id, {
        ...request.body,
        generation: agent.tokenGeneration,
        audience: resource,
      });
      // The token itself never enters the log: who got one, for how long and with which scopes.
      const ctx = { agentId: agent.id, principalId: request.principal!.id, taskId: request.body.taskId ?? null };
      await deps.audit.record('token.issued', ctx, {
        expiresAt,
        ttlSeconds: request.body.ttlSeconds,
        scopes: request.body.scopes ?? null,
        ...(resource && { audience: resource }),
      });
      return reply.code(201).send({ token, expiresAt });
    },
  );

  app.post(
    '/v1/agents/:id/revoke',
    {
      config: { roles: ['admin'] },
      schema: {
        summary:
          'Revoke one agent: every token of it gets 401 from the next request on, and its queued and running executions are cancelled',
        tags: ['agents'],
        params: IdParams,
        body: RevokeRequest,
        response: { 200: Revocation, ...errors },
      },
    },
    async (request) => {
      // The admission marker goes first: from here on no new execution of this agent is created,
      // so the sweep below sees every execution that ever will exist.
      const agent = await agents.revoke(request.params.id);
      if (!agent) throw new SandgateError('not_found', `no agent ${request.params.id}`);
      const reason = resultError('agent_revoked');
      const cancelled = await deps.executions.cancelAllOf(agent.id, reason);
      // Tool calls not yet made (queued, or waiting for an approver) never will be.
      const cancelledActions = await deps.toolCalls.cancelAllOf(agent.id, reason);
      await deps.audit.record(
        'agent.revoked',
        { agentId: agent.id, principalId: request.principal!.id },
        { cancelledExecutions: cancelled, cancelledActions, reason: request.body?.reason ?? null },
      );
      return { id: agent.id, revokedAt: agent.revokedAt!, cancelledExecutions: cancelled, cancelledActions };
    },
  );

  app.post(
    '/v1/agents/:id/enable',
    {
      config: { roles: ['admin'] },
      schema: {
        summary: 'Lift a revocation; tokens minted before it stay invalid, so the agent needs new tokens',
        tags: ['agents'],
        params: IdParams,
        response: { 200: Agent, ...errors },
      },
    },
    async (request) => {
      const agent = await agents.enable(request.params.id);
      if (!agent) throw new SandgateError('not_found', `no agent ${request.params.id}`);
      await deps.audit.record(
        'agent.enabled',
        { agentId: agent.id, principalId: request.principal!.id },
        { tokenGeneration: agent.tokenGeneration },
      );
      return agent;
    },
  );

  app.post(
    '/v1/principals',
    {
      config: { roles: ['admin'] },
      schema: {
        summary: 'Create a human approver or auditor and its bearer token',
        tags: ['agents'],
        body: CreatePrincipalRequest,
        response: { 201: PrincipalCreated, ...errors },
      },
    },
    async (request, reply) => {
      const { principal, token } = await deps.principals.create(request.body);
      await deps.audit.record(
        'principal.created',
        { principalId: request.principal!.id, subject: principal.id },
        { name: principal.name, role: principal.role },
      );
      return reply.code(201).send({ id: principal.id, name: principal.name, role: principal.role, token });
    },
  );
};
