// Reading the audit trail: GET /v1/audit (filters, pages) and GET /v1/audit/verify.

import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import {
  AuditKind,
  AuditRecord,
  type AuditVerifyResult,
  AuditVerifyResult as VerifyResult,
} from '../../contract/audit.ts';
import { AuditRecordView } from '../../contract/console.ts';
import { ErrorBody, SandgateError } from '../../contract/errors.ts';
import { type CitedVerifyDeps, verifyCited } from '../../guard/audit/cited-verify.ts';
import { storyLine } from '../../guard/audit/story.ts';
import { actorsOf, namePeople, type PeopleDeps } from '../../guard/evidence/people.ts';
import type { AuditIndex } from '../../state/audit-index.ts';

export interface AuditRouteDeps extends PeopleDeps {
  auditIndex: AuditIndex;
  verifyAudit: () => Promise<AuditVerifyResult>;
  cited: CitedVerifyDeps;
}

const AuditQuery = z.strictObject({
  taskId: z.string().max(200).optional(),
  agentId: z.string().max(200).optional(),
  kind: AuditKind.optional(),
  after: z.string().max(400).optional().describe('the `next` cursor of the previous page'),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 503: ErrorBody };

export const auditRoutes: FastifyPluginAsyncZod<AuditRouteDeps> = async (app, deps) => {
  app.get(
    '/v1/audit',
    {
      config: { roles: ['auditor', 'admin'] },
      schema: {
        summary: 'Audit records in time order, filtered by task, agent or kind; paginated with `after`',
        tags: ['audit'],
        querystring: AuditQuery,
        response: { 200: z.object({ records: z.array(AuditRecord), next: z.string().nullable() }), ...errors },
      },
    },
    async (request) => deps.auditIndex.query(request.query),
  );

  app.get(
    '/v1/audit/verify',
    {
      config: { roles: ['auditor', 'admin'] },
      schema: {
        summary: "Verifies this process's audit files (chains, hashes, signed checkpoints); names the first bad record",
        tags: ['audit'],
        response: { 200: VerifyResult, ...errors },
      },
    },
    async () => deps.verifyAudit(),
  );

  app.get(
    '/v1/audit/records/:id',
    {
      // Operators follow an alert to the records that triggered it.
      config: { roles: ['auditor', 'admin', 'operator'] },
      schema: {
        summary: 'One audit record, its story line, who it names, and whether it matches the audit files',
        tags: ['audit'],
        params: z.strictObject({ id: z.string().min(3).max(200) }),
        response: { 200: AuditRecordView, ...errors },
      },
    },
    async (request) => {
      const record = await deps.auditIndex.get(request.params.id);
      if (!record) throw new SandgateError('not_found', `no audit record ${request.params.id}`);
      const [people, verification] = await Promise.all([
        namePeople(actorsOf(record), deps),
        verifyCited([record], deps.cited),
      ]);
      return { record, story: storyLine(record), people, verification };
    },
  );
};
