// Who the bearer token belongs to, so a console can show a human the pages their role may use.
// An agent's token is refused (403): the console is for humans.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { Me } from '../../contract/console.ts';
import { ErrorBody, SandgateError } from '../../contract/errors.ts';

export const meRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/v1/me',
    {
      config: { roles: ['admin', 'operator', 'approver', 'auditor'] },
      schema: {
        summary: "The calling human's role, id and name",
        tags: ['agents'],
        response: { 200: Me, 401: ErrorBody, 403: ErrorBody },
      },
    },
    async (request) => {
      const p = request.principal!;
      if (p.role === 'admin') return { role: 'admin' as const, id: p.id, name: 'admin' };
      if (p.role === 'agent') throw new SandgateError('forbidden', 'the console is for humans, not agent tokens');
      return { role: p.role, id: p.id, name: p.name };
    },
  );
};
