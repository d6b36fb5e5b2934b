// tools.call from code in the js profile goes through the same gate as POST /v1/actions: grants,
// argument schema, egress rules, budget, and approval for irreversible tools. Never a bypass.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeEndpoint, startFakeEndpoint } from '../helpers/fake-endpoint.ts';
import { startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

let gateway: FakeEndpoint;
let web: FakeEndpoint;
let sg: TestSandgate;

beforeAll(async () => {
  gateway = await startFakeEndpoint();
  web = await startFakeEndpoint((_, res) => res.end('hello from the web'));
  sg = await startSandgate({
    SANDGATE_TOOLS_DIR: 'tools',
    SANDGATE_MAIL_GATEWAY_URL: `${gateway.url}/send`,
    SANDGATE_MAIL_GATEWAY_TOKEN: 'gw-token-for-code-tests',
  });
});
afterAll(async () => {
  await sg?.stop();
  await Promise.all([gateway?.close(), web?.close()]);
});

const runCode = async (auth: Record<string, string>, code: string, taskId?: string) => {
  const res = await sg.app!.inject({
    method: 'POST',
    url: '/v1/executions?wait=true',
    headers: auth,
    payload: { profile: 'js', code, ...(taskId && { taskId }) },
  });
  expect(res.statusCode).toBe(200);
  return res.json();
};

describe('tools.call inside the isolate', () => {
  it('fetches a granted destination and gets the result back; the task is tainted by it', async () => {
    const { auth } = await sg.agent({
      profiles: ['js'],
      tools: ['http_fetch'],
      destinations: [`127.0.0.1:${web.port}`],
    });
    const task = (
      await sg.app!.inject({ method: 'POST', url: '/v1/tasks', headers: auth, payload: { goal: 'read' } })
    ).json().id;
    const run = await runCode(
      auth,
      `(async () => { const r = await tools.call('http_fetch', { url: '${web.url}/x' }); return [r.status, r.result.body, r.egress[0].ip]; })()`,
      task,
    );
    expect(run).toMatchObject({ status: 'succeeded', result: ['succeeded', 'hello from the web', '127.0.0.1'] });
    const t = (await sg.app!.inject({ url: `/v1/tasks/${task}`, headers: auth })).json();
    expect(t).toMatchObject({ tainted: true, used: { runs: 1, toolCalls: 1 } });
  });

  it('an irreversible tool answers awaiting_approval and sends nothing', async () => {
    const { auth } = await sg.agent({ profiles: ['js'], tools: ['send_email'] });
    const run = await runCode(auth, `tools.call('send_email', { to: 'x@example.com', subject: 's', body: 'b' })`);
    expect(run.status).toBe('succeeded');
    expect(run.result).toMatchObject({
      tool: 'send_email',
      status: 'awaiting_approval',
      approval: { status: 'pending' },
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(gateway.received).toHaveLength(0);
  });

  it('refusals reach the script as errors with the same codes as the API', async () => {
    const { auth } = await sg.agent({ profiles: ['js'], tools: ['http_fetch'] });
    const code = `(async () => {
      const codes = [];
      for (const [name, args] of [['send_email', { to: 'a@b.c', subject: 's', body: 'b' }], ['nope', {}], ['http_fetch', { url: 1 }]]) {
        try { await tools.call(name, args); codes.push('ok'); } catch (e) { codes.push(e.code); }
      }
      const refused = await tools.call('http_fetch', { url: 'http://169.254.169.254/latest/meta-data/' });
      codes.push(refused.status, refused.error.code);
      return codes;
    })()`;
    const run = await runCode(auth, code);
    // An unknown tool is refused like an ungranted one (it was unknown_tool: it told the code which tools exist).
    expect(run.result).toEqual([
      'tool_not_granted',
      'tool_not_granted',
      'validation_failed',
      'failed',
      'egress_refused',
    ]);
  });

  it('the host callback behind tools.call is not reachable from the script', async () => {
    const { auth } = await sg.agent({ profiles: ['js'], tools: ['http_fetch'] });
    const run = await runCode(
      auth,
      `[typeof $1, typeof callTool, Object.getOwnPropertyNames(tools).join(), Object.isFrozen(tools)]`,
    );
    expect(run.result).toEqual(['undefined', 'undefined', 'call', true]);
  });
});
