// SIGTERM: in-flight runs finish within the grace period, or end cancelled after it; the
// process exits 0 having closed Redis.
import { rm } from 'node:fs/promises';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { SHUTDOWN_MARGIN_MS } from '../../bin/compose.ts';
import { createExecutionStore } from '../../state/executions.ts';
import { containersOf } from '../helpers/docker.ts';
import { startDockerProxy } from '../helpers/docker-proxy.ts';
import { freePort, spawnSandgate, waitForOutput } from '../helpers/processes.ts';
import { dropPrefix, eventually, profilesDir, REDIS_URL, testEnv } from '../helpers/sandgate.ts';

const redis = new Redis(REDIS_URL);
const prefixes: string[] = [];
afterAll(async () => {
  for (const p of prefixes) await dropPrefix(p);
  redis.disconnect();
});

async function startAndSubmit(graceMs: number, busyMs: number) {
  const env = testEnv({
    PORT: String(await freePort()),
    SANDGATE_SHUTDOWN_GRACE_MS: String(graceMs),
    SANDGATE_DATA_DIR: '/tmp/sandgate-shutdown-test',
    SANDGATE_PROFILES_DIR: 'test/fixtures/profiles-js',
  });
  prefixes.push(env.SANDGATE_PREFIX!);
  const child = spawnSandgate('all', env);
  await waitForOutput(child, /sandgate started/);
  const base = `http://127.0.0.1:${env.PORT}`;
  const admin = { authorization: `Bearer ${env.SANDGATE_ADMIN_TOKEN}`, 'content-type': 'application/json' };
  const agent = (await (
    await fetch(`${base}/v1/agents`, {
      method: 'POST',
      headers: admin,
      body: JSON.stringify({ name: 'a', grants: { profiles: ['js'] } }),
    })
  ).json()) as { id: string };
  const { token } = (await (
    await fetch(`${base}/v1/agents/${agent.id}/tokens`, { method: 'POST', headers: admin, body: '{}' })
  ).json()) as { token: string };
  const res = await fetch(`${base}/v1/executions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      profile: 'js',
      code: `const t = Date.now(); while (Date.now() - t < ${busyMs}) {} "finished"`,
    }),
  });
  const { id } = (await res.json()) as { id: string };
  const store = createExecutionStore(redis, env.SANDGATE_PREFIX!, 3600);
  await eventually(async () => ((await store.get(id))?.status === 'running' ? true : undefined), 10_000, 'running');
  return { child, store, id };
}

// These spawn a whole service process; under a loaded CI machine its start alone can take seconds.
describe('SIGTERM', { timeout: 60_000 }, () => {
  it('lets an in-flight run finish within the grace period, then exits 0', async () => {
    const { child, store, id } = await startAndSubmit(10_000, 2000);
    child.proc.kill('SIGTERM');
    expect(await child.exited).toBe(0);
    const r = await store.get(id);
    expect(r).toMatchObject({ status: 'succeeded', result: 'finished' });
    expect(child.output()).toMatch(/"msg":"stopped"/);
  });

  it('cancels a run still going when the grace period ends', async () => {
    const { child, store, id } = await startAndSubmit(300, 4000);
    child.proc.kill('SIGTERM');
    expect(await child.exited).toBe(0);
    // The program would have run 4 s and succeeded: cancelled means the grace period ended it.
    const r = await store.get(id);
    expect(r?.status).toBe('cancelled');
    expect(r?.error?.code).toBe('runner_shutdown');
  });
});

describe('SIGTERM with the Docker Engine hung', { timeout: 60_000 }, () => {
  it('exits within the grace period plus the margin, removes its heartbeat, and the next runner reaps what it left', async () => {
    const proxy = await startDockerProxy();
    const dir = await profilesDir(['js', 'python']);
    const env = testEnv({
      PORT: String(await freePort()),
      SANDGATE_SHUTDOWN_GRACE_MS: '1000',
      SANDGATE_DATA_DIR: '/tmp/sandgate-shutdown-test',
      SANDGATE_PROFILES_DIR: dir,
      SANDGATE_DOCKER_SOCKET: proxy.path,
    });
    const prefix = env.SANDGATE_PREFIX!;
    prefixes.push(prefix);
    try {
      const child = spawnSandgate('all', env);
      await waitForOutput(child, /sandgate started/);
      await eventually(
        async () => ((await containersOf(prefix)).length >= 4 ? true : undefined),
        20_000,
        'the python pool',
      );
      expect(await redis.keys(`${prefix}:runner:*`)).toHaveLength(1);
      proxy.hang();
      const t = Date.now();
      child.proc.kill('SIGTERM');
      expect(await child.exited).toBe(0);
      const took = Date.now() - t;
      expect(took).toBeLessThan(1000 + SHUTDOWN_MARGIN_MS + 1500);
      expect(child.output()).toMatch(/left for the reaper|overran/);
      expect(await redis.keys(`${prefix}:runner:*`)).toEqual([]);

      // The next runner of the instance reaps the leftovers at start-up, not after a heartbeat TTL.
      proxy.forward();
      const next = spawnSandgate('runner', {
        ...env,
        SANDGATE_DOCKER_SOCKET: '/var/run/docker.sock',
        SANDGATE_RUNNER_METRICS_PORT: '0',
      });
      await waitForOutput(next, /sandgate started/);
      const owners = async () => new Set((await containersOf(prefix)).map((c) => c.Labels['sandgate.owner']));
      await eventually(
        async () => ((await owners()).size === 1 ? true : undefined),
        10_000,
        'only the new runner’s containers',
      );
      next.proc.kill('SIGTERM');
      expect(await next.exited).toBe(0);
      expect(await containersOf(prefix)).toEqual([]);
    } finally {
      await proxy.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
