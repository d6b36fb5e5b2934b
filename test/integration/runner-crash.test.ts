// A runner killed mid-run: the run must end `failed` (runner_lost) and never run a second time,
// and the audit log must say so (the killed runner's chain has its start, never its end).
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { composeSandgate } from '../../bin/compose.ts';
import { loadConfig } from '../../contract/config.ts';
import { storyLine } from '../../guard/audit/story.ts';
import { createBudgetStore } from '../../state/budgets.ts';
import { createExecutionStore } from '../../state/executions.ts';
import { type FakeEndpoint, startFakeEndpoint } from '../helpers/fake-endpoint.ts';
import { spawnSandgate, waitForOutput } from '../helpers/processes.ts';
import { eventually, REDIS_URL, startSandgate, testEnv } from '../helpers/sandgate.ts';

const crashEnv = testEnv({
  SANDGATE_LOCK_MS: '1000',
  SANDGATE_STALLED_CHECK_MS: '300',
  SANDGATE_RUNNER_METRICS_PORT: '0',
  SANDGATE_PROFILES_DIR: 'test/fixtures/profiles-js',
});
const cleanup: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
});

/** Kills the runner and starts another on the same queues (its own process's runner, in this one). */
async function killAndRescue(child: ReturnType<typeof spawnSandgate>, env: Record<string, string>) {
  child.proc.kill('SIGKILL');
  await child.exited;
  const config = loadConfig({ ...env, SANDGATE_DATA_DIR: '/tmp' });
  const rescuer = await composeSandgate({ config, mode: 'runner', logger: pino({ level: 'silent' }) });
  cleanup.push(() => rescuer.close());
  return rescuer;
}

describe('a runner that crashes', { timeout: 60_000 }, () => {
  it('fails the run with runner_lost and never starts it twice', async () => {
    const api = await startSandgate(crashEnv, 'api');
    cleanup.push(() => api.stop());
    const child = spawnSandgate('runner', crashEnv);
    cleanup.push(async () => child.proc.kill('SIGKILL'));
    await waitForOutput(child, /sandgate started/);

    const { auth } = await api.agent({ profiles: ['js'] });
    const res = await api.app!.inject({
      method: 'POST',
      url: '/v1/executions',
      headers: auth,
      payload: { profile: 'js', code: 'while (true) {}', timeoutMs: 5000 },
    });
    expect(res.statusCode).toBe(202);
    const { id } = res.json();

    const redis = new Redis(REDIS_URL);
    cleanup.push(async () => redis.disconnect());
    const store = createExecutionStore(redis, crashEnv.SANDGATE_PREFIX!, 3600);
    await eventually(async () => ((await store.get(id))?.status === 'running' ? true : undefined), 10_000, 'running');

    // A second runner takes over the queue; it must fail the orphaned job, not run it again.
    const rescuer = await killAndRescue(child, crashEnv);

    const final = await eventually(
      async () => {
        const r = await store.get(id);
        return r && r.status !== 'running' ? r : undefined;
      },
      15_000,
      'the orphaned run to be settled',
    );
    expect(final.status).toBe('failed');
    expect(final.error?.code).toBe('runner_lost');
    expect(final.starts).toBe(1);
    expect(rescuer.runner!.inFlight()).toBe(0);

    // From the log alone: requested, then an end that says the runner was lost and what it cost.
    const agentId = final.agentId;
    const ended = await eventually(async () => {
      const res = await api.app!.inject({ url: `/v1/audit?agentId=${agentId}&kind=run.finished`, headers: api.admin });
      return res.json().records.find((r: { subject?: string }) => r.subject === id);
    });
    expect(ended.data).toMatchObject({ status: 'failed', error: { code: 'runner_lost' }, charged: 'worst_case' });
    expect(storyLine(ended)).toContain('run failed [runner_lost] (exit null), charged its whole reservation');
  });

  it('a tool call whose runner dies mid-call ends failed (runner_lost), made once, charged, and in the log', async () => {
    const hung: Array<{ end(): void }> = [];
    const site: FakeEndpoint = await startFakeEndpoint((_, res) => void hung.push(res));
    cleanup.push(async () => {
      for (const res of hung) res.end();
      await site.close();
    });
    // A prefix of its own: the first case's rescuer must not take this call.
    const env = testEnv({
      SANDGATE_LOCK_MS: crashEnv.SANDGATE_LOCK_MS!,
      SANDGATE_STALLED_CHECK_MS: crashEnv.SANDGATE_STALLED_CHECK_MS!,
      SANDGATE_RUNNER_METRICS_PORT: '0',
      SANDGATE_PROFILES_DIR: crashEnv.SANDGATE_PROFILES_DIR!,
      SANDGATE_TOOLS_DIR: 'tools',
    });
    const api = await startSandgate(env, 'api');
    cleanup.push(() => api.stop());
    const child = spawnSandgate('runner', env);
    cleanup.push(async () => child.proc.kill('SIGKILL'));
    await waitForOutput(child, /sandgate started/);

    const { id: agentId, auth } = await api.agent({ tools: ['http_fetch'], destinations: [`127.0.0.1:${site.port}`] });
    const res = await api.app!.inject({
      method: 'POST',
      url: '/v1/actions',
      headers: auth,
      payload: { tool: 'http_fetch', args: { url: `${site.url}/slow` } },
    });
    expect(res.statusCode).toBe(202);
    const { id } = res.json();
    await eventually(async () => (site.received.length > 0 ? true : undefined), 10_000, 'the call to arrive');
    await killAndRescue(child, env);
    const final = await eventually(
      async () => {
        const a = (await api.app!.inject({ url: `/v1/actions/${id}`, headers: auth })).json();
        return a.status === 'failed' ? a : undefined;
      },
      15_000,
      'the orphaned call to be ended',
    );
    expect(final.error?.code).toBe('runner_lost');
    expect(final.usage?.cost).toBe(0.0001); // it may have been made: charged the tool's cost
    expect(site.received).toHaveLength(1); // never made again
    const ended = await eventually(async () => {
      const r = await api.app!.inject({ url: `/v1/audit?agentId=${agentId}&kind=action.finished`, headers: api.admin });
      return r.json().records.find((x: { subject?: string }) => x.subject === id);
    });
    expect(ended.data).toMatchObject({ tool: 'http_fetch', status: 'failed', error: { code: 'runner_lost' } });
    // Settled: the day's spend holds the call's cost, and nothing of it is still reserved.
    const redis = new Redis(REDIS_URL);
    cleanup.push(async () => redis.disconnect());
    const day = await createBudgetStore(redis, env.SANDGATE_PREFIX!, 3600).daySpend(agentId);
    expect(day).toEqual({ spent: 0.0001, reserved: 0 });
  });
});
