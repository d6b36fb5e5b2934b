// The API behind the operator console, on a real Redis: who may read what (GET /v1/me, the agent
// and task lists, activity, the record view), the figures it shows (runs and tool calls in the
// last hour, spend today, open alerts, standing), 404s for ids never made, and the per-record
// audit check telling the truth: a copy altered in the index fails, with or without a recomputed
// hash, and a record of a chain this process cannot read stays unchecked.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../contract/audit.ts';
import { ownHash } from '../../guard/audit/cited-verify.ts';
import { redisKeys } from '../../state/keys.ts';
import { eventually, REDIS_URL, startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

let sg: TestSandgate;
const people: Record<'operator' | 'auditor' | 'approver', Record<string, string>> = {
  operator: {},
  auditor: {},
  approver: {},
};
const ids: Record<string, string> = {};

const get = (url: string, headers: Record<string, string>) => sg.app!.inject({ url, headers });
const post = (url: string, headers: Record<string, string>, payload: Record<string, unknown> = {}) =>
  sg.app!.inject({ method: 'POST', url, headers, payload });

beforeAll(async () => {
  sg = await startSandgate({ SANDGATE_WATCH: JSON.stringify({ loop: { repeats: 3 } }) });
  for (const role of ['operator', 'auditor', 'approver'] as const) {
    const res = await post('/v1/principals', sg.admin, { name: `${role}-1`, role });
    expect(res.statusCode).toBe(201);
    people[role] = { authorization: `Bearer ${res.json().token}` };
    ids[role] = res.json().id;
  }
});
afterAll(async () => {
  await sg?.stop();
});

/** An agent that ran `runs` distinct snippets in a task and was refused once. */
async function busyAgent(runs: number) {
  const a = await sg.agent({ profiles: ['js'] });
  const task = (await post('/v1/tasks', a.auth, { goal: 'count things', budget: { maxSpend: 5 } })).json().id;
  for (let i = 0; i < runs; i++) {
    const res = await post('/v1/executions?wait=true', a.auth, { profile: 'js', code: `${i} + 1`, taskId: task });
    expect(res.json().status).toBe('succeeded');
  }
  expect((await post('/v1/actions', a.auth, { tool: 'send_email', args: {} })).statusCode).toBe(403);
  return { ...a, task };
}

describe('GET /v1/me', () => {
  it('names each human role; refuses an agent token and no token', async () => {
    expect((await get('/v1/me', sg.admin)).json()).toEqual({ role: 'admin', id: 'admin', name: 'admin' });
    for (const role of ['operator', 'auditor', 'approver'] as const)
      expect((await get('/v1/me', people[role])).json()).toEqual({ role, id: ids[role], name: `${role}-1` });
    const a = await sg.agent();
    const agent = await get('/v1/me', a.auth);
    expect(agent.statusCode).toBe(403);
    expect(agent.json().error.code).toBe('forbidden');
    expect((await get('/v1/me', {})).json().error.code).toBe('unauthorized');
  });
});

describe('GET /v1/agents', () => {
  it('lists agents with their standing and figures to operators, auditors and the admin only', async () => {
    const a = await busyAgent(3);
    const quiet = await sg.agent();
    for (const who of [sg.admin, people.operator, people.auditor]) {
      const res = await get('/v1/agents', who);
      expect(res.statusCode).toBe(200);
      const listed = res.json().agents.map((x: { id: string }) => x.id);
      // Newest first.
      expect(listed.indexOf(quiet.id)).toBeLessThan(listed.indexOf(a.id));
    }
    for (const who of [people.approver, a.auth])
      expect((await get('/v1/agents', who)).json().error.code).toBe('forbidden');

    // Settlement and the counters are written just after the answer: read until they land.
    const mine = await eventually(async () => {
      const x = (await get('/v1/agents', people.operator)).json().agents.find((y: { id: string }) => y.id === a.id);
      return x.lastHour.runs === 3 && x.lastHour.refused === 1 && x.today.spent > 0 ? x : undefined;
    });
    expect(mine).toMatchObject({
      status: 'active',
      suspended: null,
      throttled: null,
      grants: { profiles: ['js'] },
      limits: { spendPerDay: 10 },
      lastHour: { runs: 3, toolCalls: 0, refused: 1 },
      today: { cap: 10, reserved: 0 },
      openAlerts: 0,
      worstOpenSeverity: null,
    });
    expect(mine.today.left).toBeCloseTo(10 - mine.today.spent, 9);
    expect(mine.lastHour.spend).toBeCloseTo(mine.today.spent, 9);
  });

  it('shows a looping agent with its open alert, a suspended one and a revoked one as such', async () => {
    const looper = await sg.agent();
    const task = (await post('/v1/tasks', looper.auth, { goal: 'loop' })).json().id;
    const codes = [];
    for (let i = 0; i < 4; i++)
      codes.push((await post('/v1/executions', looper.auth, { profile: 'js', code: '1', taskId: task })).statusCode);
    expect(codes).toEqual([202, 202, 423, 423]);
    const suspended = await sg.agent();
    expect((await post(`/v1/agents/${suspended.id}/suspend`, people.operator, { reason: 'odd' })).statusCode).toBe(200);
    const revoked = await sg.agent();
    const rev = await post(`/v1/agents/${revoked.id}/revoke`, sg.admin, { reason: 'left the project' });
    expect(rev.statusCode).toBe(200);

    const byId = new Map(
      (await get('/v1/agents', people.auditor)).json().agents.map((x: { id: string }) => [x.id, x] as const),
    );
    expect(byId.get(looper.id)).toMatchObject({ status: 'active', openAlerts: 1, worstOpenSeverity: 'high' });
    expect(byId.get(suspended.id)).toMatchObject({
      status: 'suspended',
      suspended: { by: ids.operator, reason: 'odd' },
    });
    expect(byId.get(revoked.id)).toMatchObject({ status: 'revoked' });
    const onlySuspended = (await get('/v1/agents?status=suspended', people.operator)).json().agents;
    expect(onlySuspended.map((x: { id: string }) => x.id)).toContain(suspended.id);
    expect(onlySuspended.every((x: { status: string }) => x.status === 'suspended')).toBe(true);
    // The reason of a revocation is in the audit trail.
    const revokedRecord = (await get(`/v1/audit?agentId=${revoked.id}&kind=agent.revoked`, people.auditor)).json()
      .records[0];
    expect(revokedRecord.data.reason).toBe('left the project');
    expect((await post(`/v1/agents/${revoked.id}/revoke`, people.operator, { reason: 'x' })).statusCode).toBe(403);
  });

  it('suspends, resumes and revokes on a POST without a body, as the contract has it', async () => {
    const a = await sg.agent();
    for (const [who, action] of [
      [people.operator, 'suspend'],
      [people.operator, 'resume'],
      [sg.admin, 'revoke'],
    ] as const) {
      const res = await sg.app!.inject({ method: 'POST', url: `/v1/agents/${a.id}/${action}`, headers: who });
      expect(res.statusCode, `${action}: ${res.body}`).toBe(200);
    }
    expect((await get(`/v1/agents/${a.id}`, people.operator)).json().status).toBe('revoked');
  });

  it('reads one agent with the same figures; 404 for an agent never made, 400 for a malformed id', async () => {
    const a = await sg.agent();
    const one = await get(`/v1/agents/${a.id}`, people.operator);
    expect(one.statusCode).toBe(200);
    expect(one.json()).toMatchObject({ id: a.id, status: 'active', lastHour: { runs: 0 }, openAlerts: 0 });
    for (const who of [sg.admin, people.operator, people.auditor]) {
      const missing = await get('/v1/agents/ag_neverMadeAtAll00', who);
      expect(missing.statusCode).toBe(404);
      expect(missing.json().error.code).toBe('not_found');
    }
    expect((await get('/v1/agents/nope', people.operator)).json().error.code).toBe('validation_failed');
    expect((await get(`/v1/agents/${a.id}`, people.approver)).statusCode).toBe(403);
  });
});

describe('GET /v1/tasks', () => {
  it("lists an agent's tasks newest first with budget and pause; open leaves out exhausted ones", async () => {
    const a = await sg.agent();
    const first = (await post('/v1/tasks', a.auth, { goal: 'first', budget: { maxRuns: 1 } })).json().id;
    expect(
      (await post('/v1/executions?wait=true', a.auth, { profile: 'js', code: '1', taskId: first })).statusCode,
    ).toBe(200);
    expect((await post('/v1/executions', a.auth, { profile: 'js', code: '2', taskId: first })).statusCode).toBe(402);
    const second = (await post('/v1/tasks', a.auth, { goal: 'second' })).json().id;
    const other = await sg.agent();
    await post('/v1/tasks', other.auth, { goal: 'not theirs' });

    const all = (await get(`/v1/tasks?agentId=${a.id}`, people.operator)).json().tasks;
    expect(all.map((t: { id: string }) => t.id)).toEqual([second, first]);
    expect(all[1]).toMatchObject({ status: 'exhausted', used: { runs: 1 }, remaining: { runs: 0 }, paused: null });
    const open = (await get(`/v1/tasks?agentId=${a.id}&status=open`, people.auditor)).json().tasks;
    expect(open.map((t: { id: string }) => t.id)).toEqual([second]);
    // Without an agent: everyone's, newest first.
    const everyone = (await get('/v1/tasks?limit=500', sg.admin)).json().tasks.map((t: { id: string }) => t.id);
    expect(everyone.indexOf(second)).toBeLessThan(everyone.indexOf(first));
    for (const who of [people.approver, a.auth]) expect((await get('/v1/tasks', who)).statusCode).toBe(403);
    // Operators may now read a task and its trace.
    expect((await get(`/v1/tasks/${first}`, people.operator)).statusCode).toBe(200);
    expect((await get('/v1/tasks/task_neverMadeAtAll', people.operator)).statusCode).toBe(404);
  });
});

describe('activity', () => {
  it('buckets runs, refusals and spend per minute for the agent and its task', async () => {
    const a = await busyAgent(2);
    const act = await eventually(async () => {
      const r = (await get(`/v1/agents/${a.id}/activity`, people.auditor)).json();
      return r.total.runs === 2 && r.total.refused === 1 && r.total.spend > 0 ? r : undefined;
    });
    expect(act).toMatchObject({ scope: 'agent', id: a.id, bucketS: 60 });
    expect(act.buckets.length).toBeGreaterThanOrEqual(60);
    expect(act.buckets.length).toBeLessThanOrEqual(61);
    const busy = act.buckets.filter((b: { runs: number }) => b.runs > 0);
    expect(busy.reduce((n: number, b: { runs: number }) => n + b.runs, 0)).toBe(2);
    const task = (await get(`/v1/tasks/${a.task}/activity?bucketS=600`, people.operator)).json();
    expect(task).toMatchObject({ scope: 'task', bucketS: 600, total: { runs: 2, refused: 0 } });
    expect(task.total.spend).toBeCloseTo(act.total.spend, 9);
    expect(task.buckets.length).toBeLessThanOrEqual(7);
  });

  it('refuses windows it cannot draw (400), ids never made (404) and callers without the role (403)', async () => {
    const a = await sg.agent();
    const bad = [
      `/v1/agents/${a.id}/activity?bucketS=90`,
      `/v1/agents/${a.id}/activity?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z`,
      `/v1/agents/${a.id}/activity?from=2026-01-01T00:00:00Z&to=2026-01-20T00:00:00Z&bucketS=86400`,
      `/v1/agents/${a.id}/activity?from=2026-01-01T00:00:00Z&to=2026-01-03T00:00:00Z&bucketS=60`,
      `/v1/agents/${a.id}/activity?from=yesterday`,
    ];
    for (const url of bad) {
      const res = await get(url, people.operator);
      expect(res.statusCode, url).toBe(400);
      expect(res.json().error.code, url).toBe('validation_failed');
    }
    expect((await get('/v1/agents/ag_neverMadeAtAll00/activity', people.operator)).statusCode).toBe(404);
    expect((await get('/v1/tasks/task_neverMade/activity', people.operator)).statusCode).toBe(404);
    expect((await get(`/v1/agents/${a.id}/activity`, a.auth)).statusCode).toBe(403);
    expect((await get(`/v1/agents/${a.id}/activity`, people.approver)).statusCode).toBe(403);
  });
});

describe('the audit check of cited records', () => {
  it('verifies every record of a trace, names the people in it, and tells an agent nothing of it', async () => {
    const a = await busyAgent(2);
    const trace = await eventually(async () => {
      const t = (await get(`/v1/tasks/${a.task}/trace?verify=true`, people.operator)).json();
      return t.records.length >= 7 ? t : undefined; // task created, 2 × (requested, started, finished)
    });
    expect(trace.verification.counts).toEqual({ verified: trace.records.length, failed: 0, unchecked: 0 });
    expect(trace.verification.directory).toMatchObject({ ok: true, error: null });
    for (const r of trace.records)
      expect(trace.verification.records[r.id]).toEqual({ status: 'verified', reason: null });
    expect(trace.people[a.id]).toEqual({ name: 'test-agent', role: 'agent' });

    const own = await get(`/v1/tasks/${a.task}/trace`, a.auth);
    expect(own.statusCode).toBe(200);
    expect(own.json().people).toBeUndefined();
    expect(own.json().verification).toBeUndefined();
    expect((await get(`/v1/tasks/${a.task}/trace?verify=true`, a.auth)).json().error.code).toBe('forbidden');
  });

  it('fails a copy altered in the index, with or without a recomputed hash, and leaves a foreign chain unchecked', async () => {
    const a = await busyAgent(1);
    const records: AuditRecord[] = await eventually(async () => {
      const t = (await get(`/v1/tasks/${a.task}/trace`, people.auditor)).json();
      return t.records.length >= 4 ? t.records : undefined;
    });
    const keys = redisKeys(sg.config.SANDGATE_PREFIX);
    const redis = new Redis(REDIS_URL);
    const requested = records.find((r) => r.kind === 'execution.requested')!;
    const finished = records.find((r) => r.kind === 'run.finished')!;
    // 1. A field changed, the hash left alone.
    await redis.set(
      keys.audit.record(requested.id),
      JSON.stringify({ ...requested, data: { ...requested.data, reasoning: 'edited' } }),
    );
    // 2. A field changed and the hash recomputed: only the file can tell.
    const forged = { ...finished, data: { ...finished.data, status: 'failed' } };
    await redis.set(keys.audit.record(finished.id), JSON.stringify({ ...forged, hash: ownHash(forged) }));
    // 3. A record of a chain that is not in this process's directory.
    const foreign = { ...finished, id: 'elsewhere-1-x:1', writer: 'elsewhere-1-x', seq: 1 };
    await redis.set(keys.audit.record(foreign.id), JSON.stringify({ ...foreign, hash: ownHash(foreign) }));

    redis.disconnect();

    const t = (await get(`/v1/tasks/${a.task}/trace?verify=true`, people.auditor)).json();
    expect(t.verification.records[requested.id]).toEqual({
      status: 'failed',
      reason: expect.stringContaining('does not match its own hash'),
    });
    expect(t.verification.records[finished.id]).toEqual({
      status: 'failed',
      reason: expect.stringContaining('differs from the record in the audit file'),
    });
    expect(t.verification.counts.failed).toBe(2);
    expect(t.verification.counts.verified).toBe(t.records.length - 2);

    const view = await get(`/v1/audit/records/${foreign.id}`, people.operator);
    expect(view.statusCode).toBe(200);
    expect(view.json().verification.records[foreign.id]).toEqual({
      status: 'unchecked',
      reason: expect.stringContaining('another process'),
    });
  });

  it('GET /v1/audit/records/:id: the record, its story and check to operators, auditors, the admin; 404 for none', async () => {
    const a = await busyAgent(1);
    const [rec] = (await get(`/v1/audit?agentId=${a.id}&kind=agent.created`, people.auditor)).json().records;
    for (const who of [people.operator, people.auditor, sg.admin]) {
      const res = await get(`/v1/audit/records/${rec.id}`, who);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({
        record: rec,
        story: expect.stringContaining('agent "test-agent" created'),
        people: { admin: { name: 'admin', role: 'admin' } },
        verification: { counts: { verified: 1, failed: 0, unchecked: 0 } },
      });
    }
    expect((await get('/v1/audit/records/nobody-1:99', people.operator)).statusCode).toBe(404);
    expect((await get(`/v1/audit/records/${rec.id}`, people.approver)).statusCode).toBe(403);
    expect((await get(`/v1/audit/records/${rec.id}`, a.auth)).statusCode).toBe(403);
  });
});
