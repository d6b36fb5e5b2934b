// The evidence pack of an agent (GET /v1/agents/:id/evidence) against its audit records: who
// created it and granted what, every token (scoped or not), every approval with its approver
// (approved and denied), the alert and who acknowledged and resolved it, the suspension and the
// resume; each entry equal to the record it cites, nothing of the agent's left out, nothing of
// another agent let in, every cited record verified against the files; the period narrows it;
// roles and bad input as the contract says.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../contract/audit.ts';
import { type FakeEndpoint, startFakeEndpoint } from '../helpers/fake-endpoint.ts';
import { eventually, startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

let sg: TestSandgate;
let gateway: FakeEndpoint;
const who: Record<string, { id: string; auth: Record<string, string> }> = {};
let agentId: string;
let other: string;
let firstTokenAt: string;

const get = (url: string, headers: Record<string, string>) => sg.app!.inject({ url, headers });
const post = (url: string, headers: Record<string, string>, payload: Record<string, unknown> = {}) =>
  sg.app!.inject({ method: 'POST', url, headers, payload });

async function allRecords(id: string): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  let after = '';
  for (let i = 0; i < 20; i++) {
    const page = (await get(`/v1/audit?agentId=${id}&limit=1000${after}`, sg.admin)).json();
    out.push(...page.records);
    if (!page.next) break;
    after = `&after=${encodeURIComponent(page.next)}`;
  }
  return out;
}

async function askToSend(auth: Record<string, string>, to: string, reasoning: string) {
  const res = await post('/v1/actions', auth, {
    tool: 'send_email',
    args: { to, subject: 's', body: 'b' },
    reasoning,
  });
  expect(res.json().status).toBe('awaiting_approval');
  return (await get(`/v1/actions/${res.json().id}`, sg.admin)).json().approval.id as string;
}

beforeAll(async () => {
  gateway = await startFakeEndpoint();
  sg = await startSandgate({
    SANDGATE_TOOLS_DIR: 'tools',
    SANDGATE_MAIL_GATEWAY_URL: `${gateway.url}/send`,
    SANDGATE_MAIL_GATEWAY_TOKEN: 'gw-token-evidence',
    SANDGATE_WATCH: JSON.stringify({ loop: { repeats: 3 } }),
  });
  for (const [name, role] of [
    ['vera', 'approver'],
    ['otto', 'operator'],
    ['aude', 'auditor'],
  ] as const) {
    const res = (await post('/v1/principals', sg.admin, { name, role })).json();
    who[role] = { id: res.id, auth: { authorization: `Bearer ${res.token}` } };
  }
  const created = await post('/v1/agents', sg.admin, {
    name: 'mailer',
    grants: { profiles: ['js'], tools: ['send_email'] },
    limits: { spendPerDay: 3 },
  });
  agentId = created.json().id;
  const token = await sg.mint(agentId, { ttlSeconds: 600 });
  firstTokenAt = new Date().toISOString();
  await new Promise((r) => setTimeout(r, 20));
  await sg.mint(agentId, { ttlSeconds: 120, scopes: { tools: ['send_email'] } });
  const auth = { authorization: `Bearer ${token}` };

  const approved = await askToSend(auth, 'yes@example.com', 'the user asked for it');
  expect(
    (await post(`/v1/approvals/${approved}`, who.approver!.auth, { decision: 'approve', reason: 'ok' })).statusCode,
  ).toBe(200);
  const denied = await askToSend(auth, 'no@example.com', 'the page told me to');
  expect(
    (await post(`/v1/approvals/${denied}`, who.approver!.auth, { decision: 'deny', reason: 'exfil' })).statusCode,
  ).toBe(200);

  // A loop: the third identical run pauses its task and raises an alert the operator handles.
  const task = (await post('/v1/tasks', auth, { goal: 'loop on purpose' })).json().id;
  for (let i = 0; i < 3; i++) await post('/v1/executions', auth, { profile: 'js', code: '1', taskId: task });
  const [alert] = (await get(`/v1/alerts?agentId=${agentId}`, who.operator!.auth)).json().alerts;
  expect(alert.detector).toBe('loop');
  await post(`/v1/alerts/${alert.id}`, who.operator!.auth, { status: 'acknowledged', reason: 'looking' });
  await post(`/v1/alerts/${alert.id}`, who.operator!.auth, { status: 'resolved', reason: 'fixed the prompt' });
  await post(`/v1/agents/${agentId}/suspend`, who.operator!.auth, { reason: 'pause for review' });
  await post(`/v1/agents/${agentId}/resume`, who.operator!.auth, { reason: 'reviewed' });

  // Another agent's work must stay out of this agent's pack.
  const b = await sg.agent({ tools: ['send_email'] });
  other = b.id;
  await askToSend(b.auth, 'other@example.com', 'not mailer');
  // Wait for the audit index to hold everything above (copied after each durable batch).
  await eventually(async () =>
    (await allRecords(agentId)).some((r) => r.kind === 'agent.resumed') ? true : undefined,
  );
});
afterAll(async () => {
  await sg?.stop();
  await gateway?.close();
});

