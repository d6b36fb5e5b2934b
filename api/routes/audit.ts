// Reading the audit trail: GET /v1/audit (filters, pages) and GET /v1/audit/verify.

import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import {
  AuditKind,
  AuditRecord,
  type AuditVerifyResult,
  AuditVerifyResult as VerifyResult,
} from '../../contract/audit.ts';
import { ErrorBody } from '../../contract/errors.ts';
import type { AuditIndex } from '../../state/audit-index.ts';

export interface AuditRouteDeps {
  auditIndex: AuditIndex;
  verifyAudit: () => Promise<AuditVerifyResult>;
}

const AuditQuery = z.strictObject({
  taskId: z.string().max(200).optional(),
  agentId: z.string().max(200).optional(),
  kind: AuditKind.optional(),
  after: z.string().max(400).optional().describe('the `next` cursor of the previous page'),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 503: ErrorBody };

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
};
