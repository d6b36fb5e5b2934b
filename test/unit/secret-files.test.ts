import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readOrCreateSecret } from '../../guard/identity/secret-files.ts';

// Processes that start together (an API and a runner on one data volume) must agree on one
// secret, and none may read it half-written.
describe('readOrCreateSecret', () => {
  it('many callers at once agree on one whole secret, and no temporary file is left', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sg-secret-'));
    const path = join(dir, 'keys', 'secret.json');
    // A big secret makes a write that is not atomic visible to a reader beside it.
    const make = (n: number) => async () => JSON.stringify({ n, pad: 'x'.repeat(4 << 20) });
    const got = await Promise.all(Array.from({ length: 12 }, (_, n) => readOrCreateSecret(path, make(n))));
    expect(new Set(got).size).toBe(1);
    expect(JSON.parse(got[0]!).pad.length).toBe(4 << 20);
    expect(await readFile(path, 'utf8')).toBe(got[0]);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readdir(join(dir, 'keys'))).toEqual(['secret.json']);
  });

  it('separate processes starting together read the same complete secret', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sg-secret-procs-'));
    const path = join(dir, 'secret');
    const script = `
      import { readOrCreateSecret } from ${JSON.stringify(join(process.cwd(), 'guard/identity/secret-files.ts'))};
      const s = await readOrCreateSecret(${JSON.stringify(path)}, () => JSON.stringify({ pid: process.pid, pad: 'y'.repeat(8 << 20) }));
      process.stdout.write(String(JSON.parse(s).pid));`;
    const one = () =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        let err = '';
        child.stdout.on('data', (d) => (out += d));
        child.stderr.on('data', (d) => (err += d));
        child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}: ${err}`))));
      });
    const pids = await Promise.all(Array.from({ length: 6 }, one));
    expect(new Set(pids).size).toBe(1);
    expect(JSON.parse(await readFile(path, 'utf8')).pid).toBe(Number(pids[0]));
  }, 60_000);
});