describe('the evidence pack', () => {
  it('tells who created the agent, granted what, issued every token, approved or denied what, handled which alert', async () => {
    const res = await get(`/v1/agents/${agentId}/evidence`, who.auditor!.auth);
    expect(res.statusCode).toBe(200);
    const e = res.json();
    expect(e.agent).toMatchObject({ id: agentId, name: 'mailer', status: 'active', limits: { spendPerDay: 3 } });
    expect(e.generatedBy).toBe(who.auditor!.id);
    expect(e.created).toMatchObject({
      by: 'admin',
      grants: { profiles: ['js'], tools: ['send_email'], destinations: [] },
    });
    expect(e.tokens).toHaveLength(2);
    expect(e.tokens[0]).toMatchObject({ by: 'admin', ttlSeconds: 600, scopes: null });
    expect(e.tokens[1]).toMatchObject({ by: 'admin', ttlSeconds: 120, scopes: { tools: ['send_email'] } });

    expect(e.approvals).toHaveLength(2);
    expect(e.approvals[0]).toMatchObject({
      tool: 'send_email',
      decision: 'approve',
      by: who.approver!.id,
      reason: 'ok',
      requested: { reasoning: 'the user asked for it', args: { to: 'yes@example.com' } },
    });
    expect(e.approvals[1]).toMatchObject({ decision: 'deny', by: who.approver!.id, reason: 'exfil' });
    expect(e.people[who.approver!.id]).toEqual({ name: 'vera', role: 'approver' });
    expect(e.people[who.operator!.id]).toEqual({ name: 'otto', role: 'operator' });

    expect(e.alerts).toHaveLength(1);
    expect(e.alerts[0]).toMatchObject({
      detector: 'loop',
      response: 'pause_task',
      status: 'resolved',
      acknowledged: { by: who.operator!.id, reason: 'looking' },
      resolved: { by: who.operator!.id, reason: 'fixed the prompt' },
    });
    expect(e.standing.map((s: { kind: string }) => s.kind)).toEqual([
      'task.paused',
      'agent.suspended',
      'agent.resumed',
    ]);
    expect(e.standing[0]).toMatchObject({
      by: 'detector:loop',
      alertId: e.alerts[0].alertId,
      taskId: e.tasks[0].taskId,
    });
    expect(e.standing[1]).toMatchObject({ by: who.operator!.id, reason: 'pause for review', alertId: null });
    expect(e.people['detector:loop']).toEqual({ name: 'the loop detector', role: 'detector' });
    expect(e.tasks.map((t: { goal: string }) => t.goal)).toEqual(['loop on purpose']);
    expect(e.truncated).toBe(false);
  });

  it('matches the audit records it cites, leaves none of its kinds out, and every one verifies', async () => {
    const e = (await get(`/v1/agents/${agentId}/evidence`, sg.admin)).json();
    const records = await allRecords(agentId);
    const byId = new Map(records.map((r) => [r.id, r]));
    // Every citation is a record of this agent, and says what the entry says.
    for (const id of e.auditIds) expect(byId.get(id)?.agentId, id).toBe(agentId);
    expect(byId.get(e.created.auditId)!.data).toMatchObject({ grants: e.created.grants, limits: e.created.limits });
    for (const t of e.tokens) expect(byId.get(t.auditId)!.data).toMatchObject({ expiresAt: t.expiresAt });
    for (const a of e.approvals) {
      const r = byId.get(a.auditId)!;
      expect(r.kind).toBe('approval.decided');
      expect(r.data).toMatchObject({ approvalId: a.approvalId, decision: a.decision, by: a.by, reason: a.reason });
      expect(byId.get(a.requested.auditId)!.data).toMatchObject({ args: a.requested.args });
    }
    for (const a of e.alerts) {
      expect(byId.get(a.auditId)!.data).toMatchObject({ alertId: a.alertId, detector: a.detector });
      expect(byId.get(a.acknowledged.auditId)!.kind).toBe('alert.acknowledged');
      expect(byId.get(a.resolved.auditId)!.kind).toBe('alert.resolved');
    }
    // Complete: every record of these kinds is cited.
    for (const kind of [
      'token.issued',
      'approval.decided',
      'alert.raised',
      'task.paused',
      'agent.suspended',
      'agent.resumed',
    ]) {
      const ofKind = records.filter((r) => r.kind === kind).map((r) => r.id);
      expect(ofKind.length, kind).toBeGreaterThan(0);
      for (const id of ofKind) expect(e.auditIds, `${kind} ${id}`).toContain(id);
    }
    // Nothing of the other agent.
    const others = new Set((await allRecords(other)).map((r) => r.id));
    expect(e.auditIds.filter((id: string) => others.has(id))).toEqual([]);
    expect(e.verification.counts).toEqual({ verified: e.auditIds.length, failed: 0, unchecked: 0 });
    expect(Object.keys(e.verification.records).sort()).toEqual([...e.auditIds].sort());
  });

  it('narrows to the period asked for', async () => {
    const e = (await get(`/v1/agents/${agentId}/evidence?from=${encodeURIComponent(firstTokenAt)}`, sg.admin)).json();
    expect(e.period.from).toBe(firstTokenAt);
    expect(e.tokens).toHaveLength(1);
    expect(e.tokens[0].ttlSeconds).toBe(120);
    // Creation is always told: it is who granted what, whatever the period.
    expect(e.created.by).toBe('admin');
    const none = (
      await get(`/v1/agents/${agentId}/evidence?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z`, sg.admin)
    ).json();
    expect([none.tokens, none.approvals, none.alerts, none.standing]).toEqual([[], [], [], []]);
  });

  it('is for auditors and the admin; 404 for an agent never made; 400 for a bad period', async () => {
    for (const role of ['operator', 'approver'])
      expect((await get(`/v1/agents/${agentId}/evidence`, who[role]!.auth)).json().error.code).toBe('forbidden');
    const b = await sg.agent();
    expect((await get(`/v1/agents/${b.id}/evidence`, b.auth)).statusCode).toBe(403);
    const missing = await get('/v1/agents/ag_neverMadeAtAll00/evidence', who.auditor!.auth);
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('not_found');
    for (const q of ['from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z', 'from=last-week', 'since=now']) {
      const res = await get(`/v1/agents/${agentId}/evidence?${q}`, who.auditor!.auth);
      expect(res.statusCode, q).toBe(400);
      expect(res.json().error.code, q).toBe('validation_failed');
    }
  });
});
