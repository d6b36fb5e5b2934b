// Service endpoints, identity and the dashboard, through a real socket as well as inject.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STAGES } from '../../guard/lifecycle/stages.ts';
import { eventually, startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

let sg: TestSandgate;
let base: string;

beforeAll(async () => {
  sg = await startSandgate();
  await sg.app!.listen({ port: 0, host: '127.0.0.1' });
  const { port } = sg.app!.server.address() as { port: number };
  base = `http://127.0.0.1:${port}`;
});
afterAll(() => sg?.stop());

describe('over a real socket', () => {
  it('does the whole agent flow: create, mint, run with wait=true', async () => {
    const json = { ...sg.admin, 'content-type': 'application/json' };
    const created = await fetch(`${base}/v1/agents`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ name: 'sock', grants: { profiles: ['js'] } }),
    });
    expect(created.status).toBe(201);
    const agent = (await created.json()) as { id: string };
    const minted = await fetch(`${base}/v1/agents/${agent.id}/tokens`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ ttlSeconds: 60 }),
    });
    expect(minted.status).toBe(201);
    const { token, expiresAt } = (await minted.json()) as { token: string; expiresAt: string };
    expect(new Date(expiresAt).getTime()).toBeGreaterThan(Date.now());
    const run = await fetch(`${base}/v1/executions?wait=true`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ profile: 'js', code: 'console.log(6*7); 1+1' }),
    });
    expect(run.status).toBe(200);
    expect(await run.json()).toMatchObject({ status: 'succeeded', stdout: '42\n', result: 2 });
  });

  it('answers 413 for a body over the limit before reading it all', async () => {
    const { auth } = await sg.agent();
    const res = await fetch(`${base}/v1/executions`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ profile: 'js', code: 'x'.repeat(3 * 1024 * 1024) }),
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('body_too_large');
  });
});

describe('service endpoints', () => {
  it('/healthz and /readyz', async () => {
    expect((await sg.app!.inject('/healthz')).json()).toEqual({ status: 'ok' });
    const ready = await sg.app!.inject('/readyz');
    expect(ready.statusCode).toBe(200);
    expect(ready.json().checks).toEqual({ redis: 'ok', 'engine:isolate': 'ok' });
  });

  it('/metrics has queue depth, runs by status and profile, run durations', async () => {
    const { auth } = await sg.agent();
    await sg.app!.inject({
      method: 'POST',
      url: '/v1/executions?wait=true',
      headers: auth,
      payload: { profile: 'js', code: '1' },
    });
    // And one through the queue (no ?wait=true): its enqueue and pick-up are stages too.
    const queued = await sg.app!.inject({
      method: 'POST',
      url: '/v1/executions',
      headers: auth,
      payload: { profile: 'js', code: '2' },
    });
    await eventually(async () => {
      const r = await sg.app!.inject({ url: `/v1/executions/${queued.json().id}`, headers: auth });
      return r.json().status === 'succeeded' ? true : undefined;
    }, 10_000);
    const text = (await sg.app!.inject('/metrics')).body;
    expect(text).toMatch(/sandgate_queue_jobs\{queue="executions-isolate",state="waiting"\} \d+/);
    expect(text).toMatch(/sandgate_queue_jobs\{queue="actions",state="waiting"\} \d+/);
    expect(text).toMatch(/sandgate_runs_total\{profile="js",status="succeeded"\} [1-9]/);
    expect(text).toMatch(/sandgate_run_wall_seconds_bucket\{le="[0-9.]+",profile="js",status="succeeded"\}/);
    // A run that spins past its synchronous slice is counted.
    const restarts = (t: string) => Number(/sandgate_isolate_slice_restarts_total (\d+)/.exec(t)?.[1]);
    const before = restarts(text);
    expect(before).toBeGreaterThanOrEqual(0);
    const spun = await sg.app!.inject({
      method: 'POST',
      url: '/v1/executions?wait=true',
      headers: auth,
      payload: { profile: 'js', code: '{ const t = Date.now(); while (Date.now() - t < 30) {} } 3' },
    });
    expect(spun.json()).toMatchObject({ status: 'succeeded', result: 3 });
    expect(restarts((await sg.app!.inject('/metrics')).body)).toBe(before + 1);
    // Where the time of those runs went: every step of their paths, each observed once at least
    // ('reply', the record read after a queued run's end, is only on a queued ?wait=true path).
    for (const stage of STAGES.filter((s) => s !== 'reply')) {
      const count = new RegExp(`sandgate_stage_seconds_count\\{stage="${stage}"\\} (\\d+)`).exec(text)?.[1];
      expect(Number(count), stage).toBeGreaterThanOrEqual(1);
    }
  });

  it('/docs/json describes the API from the zod schemas', async () => {
    const doc = (await sg.app!.inject('/docs/json')).json();
    expect(doc.openapi).toMatch(/^3\./);
    for (const path of [
      '/v1/executions',
      '/v1/executions/{id}',
      '/v1/agents',
      '/v1/agents/{id}/tokens',
      '/v1/profiles',
    ]) {
      expect(Object.keys(doc.paths)).toContain(path);
    }
    expect(doc.components.schemas.ExecutionRequest.properties.profile).toBeDefined();
    expect((await sg.app!.inject('/docs')).statusCode).toBeLessThan(400);
  });

  it('/v1/profiles lists js as available', async () => {
    const { auth } = await sg.agent();
    const res = await sg.app!.inject({ url: '/v1/profiles', headers: auth });
    expect(res.json().profiles).toContainEqual(
      expect.objectContaining({ name: 'js', engine: 'isolate', available: true }),
    );
  });

  it('unknown routes answer in the error format', async () => {
    const res = await sg.app!.inject('/v2/nothing');
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('route_not_found');
  });
});

