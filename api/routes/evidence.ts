// The evidence pack of an agent for a period (guard/evidence/evidence-pack.ts): one JSON that a
// compliance review reads, every entry citing its audit record, with those records' verification.
// The console prints it at /console/#/evidence/<agent id>.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AgentId } from '../../contract/agent.ts';
import { Evidence, EvidenceQuery } from '../../contract/console.ts';
import { ErrorBody, SandgateError } from '../../contract/errors.ts';
import { buildEvidence, type EvidenceDeps } from '../../guard/evidence/evidence-pack.ts';
import type { Overview } from '../../guard/watch/overview.ts';
import type { AgentStore } from '../../state/agents.ts';

export interface EvidenceRouteDeps extends EvidenceDeps {
  agents: AgentStore;
  overview: Overview;
}

export const evidenceRoutes: FastifyPluginAsyncZod<EvidenceRouteDeps> = async (app, deps) => {
  app.get(
    '/v1/agents/:id/evidence',
    {
      config: { roles: ['auditor', 'admin'] },
      schema: {
        summary:
          'Evidence pack of an agent for a period: who created it and granted what, tokens issued, approvals and approvers, alerts and their handling, each citing its audit record, with their verification',
        tags: ['audit'],
        params: z.strictObject({ id: AgentId }),
        querystring: EvidenceQuery,
        response: { 200: Evidence, 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody },
      },
    },
    async (request) => {
      const agent = await deps.agents.get(request.params.id);
      if (!agent) throw new SandgateError('not_found', `no agent ${request.params.id}`);
      const toMs = request.query.to ? Date.parse(request.query.to) : Date.now();
      const fromMs = request.query.from ? Date.parse(request.query.from) : Date.parse(agent.createdAt);
      if (fromMs > toMs) throw new SandgateError('validation_failed', '`from` must not be after `to`');
      return buildEvidence(await deps.overview.one(agent), { fromMs, toMs }, request.principal!.id, deps);
    },
  );
};
