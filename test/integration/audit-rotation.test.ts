// Audit files that outlive a pod, through the real service: an API and a runner process with
// small segments and an archive directory rotate many times under load; `npm run audit -- verify`
// passes while they rotate, after they stop (everything archived), fails naming a removed segment,
// and `npm run audit -- trace` tells a task's story across segments. A process killed with
// SIGKILL mid-rotation, then restarted on the same directories, still verifies.
import { execFile } from 'node:child_process';
import { copyFile, cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { type Child, freePort, spawnSandgate, waitForOutput } from '../helpers/processes.ts';
import { dropPrefix, testEnv } from '../helpers/sandgate.ts';

const execFileP = promisify(execFile);
const cleanup: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
});

async function cli(env: Record<string, string>, ...args: string[]) {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, ['bin/audit.ts', ...args], {
      env: { ...process.env, ...env },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

async function setup() {
  const root = await mkdtemp(join(tmpdir(), 'sandgate-rotation-'));
  const env = testEnv({
    SANDGATE_DATA_DIR: join(root, 'data'),
    SANDGATE_AUDIT_ARCHIVE_DIR: join(root, 'archive'),
    SANDGATE_AUDIT_SEGMENT_BYTES: '8192',
    SANDGATE_AUDIT_LIVE_SEGMENTS: '1',
    SANDGATE_PROFILES_DIR: 'test/fixtures/profiles-js',
    SANDGATE_RUNNER_METRICS_PORT: '0',
  });
  cleanup.push(
    () => rm(root, { recursive: true, force: true }),
    () => dropPrefix(env.SANDGATE_PREFIX!),
  );
  return { root, env, live: join(root, 'data', 'audit'), archive: join(root, 'archive') };
}

async function start(env: Record<string, string>, mode: 'all' | 'api' | 'runner', port?: number): Promise<Child> {
  const child = spawnSandgate(mode, { ...env, ...(port ? { PORT: String(port) } : {}) });
  cleanup.push(async () => child.proc.kill('SIGKILL'));
  await waitForOutput(child, /sandgate started/, 30_000);
  return child;
}

function client(port: number, adminToken: string) {
  const base = `http://127.0.0.1:${port}`;
  const post = async (path: string, auth: string, body: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${auth}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  return {
    async agent() {
      const a = await post('/v1/agents', adminToken, {
        name: 'rotor',
        grants: { profiles: ['js'] },
        limits: { runsPerMinute: 100_000 },
      });
      const t = await post(`/v1/agents/${a.body.id}/tokens`, adminToken, { ttlSeconds: 900 });
      const token = t.body.token as string;
      const task = await post('/v1/tasks', token, { goal: 'many small sums', budget: { maxRuns: 100_000 } });
      return { token, taskId: task.body.id as string };
    },
    run: (token: string, taskId: string, i: number) =>
      post('/v1/executions?wait=true', token, { profile: 'js', code: `${i} + 1`, taskId, reasoning: `sum ${i}` }),
  };
}

const chainNames = async (dir: string) => (await readdir(dir).catch(() => [])).filter((n) => n.endsWith('.jsonl'));

describe('audit segments through the service', { timeout: 180_000 }, () => {
  it('rotate under load in two processes, verify during and after, fail on a removed segment, trace across', async () => {
    const { env, live, archive } = await setup();
    const port = await freePort();
    const api = await start(env, 'api', port);
    const runner = await start(env, 'runner');
    const c = client(port, env.SANDGATE_ADMIN_TOKEN!);
    const { token, taskId } = await c.agent();

    let done = 0;
    let failures = 0;
    let firstFailure: unknown;
    const load = Promise.all(
      Array.from({ length: 4 }, async (_, w) => {
        for (let i = w; i < 160; i += 4) {
          const r = await c.run(token, taskId, i);
          if (r.status === 200 && r.body.status === 'succeeded') done++;
          else {
            failures++;
            firstFailure ??= r;
          }
        }
      }),
    );
    // verify beside two writers that are rotating and archiving
    const during: Array<{ code: number; stdout: string }> = [];
    while (done < 120 && during.length < 6) {
      during.push(await cli(env, 'verify'));
      await new Promise((r) => setTimeout(r, 300));
    }
    await load;
    expect(failures, JSON.stringify(firstFailure)).toBe(0);
    expect(during.length).toBeGreaterThan(0);
    for (const v of during) expect(v, v.stdout).toMatchObject({ code: 0 });

    const archivedWhileRunning = await chainNames(archive);
    expect(archivedWhileRunning.length).toBeGreaterThan(4); // sealed segments moved while the service ran

    api.proc.kill('SIGTERM');
    runner.proc.kill('SIGTERM');
    expect(await api.exited).toBe(0);
    expect(await runner.exited).toBe(0);
    // Closed cleanly: both chains, every segment and head file, are in the archive.
    expect(await chainNames(live)).toEqual([]);
    const segments = (await chainNames(archive)).sort();
    expect(segments.filter((n) => n.includes('~')).length).toBeGreaterThan(5);
    const after = await cli(env, 'verify');
    expect(after.code, after.stdout).toBe(0);
    expect(after.stdout).toMatch(/^audit ok: \d+ records in 2 chains, 2 closed cleanly/);

    // the story from the files, across segments and directories
    const trace = await cli({ ...env, REDIS_URL: 'redis://127.0.0.1:1' }, 'trace', taskId);
    expect(trace.code, trace.stderr).toBe(0);
    expect(trace.stdout).toContain(`task ${taskId}:`);
    for (const i of [0, 77, 159]) expect(trace.stdout).toContain(`sum ${i}`);

    // A middle segment of the busiest chain removed: verify exits 1 naming it.
    const byWriter = new Map<string, string[]>();
    for (const n of segments) {
      const writer = n.replace(/(~\d+)?\.jsonl$/, '');
      byWriter.set(writer, [...(byWriter.get(writer) ?? []), n]);
    }
    const [writer, names] = [...byWriter.entries()].sort((a, b) => b[1].length - a[1].length)[0]!;
    const middle = `${writer}~${Math.floor(names.length / 2)}.jsonl`;
    await rm(join(archive, middle));
    const broken = await cli(env, 'verify');
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain(`audit FAILED at ${middle}:0: segment missing: ${middle}`);
  });

  it('killed with SIGKILL mid-rotation, again and again, then restarted: still verifies', async () => {
    const { root, env, live, archive } = await setup();
    const envSmall = { ...env, SANDGATE_AUDIT_SEGMENT_BYTES: '2048' };
    let rounds = 0;
    for (; rounds < 4; rounds++) {
      const port = await freePort();
      const proc = await start(envSmall, 'all', port);
      const c = client(port, env.SANDGATE_ADMIN_TOKEN!);
      const { token, taskId } = await c.agent();
      const load = Promise.all(
        Array.from({ length: 6 }, async (_, w) => {
          for (let i = w; i < 100_000; i += 6) await c.run(token, taskId, i);
        }),
      ).catch(() => {}); // the kill ends it
      await new Promise((r) => setTimeout(r, 700 + rounds * 300));
      proc.proc.kill('SIGKILL');
      await proc.exited;
      await load;
      const v = await cli(env, 'verify');
      expect(v.code, `after kill ${rounds + 1}: ${v.stdout}`).toBe(0);
    }
    // Some kill landed after at least one rotation of each chain (several segments per writer).
    expect((await chainNames(live)).filter((n) => n.includes('~')).length).toBeGreaterThan(rounds);
    // A copy of the state as the kills left it verifies on its own, too (nothing depends on the live processes).
    const copy = join(root, 'copy');
    await cp(join(root, 'data'), copy, { recursive: true });
    await copyFile(join(root, 'data', 'keys', 'audit-signing.pub'), join(copy, 'keys', 'audit-signing.pub'));
    const again = await cli({ ...env, SANDGATE_DATA_DIR: copy }, 'verify', '--archive', archive);
    expect(again.code, again.stdout).toBe(0);

    // Restart on the same directories and close cleanly: the dead chains verify beside the new one.
    const port = await freePort();
    const proc = await start(envSmall, 'all', port);
    const c = client(port, env.SANDGATE_ADMIN_TOKEN!);
    const { token, taskId } = await c.agent();
    for (let i = 0; i < 20; i++) expect((await c.run(token, taskId, i)).status).toBe(200);
    proc.proc.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
    const final = await cli(env, 'verify');
    expect(final.code, final.stdout).toBe(0);
    expect(final.stdout).toMatch(new RegExp(`records in ${rounds + 1} chains, 1 closed cleanly`));
  });
});
