// The console: static files under /console (the operator pages at /console/, the approvals page
// at /console/approvals), talking to the same REST API. The pages hold no data; every data call
// they make carries the human's bearer token, so these routes declare no roles. The files are an
// allow-list read once at start-up (html, js, css under this directory); the headers forbid
// inline script and style, framing, form posts and any origin but this one.
import { readdir, readFile } from 'node:fs/promises';
import { extname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
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

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** Pages served under a name of their own besides their file's. */
const ALIASES: Record<string, readonly string[]> = {
  'index.html': ['/console', '/console/'],
  'approvals.html': ['/console/approvals'],
};

const HERE = fileURLToPath(new URL('.', import.meta.url));

async function assets(dir: string, depth = 0): Promise<string[]> {
  if (depth > 3) return [];
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await assets(path, depth + 1)));
    else if (TYPES[extname(entry.name)]) out.push(relative(HERE, path));
  }
  return out;
}

export const consoleRoutes: FastifyPluginAsync = async (app) => {
  for (const file of await assets(HERE)) {
    const body = await readFile(join(HERE, file));
    const type = TYPES[extname(file)]!;
    const urls = ALIASES[file] ?? (file.endsWith('.html') ? [] : [`/console/${file}`]);
    for (const url of urls) {
      app.get(url, { schema: { hide: true } }, async (_request, reply) =>
        reply.headers(SECURITY_HEADERS).type(type).send(body),
      );
    }
  }
};
