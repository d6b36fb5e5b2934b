// Authentication and role checks. Every /v1 route must declare the roles it admits in
// `config.roles`; a route that forgets is refused at start-up (fail closed).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Agent } from '../contract/agent.ts';
import { errorBody, isSandgateError, SandgateError } from '../contract/errors.ts';
import type { Principal, Role } from '../contract/principal.ts';
import type { AdminTokenCheck } from '../guard/identity/admin-token.ts';
import type { TokenService } from '../guard/identity/tokens.ts';
import type { StageClock } from '../guard/lifecycle/stages.ts';
import type { PolicyDecisionPoint } from '../guard/policy/decision-point.ts';
import type { AgentStore } from '../state/agents.ts';
import { PRINCIPAL_TOKEN_PREFIX, type PrincipalStore } from '../state/principals.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Roles admitted; absent means public (only allowed outside /v1). */
    roles?: readonly Role[];
    /** Also accept HTTP Basic (user "admin", password = admin token) so a browser can log in. */
    basicAuth?: boolean;
    /**
     * The route may start on the agent this process read last while the agent is read again
     * (`request.agentRead`): the route passes that read to the step that must wait for it, and
     * no answer leaves before it is back (onSend below).
     */
    agentReadBeside?: boolean;
  }
  interface FastifyRequest {
    principal: Principal | undefined;
    agent: Agent | undefined;
    /** The agent read again, when the route started on the one read last (agentReadBeside). */
    agentRead: Promise<Agent> | undefined;
  }
}

export interface AuthDeps {
  admin: AdminTokenCheck;
  tokens: TokenService;
  agents: AgentStore;
  principals: PrincipalStore;
  policy: PolicyDecisionPoint;
  stages?: StageClock;
}

export function credential(request: FastifyRequest, allowBasic: boolean): string | undefined {
  const header = request.headers.authorization;
  if (!header) return undefined;
  const [scheme, value] = header.split(' ', 2);
  if (scheme?.toLowerCase() === 'bearer' && value) return value.trim();
  if (allowBasic && scheme?.toLowerCase() === 'basic' && value) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon === -1 ? undefined : decoded.slice(colon + 1);
  }
  return undefined;
}

async function authenticate(
  deps: AuthDeps,
  request: FastifyRequest,
  allowBasic: boolean,
  readBeside: boolean,
): Promise<void> {
  const token = credential(request, allowBasic);
  if (!token) {
    throw new SandgateError(
      'unauthorized',
      'send Authorization: Bearer <token>',
      allowBasic ? { 'www-authenticate': 'Basic realm="sandgate admin", charset="UTF-8"' } : {},
    );
  }
  if (deps.admin.matches(token)) {
    request.principal = { role: 'admin', id: 'admin' };
    return;
  }
  if (token.startsWith(PRINCIPAL_TOKEN_PREFIX)) {
    const human = await deps.principals.byToken(token);
    if (!human) throw new SandgateError('unauthorized', 'the bearer token is not valid');
    request.principal = { role: human.role, id: human.id, name: human.name };
    return;
  }
  const { agent, principal, read } = await authenticateAgent(deps, token, undefined, readBeside);
  request.agent = agent;
  request.principal = principal;
  request.agentRead = read;
}

/**
 * An agent token for `audience` (default: the REST API): signature, expiry, then the agent read
 * from Redis on every call, so a revocation holds from the next request on (never cached).
 *
 * `readBeside`: when this process has read the agent before and that copy admits the token, the
 * call returns at once with it and the read goes on in `read` (resolving to the agent as read,
 * rejecting as this function would have). The caller starts its first Redis step beside that
 * read and must let nothing take effect, and answer nothing, before `read` is back.
 */
export async function authenticateAgent(
  deps: Pick<AuthDeps, 'tokens' | 'agents'>,
  token: string,
  audience?: string,
  readBeside = false,
): Promise<{ agent: Agent; principal: Extract<Principal, { role: 'agent' }>; read?: Promise<Agent> }> {
  const claims = await deps.tokens.verify(token, audience);
  const admits = (agent: Agent | undefined): Agent => {
    if (!agent) throw new SandgateError('unauthorized', 'the bearer token is not valid');
    if (agent.revokedAt) throw new SandgateError('agent_revoked', 'this agent has been revoked');
    if (claims.generation !== agent.tokenGeneration) {
      throw new SandgateError('agent_revoked', 'this token was minted before the agent was revoked: mint a new one');
    }
    return agent;
  };
  const principalOf = (agent: Agent) => ({
    role: 'agent' as const,
    id: agent.id,
    agentId: agent.id,
    tokenId: claims.tokenId,
    scopes: claims.scopes,
    taskId: claims.taskId,
  });
  const known = readBeside ? deps.agents.known(claims.agentId) : undefined;
  if (known && !known.revokedAt && claims.generation === known.tokenGeneration) {
    const read = deps.agents.get(claims.agentId).then(admits);
    read.catch(() => {}); // awaited by the route and by onSend; never an unhandled rejection
    return { agent: known, principal: principalOf(known), read };
  }
  const agent = admits(await deps.agents.get(claims.agentId));
  return { agent, principal: principalOf(agent) };
}

export function installAuth(app: FastifyInstance, deps: AuthDeps): void {
  app.decorateRequest('principal', undefined);
  app.decorateRequest('agent', undefined);
  app.decorateRequest('agentRead', undefined);

  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/v1/') && !route.config?.roles?.length) {
      throw new Error(`route ${route.method} ${route.url} declares no roles; every /v1 route must`);
    }
  });

  // Refusals are sent from here rather than thrown: plugins such as the queue dashboard install
  // error handlers of their own, which must never get to turn a 401 into something else.
  app.addHook('onRequest', async (request, reply) => {
    const roles = request.routeOptions.config.roles;
    if (!roles) return;
    try {
      const started = performance.now();
      const { basicAuth, agentReadBeside } = request.routeOptions.config;
      await authenticate(deps, request, basicAuth === true, agentReadBeside === true);
      deps.stages?.observe('auth', performance.now() - started);
      // The role check is a policy decision too, so operator policies can narrow it further.
      const route = `${request.method} ${request.routeOptions.url}`;
      const decision = deps.policy.callRoute(request.principal!, route, roles);
      if (!decision.allowed) {
        const by = decision.policies.length ? ` (denied by ${decision.policies.join(', ')})` : '';
        throw new SandgateError('forbidden', `this call needs the role ${roles.join(' or ')}${by}`);
      }
    } catch (e) {
      if (!isSandgateError(e)) throw e;
      return reply.code(e.status).headers(e.headers).send(errorBody(e.code, e.message));
    }
  });

  // A route that started on the agent read last answers nothing before the agent read again is
  // back (agentReadBeside): whatever it would have said (a record, a validation error, a
  // refusal), a revoked agent gets the refusal its request would have got here at once. An
  // agent that could not be read fails closed (503).
  app.addHook('onSend', async (request, reply, payload) => {
    if (!request.agentRead) return payload;
    try {
      await request.agentRead;
      return payload;
    } catch (e) {
      const refusal = isSandgateError(e)
        ? e
        : new SandgateError('dependency_unavailable', 'the agent could not be read; retry later');
      reply.code(refusal.status).headers(refusal.headers).header('content-type', 'application/json; charset=utf-8');
      return JSON.stringify(errorBody(refusal.code, refusal.message));
    }
  });
}
