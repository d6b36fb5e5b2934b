// Many or large output files never hide the exit status: a program that leaves thousands of
// files, or more bytes than the cap, in /work/out gets its real exit code and status, and the
// files are cut at the profile's caps (100 files, 1 MiB of content) with `truncated` and a note.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containersOf, hasRuntime } from '../helpers/docker.ts';
import { startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

let sg: TestSandgate;
let auth: Record<string, string>;
const gvisor = await hasRuntime('runsc');

beforeAll(async () => {
  sg = await startSandgate({}, 'all', ['python', 'shell', ...(gvisor ? ['python-gvisor'] : [])]);
  ({ auth } = await sg.agent({ profiles: ['python', 'shell', 'python-gvisor'] }));
});
afterAll(async () => {
  const prefix = sg.config.SANDGATE_PREFIX;
  await sg?.stop();
  expect(await containersOf(prefix)).toEqual([]);
});

async function run(profile: string, code: string) {
  const res = await sg.app!.inject({
    method: 'POST',
    url: '/v1/executions?wait=true',
    headers: auth,
    payload: { profile, code, timeoutMs: 9000 },
  });
  expect(res.statusCode).toBe(200);
  return res.json();
}
const contentBytes = (files: Array<{ content: string; encoding: string }> = []) =>
  files.reduce((n, f) => n + Buffer.byteLength(f.content, f.encoding === 'base64' ? 'base64' : 'utf8'), 0);

describe('output files past the caps', () => {
  it.each([
    [7, 'failed'],
    [0, 'succeeded'],
  ])('5000 small files and exit %i: status %s with its exit code, 100 files back, truncated', async (exit, status) => {
    const r = await run(
      'python',
      `import os\nfor i in range(5000):\n    open(f"out/f{i:05}.txt", "w").write("x" * 10)\nos._exit(${exit})`,
    );
    expect(r).toMatchObject({ status, exitCode: exit, truncated: true });
    expect(r.files).toHaveLength(100);
    expect(r.stderr).toMatch(/\[sandgate\].*(cap of 100 files|the rest was not read)/);
  });

  it('one file of 10 MiB over a 1 MiB cap: the real exit code, the file dropped with a note', async () => {
    const r = await run(
      'python',
      'import os\nopen("out/big.bin", "wb").write(os.urandom(10 * 1024 * 1024))\nopen("out/small.txt", "w").write("s")\nos._exit(5)',
    );
    expect(r).toMatchObject({ status: 'failed', exitCode: 5, truncated: true });
    expect((r.files ?? []).map((f: { path: string }) => f.path)).not.toContain('big.bin');
    expect(r.stderr).toMatch(/\[sandgate\]/);
  });

  it('many files whose content together passes 1 MiB: content bytes are counted, cut at the cap', async () => {
    const r = await run('python', 'for i in range(90):\n    open(f"out/{i:03}.txt", "w").write("y" * 20000)');
    expect(r).toMatchObject({ status: 'succeeded', exitCode: 0, truncated: true });
    const bytes = contentBytes(r.files);
    expect(bytes).toBeLessThanOrEqual(1024 * 1024);
    // 52 files of 20000 bytes fit 1 MiB by content; an archive-byte count would give fewer.
    expect(r.files.length).toBe(Math.floor((1024 * 1024) / 20000));
  });

  it('files that fit return whole and untruncated, by content bytes, even though their archive is larger than 1 MiB', async () => {
    const r = await run('python', 'for i in range(99):\n    open(f"out/{i:03}.txt", "w").write("z" * 10000)');
    expect(r).toMatchObject({ status: 'succeeded', exitCode: 0, truncated: false });
    expect(r.files).toHaveLength(99);
  });

  it('thousands of nested directories and long names: the exit code survives', async () => {
    const r = await run(
      'python',
      'import os\nfor i in range(3000):\n    os.makedirs(f"out/d{i}/" + "n" * 120)\nopen("out/d1/f", "w").write("f")\nos._exit(6)',
    );
    expect(r).toMatchObject({ status: 'failed', exitCode: 6 });
  });

  it('a run that filled its whole work dir with output files still reports its status', async () => {
    const r = await run(
      'shell',
      'i=0; while dd if=/dev/zero of=out/f$i bs=1M count=1 status=none 2>/dev/null; do i=$((i+1)); done; echo wrote $i; exit 2',
    );
    expect(r).toMatchObject({ status: 'failed', exitCode: 2, truncated: true });
    expect(contentBytes(r.files)).toBeLessThanOrEqual(1024 * 1024);
  });

  it.runIf(gvisor)('under gVisor too: 3000 files and exit 7', async () => {
    const r = await run(
      'python-gvisor',
      'import os\nfor i in range(3000):\n    open(f"out/f{i}", "w").write("g")\nos._exit(7)',
    );
    expect(r).toMatchObject({ status: 'failed', exitCode: 7, truncated: true });
    expect(r.files).toHaveLength(100);
  });

  it('the service still runs programs after all of that', async () => {
    expect(await run('python', 'print(1)')).toMatchObject({ status: 'succeeded', stdout: '1\n' });
  });
});
