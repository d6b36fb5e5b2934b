// Agents and their tokens (admin only).
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { Agent, AgentId, CreateAgentRequest, CreateTokenRequest, TokenResponse } from '../../contract/agent.ts';
import { ErrorBody, SandgateError } from '../../contract/errors.ts';
import type { AgentStore } from '../../guard/identity/agent-store.ts';
import type { TokenService } from '../../guard/identity/tokens.ts';
import { assertScopesWithinGrants } from '../../guard/policy/profile-grants.ts';
import type { ProfileSet } from '../../store/profiles.ts';

export interface AgentRouteDeps {
  agents: AgentStore;
  tokens: TokenService;
  profiles: ProfileSet;
}

const IdParams = z.strictObject({ id: AgentId });
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody };

export const agentRoutes: FastifyPluginAsyncZod<AgentRouteDeps> = async (app, { agents, tokens, profiles }) => {
  const mustGet = async (id: string) => {
    const agent = await agents.get(id);
    if (!agent) throw new SandgateError('not_found', `no agent ${id}`);
    return agent;
  };

  app.post(
    '/v1/agents',
    {
      config: { roles: ['admin'] },
      schema: { summary: 'Create an agent with its grants', tags: ['agents'], body: CreateAgentRequest, response: { 201: Agent, ...errors } },
    },
    async (request, reply) => {
      const unknown = request.body.grants.profiles.filter((p) => !profiles.has(p));
      if (unknown.length) throw new SandgateError('unknown_profile', `grants.profiles names unknown profiles: ${unknown.join(', ')}`);
      return reply.code(201).send(await agents.create(request.body));
    },
  );

  app.get(
    '/v1/agents/:id',
    {
      config: { roles: ['admin'] },
      schema: { summary: 'Read an agent', tags: ['agents'], params: IdParams, response: { 200: Agent, ...errors } },
    },
    async (request) => mustGet(request.params.id),
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
      const { token, expiresAt } = await tokens.mint(agent.id, request.body);
      return reply.code(201).send({ token, expiresAt });
    },
  );
};
