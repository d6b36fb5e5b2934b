// Sandgate on a real Redis Cluster (three masters on loopback): admission end to end, the budget
// and revocation races across two API processes, an irreversible tool approved by a human, the
// audit index, alerts, a run's event stream, a runner in another process, and agents spread over
// the masters. Any key of one script or transaction in another slot would fail here (CROSSSLOT),
// not pass quietly.
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeSandgate, type Sandgate } from '../../bin/compose.ts';
import { redisKeys } from '../../state/keys.ts';
import { createRedisClient } from '../../state/redis-client.ts';
import { type FakeEndpoint, startFakeEndpoint } from '../helpers/fake-endpoint.ts';
import { serviceClient } from '../helpers/http-client.ts';
import { freePort, spawnSandgate, waitForOutput } from '../helpers/processes.ts';
import { startRedisCluster, type TestCluster } from '../helpers/redis-cluster.ts';
import { eventually, startSandgate, type TestSandgate, testEnv } from '../helpers/sandgate.ts';
import { chunksOf, readSse } from '../helpers/sse-client.ts';

let cluster: TestCluster;
let gateway: FakeEndpoint;
let alertHook: FakeEndpoint;
let sg: TestSandgate;
let second: Sandgate; // another API process on the same cluster and prefix
let approver: Record<string, string>;
let operator: Record<string, string>;

beforeAll(async () => {
  [cluster, gateway, alertHook] = await Promise.all([startRedisCluster(), startFakeEndpoint(), startFakeEndpoint()]);
  sg = await startSandgate({
    REDIS_URL: cluster.url,
    SANDGATE_TOOLS_DIR: 'tools',
    SANDGATE_MAIL_GATEWAY_URL: `${gateway.url}/send`,
    SANDGATE_MAIL_GATEWAY_TOKEN: 'gateway-token',
    SANDGATE_ISOLATE_CONCURRENCY: '2',
    SANDGATE_ALERT_WEBHOOK: `${alertHook.url}/hook`,
  });
  second = await composeSandgate({ config: sg.config, mode: 'api', logger: pino({ level: 'silent' }) });
  const principal = async (role: string) => {
    const res = await sg.app!.inject({
      method: 'POST',
      url: '/v1/principals',
      headers: sg.admin,
      payload: { name: role, role },
    });
    expect(res.statusCode).toBe(201);
    return { authorization: `Bearer ${res.json().token}` };
  };
  [approver, operator] = [await principal('approver'), await principal('operator')];
}, 90_000);
afterAll(async () => {
  await second?.close();
  await sg?.stop();
  await Promise.all([cluster?.stop(), gateway?.close(), alertHook?.close()]);
});

const inject = (
  auth: Record<string, string>,
  method: 'GET' | 'POST' | 'DELETE',
  url: string,
  payload?: unknown,
  app = sg.app,
) => app!.inject({ method, url, headers: auth, ...(payload !== undefined && { payload: payload as object }) });

async function newTask(auth: Record<string, string>, budget: Record<string, number> = {}) {
  const res = await inject(auth, 'POST', '/v1/tasks', { goal: 'on the cluster', budget });
  expect(res.statusCode).toBe(201);
  return res.json().id as string;
}

