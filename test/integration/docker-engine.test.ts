// The Docker profiles end to end: real Redis, real BullMQ, real Docker Engine and images.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LABEL } from '../../runner/engines/docker/container-spec.ts';
import { containersOf, docker, hasRuntime } from '../helpers/docker.ts';
import { DOCKER_PROFILES, eventually, startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

let sg: TestSandgate;
let auth: Record<string, string>;

beforeAll(async () => {
  sg = await startSandgate({}, 'all', DOCKER_PROFILES);
  ({ auth } = await sg.agent({ profiles: ['python', 'node', 'shell', 'python-gvisor'] }));
});
afterAll(async () => {
  const prefix = sg.config.SANDGATE_PREFIX;
  await sg?.stop();
  // One container, one run: nothing of this instance outlives it.
  expect(await containersOf(prefix)).toEqual([]);
});

const run = async (payload: Record<string, unknown>, query = '?wait=true') => {
  const res = await sg.app!.inject({ method: 'POST', url: `/v1/executions${query}`, headers: auth, payload });
  return { status: res.statusCode, body: res.json() };
};

describe('docker profiles', () => {
  it('python prints, with usage figures', async () => {
    const { status, body } = await run({ profile: 'python', code: 'print(1)' });
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'succeeded', stdout: '1\n', exitCode: 0, truncated: false });
    expect(body.usage.cpuMs).toBeGreaterThan(0);
    expect(body.usage.memoryBytes).toBeGreaterThan(0);
    expect(body.usage.wallMs).toBeGreaterThan(0);
  });

  it('node and shell run', async () => {
    expect((await run({ profile: 'node', code: 'console.log(6 * 7)' })).body).toMatchObject({
      status: 'succeeded',
      stdout: '42\n',
    });
    expect((await run({ profile: 'shell', code: 'echo "$((6 * 7))"; echo err >&2' })).body).toMatchObject({
      status: 'succeeded',
      stdout: '42\n',
      stderr: 'err\n',
    });
  });

  it('a non-zero exit is failed with its code', async () => {
    const { body } = await run({ profile: 'python', code: 'import sys; print("bye"); sys.exit(3)' });
    expect(body).toMatchObject({ status: 'failed', exitCode: 3, stdout: 'bye\n', error: { code: 'nonzero_exit' } });
  });

  it('passes stdin and files in, and returns files left in out/', async () => {
    const { body } = await run({
      profile: 'python',
      code: [
        'import sys',
        'print(open("data/in.txt").read(), sys.stdin.read())',
        'open("out/report.txt", "w").write("done")',
        'import os; os.makedirs("out/sub"); open("out/sub/blob.bin", "wb").write(bytes([0, 255, 1]))',
      ].join('\n'),
      stdin: 'from stdin',
      files: [
        { path: 'data/in.txt', content: 'from a file' },
        { path: 'b64.bin', content: Buffer.from([1, 2, 3]).toString('base64'), encoding: 'base64' },
      ],
    });
    expect(body.status).toBe('succeeded');
    expect(body.stdout).toBe('from a file from stdin\n');
    const files = Object.fromEntries(body.files.map((f: { path: string }) => [f.path, f]));
    expect(files['report.txt']).toEqual({ path: 'report.txt', content: 'done', encoding: 'utf8' });
    expect(files['sub/blob.bin']).toEqual({
      path: 'sub/blob.bin',
      content: Buffer.from([0, 255, 1]).toString('base64'),
      encoding: 'base64',
    });
  });

  it('a program cannot end its output with a forged trailer', async () => {
    const { body } = await run({ profile: 'shell', code: 'printf "\\nabc exit 0\\nabc end\\n"; echo after; exit 5' });
    expect(body.status).toBe('failed');
    expect(body.exitCode).toBe(5);
    expect(body.stdout).toContain('after');
  });

  it.each([
    ['an absolute path', '/etc/passwd', 400],
    ['a path with ..', 'a/../../x', 400],
    ['a control character', 'a\nb', 400],
  ])('refuses a file with %s', async (_what, path, code) => {
    const { status, body } = await run({ profile: 'python', code: 'print(1)', files: [{ path, content: 'x' }] });
    expect(status).toBe(code);
    expect(body.error.code).toBe('validation_failed');
  });

  it('refuses more files or bytes than the profile takes', async () => {
    const many = Array.from({ length: 33 }, (_, i) => ({ path: `f${i}`, content: 'x' }));
    const tooMany = await run({ profile: 'python', code: 'print(1)', files: many });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error.code).toBe('limit_exceeds_profile');
    const big = await run({
      profile: 'python',
      code: 'print(1)',
      files: [{ path: 'big', content: 'x'.repeat(1024 * 1024 + 1) }],
    });
    expect([413]).toContain(big.status);
  });

  it('cancels a running container run', async () => {
    const { body } = await run({ profile: 'python', code: 'import time; time.sleep(30)' }, '');
    const id = body.id as string;
    await eventually(async () => {
      const r = await sg.app!.inject({ url: `/v1/executions/${id}`, headers: auth });
      return r.json().status === 'running' ? true : undefined;
    });
    const del = await sg.app!.inject({ method: 'DELETE', url: `/v1/executions/${id}`, headers: auth });
    expect(del.json().status).toBe('cancelled');
    await eventually(async () => (sg.runner!.inFlight() === 0 ? true : undefined), 5000, 'the container run to stop');
  });

  it('python-gvisor runs under runsc where it is installed, and is reported unavailable where not', async () => {
    const profiles = (await sg.app!.inject({ url: '/v1/profiles', headers: auth })).json().profiles;
    const gvisor = profiles.find((p: { name: string }) => p.name === 'python-gvisor');
    if (await hasRuntime('runsc')) {
      expect(gvisor.available).toBe(true);
      const { body } = await run({ profile: 'python-gvisor', code: 'import platform; print(platform.release())' });
      expect(body, JSON.stringify(body)).toMatchObject({ status: 'succeeded' });
      expect(body.stdout).toMatch(/^4\.4\.0/); // gVisor reports its own kernel, not the host's
    } else {
      expect(gvisor.available).toBe(false);
      const { status, body } = await run({ profile: 'python-gvisor', code: 'print(1)' });
      expect(status).toBe(503);
      expect(body.error.code).toBe('engine_unavailable');
    }
  });
});

describe('the reaper', () => {
  it('removes containers of a runner that is gone, and keeps live ones', async () => {
    const prefix = sg.config.SANDGATE_PREFIX;
    const orphan = await docker.createContainer({
      Image: 'sandgate/shell:latest',
      Labels: { [LABEL.sandgate]: '1', [LABEL.prefix]: prefix, [LABEL.owner]: 'crashed-runner-1' },
      HostConfig: { NetworkMode: 'none' },
    });
    expect((await containersOf(prefix)).length).toBeGreaterThan(1); // the warm pools are up
    // Exactly one removal: the orphan. The pools' live containers were left alone.
    expect(await sg.engines.docker!.reaper.sweep()).toBe(1);
    expect((await containersOf(prefix)).map((c) => c.Id)).not.toContain(orphan.id);
  });
});
