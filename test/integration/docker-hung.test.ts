// A Docker Engine that accepts connections and never answers (a loopback proxy in front of the
// socket), from the start or from the middle of the service's life: js runs answer as usual,
// docker runs get 503 engine_unavailable and GET /v1/profiles answers, each within about a
// second; when the proxy forwards again the docker profile recovers by itself.
// `npm run faults -- docker-hung` holds it for 70 s and prints the figures.
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

async function service(hungFromStart: boolean) {
  const proxy = await startDockerProxy();
  if (hungFromStart) proxy.hang();
  const dir = await profilesDir(['js', 'python']);
  const dataDir = await mkdtemp(join(tmpdir(), 'sg-docker-hung-'));
  cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
  const env = testEnv({
    PORT: String(await freePort()),
    SANDGATE_PROFILES_DIR: dir,
    SANDGATE_DOCKER_SOCKET: proxy.path,
    SANDGATE_REAP_INTERVAL_MS: '300',
    SANDGATE_DATA_DIR: dataDir,
  });
  const prefix = env.SANDGATE_PREFIX!;
  cleanup.push(
    () => proxy.close(),
    () => rm(dir, { recursive: true, force: true }),
    () => dropPrefix(prefix),
    () => removeContainersOf(prefix),
  );
  const svc = await startServiceProcess('all', env, ['js', 'python']);
  cleanup.push(() => svc.stop('SIGKILL'));
  return { svc, proxy, prefix };
}

async function expectDegradedThenRecovered({ svc, proxy, prefix }: Awaited<ReturnType<typeof service>>) {
  const s = await sampleDegraded(svc, 'python', 4000);
  expect(s.wrong).toEqual([]);
  expect(s.js.length).toBeGreaterThan(3);
  expect(Math.max(...s.js, ...s.docker, ...s.profiles)).toBeLessThan(FAST_MS);
  expect(svc.child.proc.exitCode).toBeNull();

  proxy.forward();
  const recovered = await within(
    15_000,
    async () =>
      (await svc.client.execute(svc.token, { profile: 'python', code: 'print(1)' }, true)).body.status === 'succeeded',
  );
  expect(recovered, 'python runs again once Docker answers').toBeDefined();
  expect(await svc.stop()).toBe(0);
  await within(10_000, async () => (await containersOf(prefix)).length === 0);
  const left = (await containersOf(prefix)).map(
    (c) => `${c.Id.slice(0, 12)} ${c.State} created ${new Date(c.Created * 1000).toISOString()}`,
  );
  expect(left, 'containers left behind after Docker answered again and the service stopped').toEqual([]);
}

describe('the Docker Engine hung', { timeout: 60_000 }, () => {
  it('from the start: js and every route answer, docker profiles 503 at once, then recover', async () => {
    await expectDegradedThenRecovered(await service(true));
  });

  it('in the middle (pool warm, runs done): the same', async () => {
    const s = await service(false);
    const ran = await s.svc.client.execute(s.svc.token, { profile: 'python', code: 'print(6*7)' }, true);
    expect(ran.body).toMatchObject({ status: 'succeeded', stdout: '42\n' });
    s.proxy.hang();
    expect(
      await within(10_000, async () => !(await dockerListed(s.svc, 'python'))),
      'the probe sees the hang',
    ).toBeDefined();
    await expectDegradedThenRecovered(s);
  });
});