describe('Sandgate on a Redis Cluster', { timeout: 60_000 }, () => {
  it('is a cluster that refuses a script whose keys span two agents (so these tests would catch one)', async () => {
    const keys = redisKeys('probe');
    const client = createRedisClient(cluster.url, { lazyConnect: true });
    client.on('error', () => {});
    try {
      await client.connect();
      const [one, other] = [keys.agent.record('ag_one_000000'), keys.agent.record('ag_other_0000')];
      await expect(client.eval("return redis.call('EXISTS', KEYS[1], KEYS[2])", 2, one, other)).rejects.toThrow(
        /CROSSSLOT/,
      );
      const mine = [keys.agent.record('ag_one_000000'), keys.agent.revoked('ag_one_000000')];
      expect(await client.eval("return redis.call('EXISTS', KEYS[1], KEYS[2])", 2, ...mine)).toBe(0);
    } finally {
      client.disconnect();
    }
  });

  it('runs js end to end, its records in its agent slot', async () => {
    const a = await sg.agent({ profiles: ['js'] });
    const task = await newTask(a.auth);
    const res = await inject(a.auth, 'POST', '/v1/executions?wait=true', {
      profile: 'js',
      code: '6 * 7',
      taskId: task,
    });
    expect(res.json()).toMatchObject({ status: 'succeeded', result: 42 });
    const keys = redisKeys(sg.config.SANDGATE_PREFIX);
    const home = await cluster.masterOf(keys.agent.record(a.id));
    for (const key of [keys.execution.record(res.json().id), keys.task.record(task), keys.agent.spendDay(a.id)])
      expect(await cluster.masterOf(key)).toBe(home);
    const t = (await inject(a.auth, 'GET', `/v1/tasks/${task}`)).json();
    expect(t).toMatchObject({ used: { runs: 1 } });
    // Read by id alone, from the other API process.
    expect(
      (await inject(a.auth, 'GET', `/v1/executions/${res.json().id}`, undefined, second.app)).json(),
    ).toMatchObject({ status: 'succeeded' });
  });

  it('spreads agents over more than one master', async () => {
    const keys = redisKeys(sg.config.SANDGATE_PREFIX);
    const agents = await Promise.all(Array.from({ length: 12 }, () => sg.agent({ profiles: ['js'] })));
    const masters = new Set(await Promise.all(agents.map((a) => cluster.masterOf(keys.agent.record(a.id)))));
    expect(masters.size).toBeGreaterThan(1);
    // Every master holds state by now (agents, tasks, queues, the audit index).
    expect((await cluster.keyCounts()).every((n) => n > 0)).toBe(true);
    // The console's list (a global index) reads them all back across the masters.
    const listed = (await inject(sg.admin, 'GET', '/v1/agents?limit=100'))
      .json()
      .agents.map((x: { id: string }) => x.id);
    expect(listed).toEqual(expect.arrayContaining(agents.map((a) => a.id)));
  });

  it('200 racing runs on two API processes against a budget of 10 admit exactly 10', async () => {
    const res = await inject(sg.admin, 'POST', '/v1/agents', {
      name: 'budgeted',
      grants: { profiles: ['js'] },
      limits: { runsPerMinute: 100_000 },
    });
    const auth = { authorization: `Bearer ${await sg.mint(res.json().id)}` };
    const task = await newTask(auth, { maxRuns: 10 });
    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        inject(
          auth,
          'POST',
          '/v1/executions',
          { profile: 'js', code: String(i), taskId: task },
          i % 2 ? sg.app : second.app,
        ),
      ),
    );
    const codes = answers.map((a) => a.statusCode);
    expect(codes.filter((c) => c === 202)).toHaveLength(10);
    expect(codes.filter((c) => c === 402)).toHaveLength(190);
  });

  it('admits none of 40 racing requests after a revoke returns', async () => {
    const victim = await sg.agent({ profiles: ['js'] });
    const send = (i: number) =>
      inject(
        victim.auth,
        'POST',
        '/v1/executions',
        { profile: 'js', code: `for (;;) { ${i} }`, timeoutMs: 3000 },
        i % 2 ? sg.app : second.app,
      );
    const early = Array.from({ length: 20 }, (_, i) => send(i));
    await early[0];
    const revoke = await inject(sg.admin, 'POST', `/v1/agents/${victim.id}/revoke`);
    expect(revoke.statusCode).toBe(200);
    const late = await Promise.all(Array.from({ length: 20 }, (_, i) => send(i + 20)));
    expect(late.map((r) => r.statusCode)).toEqual(late.map(() => 401));
    const admitted = (await Promise.all(early)).filter((r) => r.statusCode === 202).map((r) => r.json().id as string);
    expect(admitted.length).toBeGreaterThan(0);
    for (const id of admitted) {
      const rec = await eventually(async () => {
        const r = (await inject(sg.admin, 'GET', `/v1/executions/${id}`)).json();
        return ['queued', 'running'].includes(r.status) ? undefined : r;
      });
      expect(rec).toMatchObject({ status: 'cancelled', error: { code: 'agent_revoked' } });
    }
  });

  it('an irreversible tool waits, a human approves, it completes once', async () => {
    const a = await sg.agent({ profiles: ['js'], tools: ['send_email'] });
    const args = { to: 'c@example.com', subject: 'On the cluster', body: 'Hi.' };
    const asked = await inject(a.auth, 'POST', '/v1/actions', { tool: 'send_email', args });
    expect(asked.statusCode).toBe(202);
    expect(asked.json().status).toBe('awaiting_approval');
    const id = asked.json().id as string;
    // The global pending list names it, read by another API process.
    const pending = (await inject(approver, 'GET', '/v1/approvals?status=pending', undefined, second.app)).json()
      .approvals as Array<{ id: string; actionId: string }>;
    const mine = pending.find((p) => p.actionId === id)!;
    expect(mine).toBeTruthy();
    const decided = await inject(approver, 'POST', `/v1/approvals/${mine.id}`, { decision: 'approve' });
    expect(decided.statusCode).toBe(200);
    const done = await eventually(async () => {
      const r = (await inject(a.auth, 'GET', `/v1/actions/${id}`)).json();
      return r.status === 'succeeded' || r.status === 'failed' ? r : undefined;
    });
    expect(done).toMatchObject({ status: 'succeeded', approval: { status: 'used' } });
    expect(gateway.received.filter((r) => JSON.parse(r.body).args.to === 'c@example.com')).toHaveLength(1);
    // Decided: off the pending list.
    const after = (await inject(approver, 'GET', '/v1/approvals?status=pending')).json().approvals as Array<{
      id: string;
    }>;
    expect(after.map((p) => p.id)).not.toContain(mine.id);
  });

  it('the audit index answers by task, by agent and for all', async () => {
    const a = await sg.agent({ profiles: ['js'] });
    const task = await newTask(a.auth);
    const run = await inject(a.auth, 'POST', '/v1/executions?wait=true', {
      profile: 'js',
      code: '"audited"',
      taskId: task,
    });
    expect(run.json().status).toBe('succeeded');
    const kinds = async (query: string) =>
      (
        (await inject(sg.admin, 'GET', `/v1/audit?${query}&limit=500`)).json().records as Array<{
          kind: string;
          subject?: string;
        }>
      )
        .filter((r) => r.subject === run.json().id)
        .map((r) => r.kind);
    for (const query of [`taskId=${task}`, `agentId=${a.id}`, 'kind=execution.requested']) {
      const found = await eventually(
        async () => ((await kinds(query)).length ? kinds(query) : undefined),
        10_000,
        query,
      );
      expect(found).toContain('execution.requested');
    }
    const trace = (await inject(a.auth, 'GET', `/v1/tasks/${task}/trace`)).json();
    expect(trace.story.join('\n')).toMatch(/js/);
  });

  it('raises an alert (a loop), lists it globally and per agent, and resolves it', async () => {
    const created = await inject(sg.admin, 'POST', '/v1/agents', {
      name: 'looper',
      grants: { profiles: ['js'] },
      watch: { loop: { enabled: true, repeats: 3, windowS: 120 } },
    });
    const agentId = created.json().id as string;
    const auth = { authorization: `Bearer ${await sg.mint(agentId)}` };
    const task = await newTask(auth);
    const codes: number[] = [];
    for (let i = 0; i < 5; i++)
      codes.push(
        (await inject(auth, 'POST', '/v1/executions', { profile: 'js', code: '"same"', taskId: task })).statusCode,
      );
    expect(codes).toEqual([202, 202, 423, 423, 423]);
    const ofAgent = (await inject(operator, 'GET', `/v1/alerts?agentId=${agentId}`)).json().alerts;
    expect(ofAgent).toHaveLength(1);
    expect(ofAgent[0]).toMatchObject({ detector: 'loop', status: 'open', taskId: task });
    const alertId = ofAgent[0].id as string;
    const open = async () =>
      ((await inject(operator, 'GET', '/v1/alerts?status=open&limit=200')).json().alerts as Array<{ id: string }>).map(
        (x) => x.id,
      );
    expect(await open()).toContain(alertId);
    expect(
      ((await inject(operator, 'GET', '/v1/alerts?limit=200')).json().alerts as Array<{ id: string }>).map((x) => x.id),
    ).toContain(alertId);
    // Delivered by a runner through the notify queue (BullMQ on the cluster).
    await eventually(
      async () => (alertHook.received.some((r) => JSON.parse(r.body).alert?.id === alertId) ? true : undefined),
      10_000,
      'the alert webhook',
    );
    const resolved = await inject(operator, 'POST', `/v1/alerts/${alertId}`, { status: 'resolved', reason: 'ok' });
    expect(resolved.json()).toMatchObject({ status: 'resolved' });
    expect(await open()).not.toContain(alertId);
  });

  it('streams runs of agents in different slots live over SSE, resumed on the other API process', async () => {
    const urlOf = async (app: Sandgate['app']) => {
      if (!app!.server.listening) await app!.listen({ port: 0, host: '127.0.0.1' });
      return `http://127.0.0.1:${(app!.server.address() as AddressInfo).port}`;
    };
    const [one, other] = [await urlOf(sg.app), await urlOf(second.app)];
    const code =
      'for (let i = 0; i < 8; i++) { const t = Date.now(); while (Date.now() - t < 150) {} console.log("line " + i) } "end"';
    // Three agents (three slots): one process follows all three streams at once.
    const agents = await Promise.all([0, 1, 2].map(() => sg.agent({ profiles: ['js'] })));
    const paths = await Promise.all(
      agents.map(
        async (a) =>
          `/v1/executions/${(await inject(a.auth, 'POST', '/v1/executions', { profile: 'js', code })).json().id}/stream`,
      ),
    );
    const streams = await Promise.all(
      agents.map(async (a, n) => {
        // Cut off after the second chunk while the run still prints; the rest from the other process.
        const first = await readSse(`${one}${paths[n]}`, {
          headers: a.auth,
          stopAfter: (_e, all) => chunksOf(all).length >= 2,
        });
        expect(first.ended).toBe(false);
        const rest = await readSse(`${other}${paths[n]}`, {
          headers: { ...a.auth, 'last-event-id': first.events.at(-1)!.id! },
        });
        expect(rest.ended).toBe(true);
        return [...first.events, ...rest.events];
      }),
    );
    for (const all of streams) {
      const chunks = chunksOf(all);
      expect(chunks.map((c) => c.seq)).toEqual(chunks.map((_, i) => i + 1));
      const final = JSON.parse(all.at(-1)!.data);
      expect(final).toMatchObject({ status: 'succeeded', result: 'end' });
      expect(chunks.map((c) => c.data).join('')).toBe(final.stdout);
      expect(final.stdout).toContain('line 7');
    }
  });

  it('answers ids that name nothing with 404, malformed ones with 400, as on one node', async () => {
    const a = await sg.agent({ profiles: ['js'] });
    const cases: Array<[string, number, string]> = [
      ['ex_QQQQQQQQQQQQQQQQQQQQ', 404, 'not_found'], // no tag (an id of before the cluster layout)
      ['ex_0000000g_QQQQQQQQQQQQQQQQQQQQ', 404, 'not_found'], // not a tag
      [`ex_${'0'.repeat(8)}_QQQQQQQQQQQQQQQQQQQQ`, 404, 'not_found'], // a tag, nothing there
      ['ex_{x}_QQQQQQQQQQQQQQQQQQQQ', 400, 'validation_failed'], // braces never reach a key
    ];
    for (const [id, status, code] of cases) {
      const res = await inject(a.auth, 'GET', `/v1/executions/${encodeURIComponent(id)}`);
      expect([id, res.statusCode, res.json().error.code]).toEqual([id, status, code]);
    }
  });
});

