// /admin/queues: bull-board over the execution and action queues, admin only. A browser gets a Basic-auth
// prompt (user "admin", password = the admin token); scripts may send the Bearer token.
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';

export const DASHBOARD_PATH = '/admin/queues';

export async function registerQueueDashboard(app: FastifyInstance, queues: readonly Queue[]): Promise<void> {
  const serverAdapter = new FastifyAdapter();
  createBullBoard({ queues: queues.map((q) => new BullMQAdapter(q, { readOnlyMode: false })), serverAdapter });
  serverAdapter.setBasePath(DASHBOARD_PATH);
  await app.register(
    async (scope) => {
      // Every dashboard route, UI and JSON alike, is admin-only.
      scope.addHook('onRoute', (route) => {
        route.config = { ...(route.config as object), roles: ['admin'], basicAuth: true };
      });
      await scope.register(serverAdapter.registerPlugin());
    },
    { prefix: DASHBOARD_PATH },
  );
}
