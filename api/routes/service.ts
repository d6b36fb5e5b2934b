// Liveness, readiness, metrics and the profile catalogue.

import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Registry } from 'prom-client';
import { z } from 'zod';
import { ErrorBody, errorBody } from '../../contract/errors.ts';
import { ProfileView } from '../../contract/profile.ts';
import { LATE, within } from '../../contract/within.ts';
import { mayRunProfile } from '../../guard/policy/authorize.ts';
import type { PolicyDecisionPoint } from '../../guard/policy/decision-point.ts';
import type { ProfileSet } from '../../guard/profiles.ts';

export type ReadinessChecks = Readonly<Record<string, () => Promise<void>>>;

export interface ServiceRouteDeps {
  registry: Registry;
  profiles: ProfileSet;
  readiness: ReadinessChecks;
  /** Names of the profiles that can run now. */
  availableProfiles: () => Promise<ReadonlySet<string>>;
  policy: PolicyDecisionPoint;
}

const Readiness = z.object({ status: z.enum(['ok', 'unavailable']), checks: z.record(z.string(), z.string()) });

/** Runs every check (each bounded): what /readyz answers, on the API and on a runner's metrics port. */
export async function checkReadiness(
  readiness: ReadinessChecks,
): Promise<{ ok: boolean; body: { status: 'ok' | 'unavailable'; checks: Record<string, string> } }> {
  const entries = await Promise.all(
    Object.entries(readiness).map(async ([name, check]) => {
      try {
        if ((await within(check(), 2000)) === LATE) throw new Error('no answer within 2000 ms');
        return [name, 'ok'] as const;
      } catch (e) {
        return [name, (e as Error).message || 'failed'] as const;
      }
    }),
  );
  const ok = entries.every(([, v]) => v === 'ok');
  return { ok, body: { status: ok ? 'ok' : 'unavailable', checks: Object.fromEntries(entries) } };
}

export const serviceRoutes: FastifyPluginAsyncZod<ServiceRouteDeps> = async (app, deps) => {
  app.get(
    '/healthz',
    {
      schema: {
        summary: 'The process is up',
        tags: ['service'],
        response: { 200: z.object({ status: z.literal('ok') }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Redis and every engine a loaded profile needs answer',
        tags: ['service'],
        response: { 200: Readiness, 503: Readiness },
      },
    },
    async (_request, reply) => {
      const { ok, body } = await checkReadiness(deps.readiness);
      return reply.code(ok ? 200 : 503).send(body);
    },
  );

  app.get('/metrics', { schema: { summary: 'Prometheus metrics', tags: ['service'] } }, async (_request, reply) => {
    try {
      const text = await deps.registry.metrics();
      return reply.type(deps.registry.contentType).send(text);
    } catch (e) {
      return reply
        .code(503)
        .send(errorBody('dependency_unavailable', `metrics could not be collected: ${(e as Error).message}`));
    }
  });

  app.get(
    '/v1/profiles',
    {
      config: { roles: ['agent', 'admin', 'approver', 'auditor'] },
      schema: {
        summary:
          'Sandbox profiles and their ceilings: to an agent, only those it may run (its grants, narrowed by its token and the policies)',
        tags: ['service'],
        response: { 200: z.object({ profiles: z.array(ProfileView) }), 401: ErrorBody },
      },
    },
    async (request) => {
      const principal = request.principal!;
      // An agent is not told of profiles it may not run, nor of their ceilings (refuse before you reveal).
      const caller = principal.role === 'agent' ? { agent: request.agent!, scopes: principal.scopes } : undefined;
      const shown = [...deps.profiles.values()].filter((p) => !caller || mayRunProfile(deps.policy, caller, p));
      const available = await deps.availableProfiles();
      return {
        profiles: shown.map((p) => ({
          name: p.name,
          description: p.description,
          engine: p.engine,
          language: p.language,
          limits: p.limits,
          available: available.has(p.name),
        })),
      };
    },
  );
};
