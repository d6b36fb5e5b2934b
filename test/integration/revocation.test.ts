// Revoking one agent: its next request anywhere is refused, its work is cancelled, a race of 50
// requests admits none after the revoke returns, and other agents are untouched.
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeSandgate, type Sandgate } from '../../bin/compose.ts';
import { eventually, startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

let sg: TestSandgate;
let second: Sandgate;

beforeAll(async () => {
  sg = await startSandgate({ SANDGATE_ISOLATE_CONCURRENCY: '2' });
  // A second API process on the same Redis and keys: revocation must reach it too.
  second = await composeSandgate({ config: sg.config, mode: 'api', logger: pino({ level: 'silent' }) });
});
afterAll(async () => {
  await second?.close();
  await sg?.stop();
});

const post = (app: TestSandgate['app'], auth: Record<string, string>, code: string, query = '') =>
  app!.inject({
    method: 'POST',
    url: `/v1/executions${query}`,
    headers: auth,
    payload: { profile: 'js', code, timeoutMs: 3000 },
  });

describe('revocation', () => {
  it('admits none of 50 racing requests after the revoke returns, and cancels the admitted ones', async () => {
    const victim = await sg.agent({ profiles: ['js'] });
    const bystander = await sg.agent({ profiles: ['js'] });
    const send = (i: number) => post(i % 2 ? sg.app : second.app, victim.auth, 'for (;;) {}');
    // Half are on their way before the revoke, half leave with it.
    const early = Array.from({ length: 25 }, (_, i) => send(i));
    await early[0];
    const revoking = sg.app!.inject({ method: 'POST', url: `/v1/agents/${victim.id}/revoke`, headers: sg.admin });
    const racing = [...early, ...Array.from({ length: 25 }, (_, i) => send(i + 25))];
    const revoke = await revoking;
    expect(revoke.statusCode).toBe(200);
    expect(revoke.json().revokedAt).toBeTruthy();

    const responses = await Promise.all(racing);
    const admitted = responses.filter((r) => r.statusCode === 202).map((r) => r.json().id as string);
    const refused = responses.filter((r) => r.statusCode !== 202);
    for (const r of refused) {
      expect(r.statusCode).toBe(401);
      expect(r.json().error.code).toBe('agent_revoked');
    }
    // Whatever got in before the revoke is cancelled, not run to its end.
    for (const id of admitted) {
      const rec = await eventually<{ status: string; error: { code: string } }>(async () => {
        const r = await sg.app!.inject({ url: `/v1/executions/${id}`, headers: sg.admin });
        return ['queued', 'running'].includes(r.json().status) ? undefined : r.json();
      });
      expect(rec.status).toBe('cancelled');
      expect(rec.error.code).toBe('agent_revoked');
    }
    expect(admitted.length + refused.length).toBe(50);
    expect(admitted.length).toBeGreaterThan(0); // the first was answered before the revoke began

    // The next request, on either API process, is refused.
    for (const app of [sg.app, second.app]) {
      const after = await post(app, victim.auth, '1');
      expect(after.statusCode).toBe(401);
      expect(after.json().error.code).toBe('agent_revoked');
    }
    // The other agent is untouched.
    const ok = await post(sg.app, bystander.auth, '6 * 7', '?wait=true');
    expect(ok.json()).toMatchObject({ status: 'succeeded', result: 42 });
  });

  it('refuses to mint for a revoked agent; re-enabling works only with new tokens', async () => {
    const a = await sg.agent({ profiles: ['js'] });
    await sg.app!.inject({ method: 'POST', url: `/v1/agents/${a.id}/revoke`, headers: sg.admin });
    const mint = await sg.app!.inject({
      method: 'POST',
      url: `/v1/agents/${a.id}/tokens`,
      headers: sg.admin,
      payload: {},
    });
    expect(mint.statusCode).toBe(409);

    const enabled = await sg.app!.inject({ method: 'POST', url: `/v1/agents/${a.id}/enable`, headers: sg.admin });
    expect(enabled.json()).toMatchObject({ revokedAt: null, tokenGeneration: 1 });
    const old = await post(sg.app, a.auth, '1');
    expect(old.statusCode).toBe(401);
    const fresh = await sg.mint(a.id);
    const now = await post(sg.app, { authorization: `Bearer ${fresh}` }, '1', '?wait=true');
    expect(now.json().status).toBe('succeeded');
  });

  it('only an admin revokes', async () => {
    const a = await sg.agent({ profiles: ['js'] });
    const self = await sg.app!.inject({ method: 'POST', url: `/v1/agents/${a.id}/revoke`, headers: a.auth });
    expect(self.statusCode).toBe(403);
    const missing = await sg.app!.inject({
      method: 'POST',
      url: '/v1/agents/ag_0000000000000/revoke',
      headers: sg.admin,
    });
    expect(missing.statusCode).toBe(404);
  });
});

describe('principals', () => {
  it('creates approvers and auditors whose tokens carry their role', async () => {
    const res = await sg.app!.inject({
      method: 'POST',
      url: '/v1/principals',
      headers: sg.admin,
      payload: { name: 'Ada', role: 'approver' },
    });
    expect(res.statusCode).toBe(201);
    const { token, role, id } = res.json();
    expect(role).toBe('approver');
    expect(id).toMatch(/^pr_/);
    const auth = { authorization: `Bearer ${token}` };
    expect((await sg.app!.inject({ url: '/v1/profiles', headers: auth })).statusCode).toBe(200);
    const run = await post(sg.app, auth, '1');
    expect(run.statusCode).toBe(403);
    const bogus = await sg.app!.inject({ url: '/v1/profiles', headers: { authorization: 'Bearer sgp_notarealtoken' } });
    expect(bogus.statusCode).toBe(401);
  });

  it('refuses an agent creating principals, and unknown roles', async () => {
    const a = await sg.agent();
    expect(
      (
        await sg.app!.inject({
          method: 'POST',
          url: '/v1/principals',
          headers: a.auth,
          payload: { name: 'x', role: 'auditor' },
        })
      ).statusCode,
    ).toBe(403);
    const bad = await sg.app!.inject({
      method: 'POST',
      url: '/v1/principals',
      headers: sg.admin,
      payload: { name: 'x', role: 'admin' },
    });
    expect(bad.statusCode).toBe(400);
  });
});
