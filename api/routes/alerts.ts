// Alerts: what the detectors raised, for the humans who watch the agents. Operators (and the
// admin) acknowledge and resolve them; auditors read them.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ErrorBody, SandgateError } from '../../contract/errors.ts';
import { Alert, AlertId, AlertQuery, AlertUpdate } from '../../contract/watch.ts';
import type { Watch } from '../../guard/watch/watch.ts';
import type { AlertStore } from '../../state/alerts.ts';

export interface AlertRouteDeps {
  alerts: AlertStore;
  watch: Watch;
}

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody };

export const alertRoutes: FastifyPluginAsyncZod<AlertRouteDeps> = async (app, { alerts, watch }) => {
  app.get(
    '/v1/alerts',
    {
      config: { roles: ['operator', 'admin', 'auditor'] },
      schema: {
        summary: 'Alerts, newest first, by status, agent, task or detector',
        tags: ['alerts'],
        querystring: AlertQuery,
        response: { 200: z.object({ alerts: z.array(Alert) }), ...errors },
      },
    },
    async (request) => ({ alerts: await alerts.list(request.query) }),
  );

  app.get(
    '/v1/alerts/:id',
    {
      config: { roles: ['operator', 'admin', 'auditor'] },
      schema: {
        summary: 'Read an alert',
        tags: ['alerts'],
        params: z.strictObject({ id: AlertId }),
        response: { 200: Alert, ...errors },
      },
    },
    async (request) => {
      const alert = await alerts.get(request.params.id);
      if (!alert) throw new SandgateError('not_found', `no alert ${request.params.id}`);
      return alert;
    },
  );

  app.post(
    '/v1/alerts/:id',
    {
      config: { roles: ['operator', 'admin'] },
      schema: {
        summary: 'Acknowledge or resolve an alert (who and why are recorded); resuming what it paused is separate',
        tags: ['alerts'],
        params: z.strictObject({ id: AlertId }),
        body: AlertUpdate,
        response: { 200: Alert, ...errors },
      },
    },
    async (request) =>
      watch.handle(request.params.id, request.body.status, request.principal!.id, request.body.reason ?? null),
  );
};