describe('an API process and a runner process on the cluster', { timeout: 90_000 }, () => {
  it('serve runs, and a cancel reaches the runner over the cluster', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'sg-cluster-procs-'));
    const env = testEnv({
      REDIS_URL: cluster.url,
      PORT: String(await freePort()),
      SANDGATE_DATA_DIR: dataDir,
      SANDGATE_PROFILES_DIR: 'test/fixtures/profiles-js',
      SANDGATE_RUNNER_METRICS_PORT: String(await freePort()),
    });
    const api = spawnSandgate('api', env);
    const runner = spawnSandgate('runner', env);
    try {
      await Promise.all([
        waitForOutput(api, /sandgate started/, 30_000),
        waitForOutput(runner, /sandgate started/, 30_000),
      ]);
      const client = serviceClient(Number(env.PORT), env.SANDGATE_ADMIN_TOKEN!);
      // Ready (Redis answers, a runner takes each engine's jobs), and the queue depths exported.
      await eventually(async () => ((await fetch(`${client.base}/readyz`)).status === 200 ? true : undefined));
      const metrics = await (await fetch(`${client.base}/metrics`)).text();
      expect(metrics).toMatch(/sandgate_queue_jobs\{queue="executions-isolate",state="waiting"\} \d+/);
      const { token } = await client.agent({ profiles: ['js'] });
      const answers = await Promise.all(
        Array.from({ length: 8 }, (_, i) => client.execute(token, { profile: 'js', code: `${i} * 2` }, true)),
      );
      expect(answers.map((a) => [a.status, a.body.status, a.body.result])).toEqual(
        answers.map((_, i) => [200, 'succeeded', i * 2]),
      );
      const long = await client.execute(token, { profile: 'js', code: 'for (;;) {}', timeoutMs: 5000 });
      expect(long.status).toBe(202);
      await eventually(async () => {
        const r = await client.call('GET', `/v1/executions/${long.body.id}`, token);
        return r.body.status === 'running' ? true : undefined;
      });
      expect((await client.call('DELETE', `/v1/executions/${long.body.id}`, token)).status).toBeLessThan(300);
      // Cancelled at once; its runner, told over the cluster's pub/sub, stops it and adds what it
      // measured: far less than the 5 s the run would have taken to time out.
      const final = await eventually(async () => {
        const r = await client.call('GET', `/v1/executions/${long.body.id}`, token);
        const wallMs = (r.body.usage as { wallMs: number } | undefined)?.wallMs ?? 0;
        return r.body.status === 'cancelled' && wallMs > 0 ? wallMs : undefined;
      }, 10_000);
      expect(final).toBeLessThan(4000);
    } finally {
      for (const c of [api, runner]) c.proc.kill('SIGKILL');
      await Promise.all([api.exited, runner.exited]);
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('the cluster down', { timeout: 60_000 }, () => {
  it('answers 503 dependency_unavailable, within a bound, never a 500', async () => {
    const a = await sg.agent({ profiles: ['js'] });
    const keys = redisKeys(sg.config.SANDGATE_PREFIX);
    await cluster.kill(await cluster.masterOf(keys.agent.record(a.id)));
    // The others mark it failed after the node timeout (2 s): every slot then answers CLUSTERDOWN.
    const answers: Array<[number, string, number, string]> = [];
    for (let i = 0; i < 3; i++) {
      const t = Date.now();
      const res = await inject(a.auth, 'POST', '/v1/executions', { profile: 'js', code: String(i) });
      answers.push([res.statusCode, res.json().error?.code, Date.now() - t, res.json().error?.message]);
      await new Promise((r) => setTimeout(r, 1500));
    }
    // Anything else is shown with its message (what error got through as something else).
    const seen = answers.map(([status, code, , message]) => `${status} ${code}${status === 503 ? '' : `: ${message}`}`);
    expect(seen).toEqual(answers.map(() => '503 dependency_unavailable'));
    for (const [, , ms] of answers) expect(ms).toBeLessThan(15_000);
  });
});
