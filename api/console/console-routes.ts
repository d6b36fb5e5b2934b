// The approvals console: a page where a human approver signs in with their token and decides on
// pending actions. Served as static files under /console; it talks to the same REST API.
// The page itself is public (it holds no data); every data call it makes carries the approver's
// bearer token, so these routes declare no roles. The headers below forbid inline script and
// style, framing, form posts and any origin but this one.
import { readFile } from 'node:fs/promises';
import type { FastifyPluginAsync } from 'fastify';

export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const SECURITY_HEADERS = {
  'content-security-policy': CONSOLE_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
} as const;

const ASSETS = [
  { url: '/console/approvals', file: 'approvals.html', type: 'text/html; charset=utf-8' },
  { url: '/console/approvals.js', file: 'approvals.js', type: 'text/javascript; charset=utf-8' },
  { url: '/console/console.css', file: 'console.css', type: 'text/css; charset=utf-8' },
] as const;

export const consoleRoutes: FastifyPluginAsync = async (app) => {
  for (const asset of ASSETS) {
    const body = await readFile(new URL(asset.file, import.meta.url));
    app.get(asset.url, { schema: { hide: true } }, async (_request, reply) =>
      reply.headers(SECURITY_HEADERS).type(asset.type).send(body),
    );
  }
};
