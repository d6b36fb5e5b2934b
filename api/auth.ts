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
  }
  interface FastifyRequest {
    principal: Principal | undefined;
    agent: Agent | undefined;
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

async function authenticate(deps: AuthDeps, request: FastifyRequest, allowBasic: boolean): Promise<void> {
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
  const { agent, principal } = await authenticateAgent(deps, token);
  request.agent = agent;
  request.principal = principal;
}

/**
 * An agent token for `audience` (default: the REST API): signature, expiry, then the agent read
 * from Redis on every call, so a revocation holds from the next request on (never cached).
 */
export async function authenticateAgent(
  deps: Pick<AuthDeps, 'tokens' | 'agents'>,
  token: string,
  audience?: string,
): Promise<{ agent: Agent; principal: Extract<Principal, { role: 'agent' }> }> {
  const claims = await deps.tokens.verify(token, audience);
  const agent = await deps.agents.get(claims.agentId);
  if (!agent) throw new SandgateError('unauthorized', 'the bearer token is not valid');
  if (agent.revokedAt) throw new SandgateError('agent_revoked', 'this agent has been revoked');
  if (claims.generation !== agent.tokenGeneration) {
    throw new SandgateError('agent_revoked', 'this token was minted before the agent was revoked: mint a new one');
  }
  return {
    agent,
    principal: {
      role: 'agent',
      id: agent.id,
      agentId: agent.id,
      tokenId: claims.tokenId,
      scopes: claims.scopes,
      taskId: claims.taskId,
    },
  };
}

export function installAuth(app: FastifyInstance, deps: AuthDeps): void {
  app.decorateRequest('principal', undefined);
  app.decorateRequest('agent', undefined);

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
      await authenticate(deps, request, request.routeOptions.config.basicAuth === true);
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
}