describe('/admin/queues', () => {
  it('asks a browser to log in, refuses agents, serves the admin', async () => {
    const anon = await sg.app!.inject('/admin/queues');
    expect(anon.statusCode).toBe(401);
    expect(anon.headers['www-authenticate']).toMatch(/^Basic/);
    const { auth } = await sg.agent();
    const agent = await sg.app!.inject({ url: '/admin/queues/api/queues', headers: auth });
    expect(agent.statusCode).toBe(403);
    const basic = `Basic ${Buffer.from(`admin:${sg.config.SANDGATE_ADMIN_TOKEN}`).toString('base64')}`;
    const page = await sg.app!.inject({ url: '/admin/queues', headers: { authorization: basic } });
    expect(page.statusCode).toBe(200);
    expect(page.body).toMatch(/<html/i);
    const api = await sg.app!.inject({ url: '/admin/queues/api/queues', headers: sg.admin });
    expect(api.json().queues.map((q: { name: string }) => q.name)).toEqual(
      expect.arrayContaining(['executions-isolate', 'actions']),
    );
  });
});

describe('agents and tokens', () => {
  it('only the admin creates agents and mints tokens', async () => {
    const { id, auth } = await sg.agent();
    const asAgent = await sg.app!.inject({
      method: 'POST',
      url: '/v1/agents',
      headers: auth,
      payload: { name: 'x', grants: {} },
    });
    expect(asAgent.statusCode).toBe(403);
    const mint = await sg.app!.inject({ method: 'POST', url: `/v1/agents/${id}/tokens`, headers: auth, payload: {} });
    expect(mint.statusCode).toBe(403);
  });

  it('refuses grants of unknown profiles, ttl over 3600, scopes beyond grants', async () => {
    const unknown = await sg.app!.inject({
      method: 'POST',
      url: '/v1/agents',
      headers: sg.admin,
      payload: { name: 'x', grants: { profiles: ['nope'] } },
    });
    expect(unknown.json().error.code).toBe('unknown_profile');
    const { id } = await sg.agent({ profiles: ['js'] });
    const long = await sg.app!.inject({
      method: 'POST',
      url: `/v1/agents/${id}/tokens`,
      headers: sg.admin,
      payload: { ttlSeconds: 3601 },
    });
    expect(long.statusCode).toBe(400);
    const wide = await sg.app!.inject({
      method: 'POST',
      url: `/v1/agents/${id}/tokens`,
      headers: sg.admin,
      payload: { scopes: { tools: ['send_email'] } },
    });
    expect(wide.statusCode).toBe(400);
    expect(wide.json().error.code).toBe('scope_exceeds_grants');
  });

  it('a token scoped to no profiles loses js', async () => {
    const { auth } = await sg.agent({ profiles: ['js'] }, { scopes: { profiles: [] } });
    const res = await sg.app!.inject({
      method: 'POST',
      url: '/v1/executions',
      headers: auth,
      payload: { profile: 'js', code: '1' },
    });
    expect(res.statusCode).toBe(403);
    expect(res.json().error.code).toBe('profile_not_granted');
  });

  it('a token bound to a task works only for that task', async () => {
    const { id, auth } = await sg.agent({ profiles: ['js'] });
    const newTask = async () =>
      (await sg.app!.inject({ method: 'POST', url: '/v1/tasks', headers: auth, payload: { goal: 'g' } })).json()
        .id as string;
    const [taskA, taskB] = [await newTask(), await newTask()];
    const bound = { authorization: `Bearer ${await sg.mint(id, { taskId: taskA })}` };
    const other = await sg.app!.inject({
      method: 'POST',
      url: '/v1/executions',
      headers: bound,
      payload: { profile: 'js', code: '1', taskId: taskB },
    });
    expect(other.statusCode).toBe(403);
    const same = await sg.app!.inject({
      method: 'POST',
      url: '/v1/executions?wait=true',
      headers: bound,
      payload: { profile: 'js', code: '1' },
    });
    expect(same.json().taskId).toBe(taskA);
  });

  it('GET /v1/agents/:id returns the agent, 404 for an unknown one', async () => {
    const { id } = await sg.agent({ profiles: ['js'] });
    const res = await sg.app!.inject({ url: `/v1/agents/${id}`, headers: sg.admin });
    expect(res.json()).toMatchObject({ id, grants: { profiles: ['js'] }, revokedAt: null });
    const missing = await sg.app!.inject({ url: '/v1/agents/ag_0000000000000', headers: sg.admin });
    expect(missing.statusCode).toBe(404);
  });
});

