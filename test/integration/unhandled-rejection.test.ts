// An unhandled rejection anywhere is a bug, and each place one can happen fails the tests: in a
// test file (vitest fails the run and the summary counts it), and in a spawned service process
// (bin/sandgate.ts logs it as a fatal line with its stack and exits 1; the helper reports it and
// fails the test that spawned it).
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { freePort, spawnSandgate, takeChildFaults } from '../helpers/processes.ts';
import { testEnv } from '../helpers/sandgate.ts';

const FIXTURES = 'test/fixtures/unhandled';

/** Runs vitest on one fixture file; resolves with its exit code and output, never rejects. */
async function vitestOn(name: string): Promise<{ code: number; output: string }> {
  const args = ['node_modules/vitest/vitest.mjs', 'run', '--config', `${FIXTURES}/vitest.config.ts`, name];
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, args, {
      env: { ...process.env, NO_COLOR: '1' },
      timeout: 60_000,
    });
    return { code: 0, output: stdout + stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, output: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

describe('an unhandled rejection', { timeout: 60_000 }, () => {
  it('in a test file fails the vitest run, and the summary line counts it', async () => {
    const { code, output } = await vitestOn('in-process');
    expect(code).not.toBe(0);
    expect(output).toMatch(/fixture: a rejection nobody handles/);
    expect(output).toMatch(/fixture: thrown from a timer/);
    expect(output).toMatch(/^vitest: 2 passed, 2 failed, 0 skipped \(2 unhandled errors\)$/m);
  });

  it('in a service process is one fatal line with its stack, exit 1, and the helper reports it', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'sg-unhandled-'));
    try {
      const env = testEnv({
        PORT: String(await freePort()),
        SANDGATE_DATA_DIR: dataDir,
        SANDGATE_PROFILES_DIR: 'test/fixtures/profiles-js',
      });
      const child = spawnSandgate('api', env, { nodeArgs: ['--import', `./${FIXTURES}/reject-once-started.ts`] });
      expect(await child.exited).toBe(1);
      const faults = takeChildFaults(); // taken here, so this test's own check passes
      expect(faults).toHaveLength(1);
      const line = JSON.parse(faults[0]!.slice(faults[0]!.indexOf('{'))) as {
        level: number;
        msg: string;
        err: { stack: string };
      };
      expect(line).toMatchObject({ level: 60, msg: 'unhandled rejection' });
      expect(line.err.stack).toMatch(/fixture: a rejection nobody handles\n\s+at .*reject-once-started\.ts/);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('in a service process fails the test that spawned it, even when the test never looks', async () => {
    const { code, output } = await vitestOn('child-fatal');
    expect(code).not.toBe(0);
    expect(output).toMatch(/a spawned Sandgate process failed:\napi pid \d+: .*"msg":"unhandled rejection"/);
    expect(output).toMatch(/^vitest: 0 passed, 1 failed, 0 skipped$/m);
  });
});
