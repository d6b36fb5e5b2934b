// `npm run audit -- trace TASK --dir DIR` tells a task's story from the audit files alone: run
// after the service has stopped and with Redis unreachable (REDIS_URL at a closed port) and its
// index gone, it prints the same lines GET /v1/tasks/:id/trace gave, hostile reasoning included
// as plain text. A task that is not in the files exits 1, bad usage exits 2.
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { oneLine } from '../../bin/audit-trace.ts';
import { dropPrefix, eventually, startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

const run = promisify(execFile);
let sg: TestSandgate;
let dir: string;
let taskId: string;
let story: string[];
// A forged second line, a terminal escape sequence and a bidi override: printed escaped, not acted on.
const REASONING =
  'because "the page" said <script>window.__xss=1</script>\n2026-01-01T00:00:00.000Z vera approved deploy \u001b[2J\u202eevil';

/** The CLI as a user runs it, with Redis out of reach. */
async function trace(...args: string[]) {
  try {
    const { stdout, stderr } = await run(process.execPath, ['bin/audit.ts', 'trace', ...args], {
      env: { ...process.env, REDIS_URL: 'redis://127.0.0.1:1', SANDGATE_DATA_DIR: join(dir, '..') },
      timeout: 20_000,
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

beforeAll(async () => {
  sg = await startSandgate();
  dir = join(sg.config.SANDGATE_DATA_DIR, 'audit');
  const a = await sg.agent();
  const inject = (url: string, payload: Record<string, unknown>) =>
    sg.app!.inject({ method: 'POST', url, headers: a.auth, payload });
  taskId = (await inject('/v1/tasks', { goal: 'add numbers' })).json().id;
  await inject('/v1/executions?wait=true', {
    profile: 'js',
    code: 'console.log(6*7); 1+1',
    taskId,
    reasoning: REASONING,
  });
  await inject(`/v1/tasks/${taskId}/usage`, { tokens: 120, cost: 0.01, reasoning: 'thinking' });
  const t = await eventually(async () => {
    const r = (await sg.app!.inject({ url: `/v1/tasks/${taskId}/trace`, headers: sg.admin })).json();
    return r.records.length >= 5 ? r : undefined;
  });
  story = t.story;
  // The service stops and its Redis state goes: only the files remain.
  await sg.close();
  await dropPrefix(sg.config.SANDGATE_PREFIX);
});
afterAll(async () => {
  await rm(sg.config.SANDGATE_DATA_DIR, { recursive: true, force: true });
});

describe('npm run audit -- trace', () => {
  it("prints the task's story from the files alone, line for line as the API told it", async () => {
    const out = await trace(taskId, '--dir', dir);
    expect(out.code, out.stderr).toBe(0);
    const lines = out.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(new RegExp(`^task ${taskId}: ${story.length} records from 1 chain files`));
    expect(lines.slice(1)).toEqual(story.map(oneLine));
    expect(lines).toHaveLength(story.length + 1); // the reasoning's newline made no line of its own
    expect(out.stdout.includes('\u001b') || out.stdout.includes('\u202e')).toBe(false);
    expect(out.stdout).toContain(
      '<script>window.__xss=1</script>\\n2026-01-01T00:00:00.000Z vera approved deploy \\u001b[2J\\u202eevil',
    );
    expect(out.stdout).toContain('task created: "add numbers"');
    expect(out.stdout).toMatch(/run succeeded .*stdout: "42\\n"/);
    expect(out.stdout).toContain('reported 120 model tokens, cost 0.01 because "thinking"');
  });

  it('prints the records as JSON lines with --json, and uses $SANDGATE_DATA_DIR/audit without --dir', async () => {
    const out = await trace(taskId, '--json');
    expect(out.code, out.stderr).toBe(0);
    const records = out.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(records).toHaveLength(story.length);
    expect(records.every((r) => r.taskId === taskId)).toBe(true);
    expect(records[0].kind).toBe('task.created');
  });

  it('exits 1 for a task not in the files and 2 for bad usage', async () => {
    const none = await trace('task_notInTheseFiles', '--dir', dir);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no records of task task_notInTheseFiles');
    expect((await trace('--dir', dir)).code).toBe(2);
    expect((await trace(taskId, 'extra', '--dir', dir)).code).toBe(2);
    expect((await trace(taskId, '--bogus')).code).toBe(2);
  });
});
