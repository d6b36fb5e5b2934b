// kill -9 right after an acknowledged request: its audit record is on disk (it was made durable
// before the answer went out), and the log a crashed process leaves behind still verifies.
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, spawnSandgate, waitForOutput } from '../helpers/processes.ts';
import { dropPrefix, testEnv } from '../helpers/sandgate.ts';

const run = promisify(execFile);
const cleanup: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
});

describe('the service killed with SIGKILL', { timeout: 60_000 }, () => {
  it('keeps every acknowledged request in the log, and the log verifies', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'sandgate-crash-audit-'));
    const port = await freePort();
    const env = testEnv({
      PORT: String(port),
      SANDGATE_DATA_DIR: dataDir,
      SANDGATE_PROFILES_DIR: 'test/fixtures/profiles-js',
      SANDGATE_RUNNER_METRICS_PORT: '0',
    });
    cleanup.push(
      () => rm(dataDir, { recursive: true, force: true }),
      () => dropPrefix(env.SANDGATE_PREFIX!),
    );
    const child = spawnSandgate('all', env);
    cleanup.push(async () => child.proc.kill('SIGKILL'));
    await waitForOutput(child, /sandgate started/);

    const base = `http://127.0.0.1:${port}`;
    const admin = { authorization: `Bearer ${env.SANDGATE_ADMIN_TOKEN}`, 'content-type': 'application/json' };
    const post = (path: string, headers: Record<string, string>, body: unknown) =>
      fetch(`${base}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
    const agent = (await (await post('/v1/agents', admin, { name: 'crash', grants: { profiles: ['js'] } })).json()) as {
      id: string;
    };
    const { token } = (await (await post(`/v1/agents/${agent.id}/tokens`, admin, {})).json()) as { token: string };
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };

    const res = await post('/v1/executions', auth, {
      profile: 'js',
      code: 'while (true) {}',
      reasoning: 'acknowledged, then the lights go out',
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    child.proc.kill('SIGKILL');
    await child.exited;

    const dir = join(dataDir, 'audit');
    const text = (
      await Promise.all(
        (await readdir(dir)).filter((f) => f.endsWith('.jsonl')).map((f) => readFile(join(dir, f), 'utf8')),
      )
    ).join('');
    const requested = text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .find((r) => r.kind === 'execution.requested' && r.subject === id);
    expect(requested).toMatchObject({ agentId: agent.id, data: { reasoning: 'acknowledged, then the lights go out' } });

    // run() rejects on a non-zero exit: reaching the next line means verify passed.
    const verified = await run(process.execPath, [
      'bin/audit.ts',
      'verify',
      '--dir',
      dir,
      '--public-key',
      join(dataDir, 'keys', 'audit-signing.pub'),
    ]);
    expect(verified.stdout).toMatch(/^audit ok: \d+ records in 1 chains/);
  });
});
