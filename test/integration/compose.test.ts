// deploy/compose.yaml for real: the service image built offline (scripts/build-service-image),
// `docker-compose up` of Redis, the API and two runners on this machine's Docker Engine, python
// and js runs served with both runners taking work, the audit log verified inside the API
// container, then `down -v` with nothing left behind. Skipped, saying why, only where
// docker-compose or the Docker Engine is not there.
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/processes.ts';
import { eventually } from '../helpers/sandgate.ts';

const run = promisify(execFile);

function unavailable(): string | null {
  if (spawnSync('docker-compose', ['version'], { timeout: 20_000 }).status !== 0)
    return 'docker-compose is not installed (scripts/setup installs it)';
  if (spawnSync('docker', ['info'], { timeout: 20_000 }).status !== 0) return 'the Docker Engine does not answer';
  return null;
}
const skip = unavailable();

const project = `sgcompose${randomBytes(4).toString('hex')}`;
const prefix = `sgcompose-${randomBytes(4).toString('hex')}`;
const adminToken = `admin-${randomBytes(16).toString('hex')}`;
let env: Record<string, string> = {};
const compose = (args: string[], timeout = 180_000) =>
  run('docker-compose', ['-p', project, '-f', 'deploy/compose.yaml', ...args], {
    env: { ...process.env, ...env },
    timeout,
    maxBuffer: 16 << 20,
  });
let up = false;
afterAll(async () => {
  if (up) await compose(['down', '-v', '--timeout', '30'], 120_000).catch(() => {});
});

describe('deploy/compose.yaml', { timeout: 900_000 }, () => {
  it.skipIf(skip !== null)(
    `serves python and js runs from two runners, verifies its audit, and comes down clean${skip ? ` (skipped: ${skip})` : ''}`,
    async () => {
      await run('scripts/build-service-image', [], { timeout: 600_000 });
      const port = await freePort();
      env = {
        SANDGATE_PORT: String(port),
        SANDGATE_ADMIN_TOKEN: adminToken,
        SANDGATE_PREFIX: prefix,
        DOCKER_GID: String(statSync('/var/run/docker.sock').gid),
        // small segments: the run below seals a few and the runners archive them
        SANDGATE_AUDIT_SEGMENT_BYTES: '16384',
      };
      up = true;
      await compose(['up', '-d']);
      const base = `http://127.0.0.1:${port}`;
      const call = async (path: string, token: string, body?: unknown) => {
        const res = await fetch(`${base}${path}`, {
          method: body === undefined ? 'GET' : 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          ...(body !== undefined && { body: JSON.stringify(body) }),
          signal: AbortSignal.timeout(90_000),
        });
        return { status: res.status, body: (await res.json()) as Record<string, unknown> };
      };
      // Ready: Redis, and a runner taking each engine's jobs (the API's /readyz).
      const until = Date.now() + 180_000;
      for (;;) {
        const ready = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(3000) }).catch(() => null);
        if (ready?.status === 200) break;
        if (Date.now() > until) {
          const logs = await compose(['logs', '--tail', '30']).catch((e) => e);
          throw new Error(`not ready in time: ${ready?.status} ${await ready?.text()}\n${logs.stdout}`);
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
      const ps = (await compose(['ps'])).stdout;
      for (const service of ['api', 'runner-1', 'runner-2', 'redis'])
        expect(ps).toMatch(new RegExp(`_${service}_1 .*Up`));

      const agent = await call('/v1/agents', adminToken, {
        name: 'compose',
        grants: { profiles: ['js', 'python'] },
        limits: { runsPerMinute: 10_000 },
      });
      expect(agent.status).toBe(201);
      const { body: minted } = await call(`/v1/agents/${agent.body.id}/tokens`, adminToken, { ttlSeconds: 900 });
      const token = minted.token as string;
      const runs = await Promise.all([
        ...Array.from({ length: 8 }, (_, i) =>
          call('/v1/executions?wait=true', token, { profile: 'python', code: `print(${i} * 7)` }),
        ),
        ...Array.from({ length: 16 }, (_, i) =>
          call('/v1/executions?wait=true', token, { profile: 'js', code: `${i} + 1` }),
        ),
      ]);
      runs.forEach((r, i) => {
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        expect(r.body.status).toBe('succeeded');
        if (i < 8) expect(r.body.stdout).toBe(`${i * 7}\n`);
        else expect(r.body.result).toBe(i - 8 + 1);
      });

      // Both runners took work: each run.started record is written by the runner that ran it,
      // whose chain is named after its container's hostname.
      // The read index is a copy fed after each durable batch: it may trail the answers a little.
      const records = await eventually(
        async () => {
          const started = await call(`/v1/audit?kind=run.started&agentId=${agent.body.id}&limit=100`, adminToken);
          const found = started.body.records as Array<{ writer: string; subject: string }>;
          return found.length >= 24 ? found : undefined;
        },
        10_000,
        'every run.started in the audit index',
      );
      expect(records).toHaveLength(24);
      const byRunner = new Map<string, number>();
      for (const r of records) {
        const host = r.writer.replace(/-\d+-[0-9a-f]+$/, '');
        byRunner.set(host, (byRunner.get(host) ?? 0) + 1);
      }
      expect([...byRunner.keys()].sort()).toEqual(['runner-1', 'runner-2']);

      // The audit log of all three processes, live and archived, verifies inside the API container.
      const verify = await compose(['exec', '-T', 'api', 'node', 'bin/audit.ts', 'verify']);
      expect(verify.stdout).toMatch(/^audit ok: \d+ records in 3 chains/);

      await compose(['down', '-v', '--timeout', '30'], 120_000);
      up = false;
      // Nothing left: no container of this project, and none of the runners' sandboxes.
      const left = await run('docker', ['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`]);
      expect(left.stdout.trim()).toBe('');
      const sandboxes = await run('docker', ['ps', '-aq', '--filter', `label=sandgate.prefix=${prefix}`]);
      expect(sandboxes.stdout.trim()).toBe('');
    },
  );
});
