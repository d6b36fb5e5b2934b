// Audit files that outlive a pod, through the real service: an API and a runner process with
// small segments and an archive directory rotate many times under load; `npm run audit -- verify`
// passes while they rotate, after they stop (everything archived), fails naming a removed segment,
// and `npm run audit -- trace` tells a task's story across segments. A process killed with
// SIGKILL mid-rotation, then restarted on the same directories, still verifies.
import { execFile } from 'node:child_process';
import { copyFile, cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { generateAuditSigner } from '../../guard/audit/audit-signer.ts';
import { createAuditWriter } from '../../guard/audit/audit-writer.ts';
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
    // task.created, then per run execution.requested, run.started, run.finished
    expect(trace.stdout.split('\n')[0]).toMatch(
      new RegExp(`^task ${taskId}: ${1 + 160 * 3} records from \\d+ chain files`),
    );
    const missing = Array.from({ length: 160 }, (_, i) => i).filter((i) => !trace.stdout.includes(`"sum ${i}"`));
    expect(missing).toEqual([]);

    // A middle segment of the busiest chain removed: verify exits 1 naming it.
    const byWriter = new Map<string, string[]>();
    for (const n of segments) {
      const writer = n.replace(/(~\d+)?\.jsonl$/, '');
      byWriter.set(writer, [...(byWriter.get(writer) ?? []), n]);
    }
    const [writer, names] = [...byWriter.entries()].sort((a, b) => b[1].length - a[1].length)[0]!;
    const middle = `${writer}~${Math.floor(names.length / 2)}.jsonl`;
    const kept = await readFile(join(archive, middle));
    await rm(join(archive, middle));
    const broken = await cli(env, 'verify');
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain(`audit FAILED at ${middle}:0: segment missing: ${middle}`);
    await writeFile(join(archive, middle), kept);
    expect((await cli(env, 'verify')).code).toBe(0);

    // The last archived segment (the closed chain's newest) removed: the head file names a checkpoint no file holds.
    const newest = `${writer}~${names.length - 1}.jsonl`;
    const newestBytes = await readFile(join(archive, newest));
    await rm(join(archive, newest));
    const cut = await cli(env, 'verify');
    expect(cut.code).toBe(1);
    expect(cut.stdout).toMatch(/tail truncated or chain rewritten: the head file's checkpoint/);
    await writeFile(join(archive, newest), newestBytes);

    // Two segments swapped by name: each checkpoint signs the segment it is in.
    const [x, y] = [`${writer}~1.jsonl`, `${writer}~2.jsonl`];
    const [bx, by] = [await readFile(join(archive, x)), await readFile(join(archive, y))];
    await writeFile(join(archive, x), by);
    await writeFile(join(archive, y), bx);
    const swapped = await cli(env, 'verify');
    expect(swapped.code).toBe(1);
    expect(swapped.stdout).toContain(`audit FAILED at ${x}:1`);
    expect(swapped.stdout).toMatch(/renamed or reordered/);
    await writeFile(join(archive, x), bx);
    await writeFile(join(archive, y), by);

    // A sealed segment cut back by its last line (its seal).
    await writeFile(join(archive, x), bx.subarray(0, bx.lastIndexOf(10, bx.length - 2) + 1));
    const truncated = await cli(env, 'verify');
    expect(truncated.code).toBe(1);
    expect(truncated.stdout).toContain(`audit FAILED at ${x}:`);
    expect(truncated.stdout).toMatch(/sealed segment does not end (with its signed checkpoint|where)/);
    await writeFile(join(archive, x), bx);
    expect((await cli(env, 'verify')).code).toBe(0);
  });

  it('trace prints every line of a long story across segments (none cut when the CLI exits into a pipe)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sandgate-trace-long-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const w = await createAuditWriter({ dir, signer: generateAuditSigner(), segmentMaxBytes: 8192 });
    for (let i = 0; i < 3000; i += 100)
      await Promise.all(
        Array.from({ length: 100 }, (_, k) =>
          w.append({ kind: 'task.created', taskId: 'long', data: { goal: `goal ${i + k}` } }),
        ),
      );
    await w.close();
    expect(w.stats().rotations).toBeGreaterThan(20);
    const trace = await cli({}, 'trace', 'long', '--dir', dir);
    expect(trace.code, trace.stderr).toBe(0);
    const lines = trace.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^task long: 3000 records from \d+ chain files/);
    expect(lines).toHaveLength(3001);
    expect(lines.at(-1)).toContain('"goal 2999"');
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
