// Idempotency-Key on POST /v1/executions and POST /v1/actions: a retry gets the first request's
// record, never a second run or tool call; a key is the agent's own and bound to its body.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

let sg: TestSandgate;

beforeAll(async () => {
  sg = await startSandgate({
    SANDGATE_TOOLS_DIR: 'tools',
    SANDGATE_MAIL_GATEWAY_URL: 'http://127.0.0.1:9/send',
    SANDGATE_MAIL_GATEWAY_TOKEN: 't',
  });
});
afterAll(async () => {
  await sg?.stop();
});

const post = (auth: Record<string, string>, url: string, payload: Record<string, unknown>, key?: string) =>
  sg.app!.inject({ method: 'POST', url, headers: { ...auth, ...(key && { 'idempotency-key': key }) }, payload });
const runs = async (auth: Record<string, string>, taskId: string) =>
  (await sg.app!.inject({ url: `/v1/tasks/${taskId}`, headers: auth })).json().used.runs;

describe('Idempotency-Key', () => {
  it('the same key and body admit one run; the retry answers with that run', async () => {
    const { auth } = await sg.agent({ profiles: ['js'] });
    const task = (await post(auth, '/v1/tasks', { goal: 'idempotency' })).json().id;
    const body = { profile: 'js', code: 'console.log("once"); 7', taskId: task };
    const first = await post(auth, '/v1/executions?wait=true', body, 'run-1');
    expect(first.statusCode).toBe(200);
    const again = await post(auth, '/v1/executions?wait=true', body, 'run-1');
    expect(again.statusCode).toBe(200);
    expect(again.json().id).toBe(first.json().id);
    expect(again.json()).toMatchObject({ status: 'succeeded', result: 7 });
    const noWait = await post(auth, '/v1/executions', body, 'run-1');
    expect(noWait.json().id).toBe(first.json().id);
    expect(await runs(auth, task)).toBe(1);
    // Another body under the same key is refused; a new key is a new run.
    const other = await post(auth, '/v1/executions', { ...body, code: '8' }, 'run-1');
    expect(other.statusCode).toBe(409);
    expect(other.json().error.code).toBe('invalid_state');
    expect((await post(auth, '/v1/executions?wait=true', body, 'run-2')).json().id).not.toBe(first.json().id);
    expect(await runs(auth, task)).toBe(2);
  });

  it("a key is the agent's own, and a refused request frees its key", async () => {
    const a = await sg.agent({ profiles: ['js'] });
    const b = await sg.agent({ profiles: ['js'] });
    const body = { profile: 'js', code: '1' };
    const ra = (await post(a.auth, '/v1/executions', body, 'shared')).json().id;
    const rb = (await post(b.auth, '/v1/executions', body, 'shared')).json().id;
    expect(ra).not.toBe(rb);
    const refused = await post(a.auth, '/v1/executions', { profile: 'python', code: '1' }, 'again');
    expect(refused.statusCode).toBe(403);
    const later = await post(a.auth, '/v1/executions', { profile: 'python', code: '1' }, 'again');
    expect(later.json().error.code).toBe('profile_not_granted');
  });

  it('a tool call is made once per key: the retry gets the same pending action', async () => {
    const { auth } = await sg.agent({ tools: ['send_email'] });
    const body = { tool: 'send_email', args: { to: 'a@example.com', subject: 's', body: 'b' } };
    const first = await post(auth, '/v1/actions', body, 'mail-1');
    expect(first.statusCode).toBe(202);
    const again = await post(auth, '/v1/actions', body, 'mail-1');
    expect(again.json()).toEqual({ id: first.json().id, status: 'awaiting_approval' });
    const pending = (await sg.app!.inject({ url: '/v1/approvals', headers: sg.admin })).json().approvals;
    expect(pending.filter((p: { actionId: string }) => p.actionId === first.json().id)).toHaveLength(1);
    expect(pending.filter((p: { args: { to: string } }) => p.args.to === 'a@example.com')).toHaveLength(1);
  });

  it('a malformed key is refused', async () => {
    const { auth } = await sg.agent({ profiles: ['js'] });
    const res = await post(auth, '/v1/executions', { profile: 'js', code: '1' }, 'x'.repeat(256));
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('validation_failed');
  });
});
