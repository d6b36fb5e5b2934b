// The Docker socket missing, from the start or removed while the service runs: the process keeps
// serving (its reaper sweeps meanwhile, here every 300 ms), js runs answer as usual, docker runs
// get 503 engine_unavailable and GET /v1/profiles answers, each within about a second; when the
// socket is back the docker profile recovers by itself. `npm run faults -- docker-missing` holds
// it for 70 s and prints the figures.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dockerListed, sampleDegraded, within } from '../helpers/degraded-docker.ts';
import { containersOf, removeContainersOf } from '../helpers/docker.ts';
import { startDockerProxy } from '../helpers/docker-proxy.ts';
import { freePort } from '../helpers/processes.ts';
import { dropPrefix, profilesDir, testEnv } from '../helpers/sandgate.ts';
import { startServiceProcess } from '../helpers/service-process.ts';

const cleanup: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
});

/** Generous: these are not benchmarks, a loaded CI machine must pass them. */
const FAST_MS = 2000;

async function service(socket: string) {
  const dir = await profilesDir(['js', 'python']);
  const dataDir = await mkdtemp(join(tmpdir(), 'sg-docker-missing-'));
  cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
  const env = testEnv({
    PORT: String(await freePort()),
    SANDGATE_PROFILES_DIR: dir,
    SANDGATE_DOCKER_SOCKET: socket,
    SANDGATE_REAP_INTERVAL_MS: '300',
    SANDGATE_DATA_DIR: dataDir,
  });
  cleanup.push(
    () => rm(dir, { recursive: true, force: true }),
    () => dropPrefix(env.SANDGATE_PREFIX!),
    () => removeContainersOf(env.SANDGATE_PREFIX!),
  );
  const svc = await startServiceProcess('all', env, ['js', 'python']);
  cleanup.push(() => svc.stop('SIGKILL'));
  return { svc, prefix: env.SANDGATE_PREFIX! };
}

function expectDegraded(s: Awaited<ReturnType<typeof sampleDegraded>>) {
  expect(s.wrong).toEqual([]);
  expect(s.js.length).toBeGreaterThan(3);
  expect(Math.max(...s.js, ...s.docker, ...s.profiles)).toBeLessThan(FAST_MS);
}

describe('the Docker socket missing', { timeout: 60_000 }, () => {
  it('from the start: js and every route answer, docker profiles 503 at once, the process stays up', async () => {
    const { svc } = await service('/nonexistent/docker.sock');
    expectDegraded(await sampleDegraded(svc, 'python', 4000));
    expect(svc.child.proc.exitCode).toBeNull();
    expect(await svc.stop()).toBe(0);
  });

  it('removed while running: the same, and the docker profile recovers when the socket is back', async () => {
    const proxy = await startDockerProxy();
    cleanup.push(() => proxy.close());
    const { svc, prefix } = await service(proxy.path);
    const ran = await svc.client.execute(svc.token, { profile: 'python', code: 'print(6*7)' }, true);
    expect(ran.body).toMatchObject({ status: 'succeeded', stdout: '42\n' });

    await proxy.remove();
    expect(await within(10_000, async () => !(await dockerListed(svc, 'python')))).toBeDefined();
    expectDegraded(await sampleDegraded(svc, 'python', 4000));
    expect(svc.child.proc.exitCode).toBeNull();

    await proxy.restore();
    expect(
      await within(
        15_000,
        async () =>
          (await svc.client.execute(svc.token, { profile: 'python', code: 'print(1)' }, true)).body.status ===
          'succeeded',
      ),
    ).toBeDefined();
    expect(await svc.stop()).toBe(0);
    await within(10_000, async () => (await containersOf(prefix)).length === 0);
    const left = (await containersOf(prefix)).map(
      (c) => `${c.Id.slice(0, 12)} ${c.State} created ${new Date(c.Created * 1000).toISOString()}`,
    );
    expect(left, 'containers left behind after the socket came back and the service stopped').toEqual([]);
  });
});