describe('operator policies at start-up', () => {
  it('a broken policy file stops the start: it can open nothing', async () => {
    const { mkdtemp, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = await mkdtemp(join(tmpdir(), 'policies-'));
    await writeFile(
      join(dir, 'open.cedar'),
      '@id("ops:open")\npermit (principal, action, resource) when { principal.isAdmin };',
    );
    await expect(startSandgate({ SANDGATE_POLICIES_DIR: dir })).rejects.toThrow(/ops:open.*does not validate/);
  });

  // It used to name the policy; a policy may decide on a profile's engine or runtime, so naming it
  // to an agent refused outright told it what the profile is. It still names a taint policy to an
  // agent that may otherwise run the profile (test/integration/taint.test.ts).
  it('a profile denied by policy answers 403 like an ungranted one, without naming the policy', async () => {
    const { mkdtemp, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = await mkdtemp(join(tmpdir(), 'policies-'));
    await writeFile(
      join(dir, 'no-js.cedar'),
      '@id("ops:no-js")\nforbid (principal, action == Sandgate::Action::"run_profile", resource) when { resource.name == "js" };',
    );
    const own = await startSandgate({ SANDGATE_POLICIES_DIR: dir });
    try {
      const { auth } = await own.agent({ profiles: ['js'] });
      const res = await own.app!.inject({
        method: 'POST',
        url: '/v1/executions',
        headers: auth,
        payload: { profile: 'js', code: '1' },
      });
      expect(res.statusCode).toBe(403);
      expect(res.json().error.code).toBe('profile_not_granted');
      expect(res.json().error.message).toBe('this agent\'s token does not grant profile "js"');
    } finally {
      await own.stop();
    }
  });
});
