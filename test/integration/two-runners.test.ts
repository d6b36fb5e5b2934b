// Two runners on one host, started alike (same metrics port, as two `npm run runner` with the
// default settings would be), against one Redis prefix and an API process: the second finds the
// metrics port taken, says so in one line and serves /metrics on the next port; both take runs
// and finish them; neither crashes.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { metricValue, serviceClient } from '../helpers/http-client.ts';
import { type Child, freePort, spawnSandgate, waitForOutput } from '../helpers/processes.ts';
import { dropPrefix, eventually, testEnv } from '../helpers/sandgate.ts';

const cleanup: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
});

const startedLine = (child: Child) =>
  JSON.parse(
    child
      .output()
      .split('\n')
      .find((l) => l.includes('"sandgate started"'))!,
  ) as { metricsPort?: number };

describe('two runners on one host', { timeout: 60_000 }, () => {
  it('both run work; the second serves its metrics on the next port and says so', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'sg-two-runners-'));
    const metricsPort = await freePort();
    const env = testEnv({
      PORT: String(await freePort()),
      SANDGATE_DATA_DIR: dataDir,
      SANDGATE_PROFILES_DIR: 'test/fixtures/profiles-js',
      SANDGATE_RUNNER_METRICS_PORT: String(metricsPort),
      // Two runs at a time each, so a burst of runs needs both runners.
      SANDGATE_ISOLATE_CONCURRENCY: '2',
    });
    cleanup.push(
      () => rm(dataDir, { recursive: true, force: true }),
      () => dropPrefix(env.SANDGATE_PREFIX!),
    );
    const api = spawnSandgate('api', env);
    const first = spawnSandgate('runner', env);
    cleanup.push(async () => {
      for (const c of [api, first]) c.proc.kill('SIGKILL');
    });
    await waitForOutput(first, /sandgate started/);
    const second = spawnSandgate('runner', env);
    cleanup.push(async () => second.proc.kill('SIGKILL'));
    await Promise.all([waitForOutput(api, /sandgate started/), waitForOutput(second, /sandgate started/)]);

    expect(startedLine(first).metricsPort).toBe(metricsPort);
    const secondPort = startedLine(second).metricsPort!;
    expect(secondPort).toBeGreaterThan(metricsPort);
    const notices = second
      .output()
      .split('\n')
      .filter((l) => l.includes('runner metrics:'));
    expect(notices).toHaveLength(1);
    expect(notices[0]).toContain(
      `port ${metricsPort} is in use (another runner?); serving /metrics on ${secondPort} instead`,
    );

    const client = serviceClient(Number(env.PORT), env.SANDGATE_ADMIN_TOKEN!);
    const { token } = await client.agent({ profiles: ['js'] });
    const code = 'const t = Date.now(); while (Date.now() - t < 200) {} "done"';
    const answers = await Promise.all(
      Array.from({ length: 16 }, () => client.execute(token, { profile: 'js', code }, true)),
    );
    expect(answers.map((a) => [a.status, a.body.status, a.body.result])).toEqual(
      answers.map(() => [200, 'succeeded', 'done']),
    );

    // Each runner's own /metrics counts the runs it finished: both did some, 16 in all.
    const finished = async (port: number) =>
      metricValue(
        await (await fetch(`http://127.0.0.1:${port}/metrics`)).text(),
        'sandgate_runs_total{profile="js",status="succeeded"}',
      );
    const counts = await eventually(
      async () => {
        const c = [await finished(metricsPort), await finished(secondPort)];
        return c[0]! + c[1]! === 16 ? c : undefined;
      },
      5000,
      'both runners counting 16 runs',
    );
    expect(counts[0]).toBeGreaterThan(0);
    expect(counts[1]).toBeGreaterThan(0);

    for (const c of [first, second, api]) {
      expect(c.proc.exitCode).toBeNull();
      c.proc.kill('SIGTERM');
      expect(await c.exited).toBe(0);
    }
  });
});
