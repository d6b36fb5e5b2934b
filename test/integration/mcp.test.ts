// The MCP endpoint end to end with the official TypeScript client over streamable HTTP: an agent
// token for this resource, exactly the granted tools, runs in js and python, http_fetch through
// the egress rules, send_email waiting for a human, refusals as tool errors, revocation in the
// middle of a session, the audience and the 401 challenge, and a broken response stream resumed on
// another API process.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { type CallToolResult, LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeSandgate, type Sandgate } from '../../bin/compose.ts';
import { loadConfig } from '../../contract/config.ts';
import { loadKeyRing } from '../../guard/identity/signing-keys.ts';
import { createTokenService } from '../../guard/identity/tokens.ts';
import { redisKeys } from '../../state/keys.ts';
import { createMcpEventLog, MCP_EVENTS_MAX } from '../../state/mcp-events.ts';
import { type FakeEndpoint, startFakeEndpoint } from '../helpers/fake-endpoint.ts';
import { eventually, QUIET_WATCH, startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

let sg: TestSandgate;
let base: string;
let gateway: FakeEndpoint;
let web: FakeEndpoint;
let approver: Record<string, string>;
const clients: Client[] = [];

beforeAll(async () => {
  gateway = await startFakeEndpoint();
  web = await startFakeEndpoint((_, res) => res.end('hello from the web'));
  sg = await startSandgate(
    {
      SANDGATE_TOOLS_DIR: 'tools',
      SANDGATE_MAIL_GATEWAY_URL: `${gateway.url}/send`,
      SANDGATE_MAIL_GATEWAY_TOKEN: 'gw-secret',
    },
    'all',
    ['js', 'python'],
  );
  await sg.app!.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(sg.app!.server.address() as { port: number }).port}`;
  const res = await sg.app!.inject({
    method: 'POST',
    url: '/v1/principals',
    headers: sg.admin,
    payload: { name: 'alice', role: 'approver' },
  });
  approver = { authorization: `Bearer ${res.json().token}` };
}, 60_000);
afterAll(async () => {
  for (const c of clients) await c.close().catch(() => {});
  await sg?.stop();
  await Promise.all([gateway?.close(), web?.close()]);
});

const grants = () => ({
  profiles: ['js', 'python'],
  tools: ['http_fetch', 'send_email'],
  destinations: [`127.0.0.1:${web.port}`],
});

/** An agent and a token for the MCP resource. */
async function mcpAgent(g: Record<string, string[]> = grants()) {
  return sg.agent(g, { resource: `${base}/mcp` });
}

async function connect(token: string, url = `${base}/mcp`): Promise<Client> {
  const client = new Client({ name: 'sandgate-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
  });
  await client.connect(transport);
  clients.push(client);
  return client;
}

const call = async (client: Client, name: string, args: Record<string, unknown>, meta?: Record<string, unknown>) =>
  (await client.callTool({ name, arguments: args, ...(meta && { _meta: meta }) })) as CallToolResult;
const text = (r: CallToolResult) => r.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');

describe('authentication as an OAuth protected resource', () => {
  it('no token: 401 with a WWW-Authenticate naming the metadata, which describes this resource', async () => {
    const res = await fetch(`${base}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(
      `Bearer realm="sandgate", resource_metadata="${base}/.well-known/oauth-protected-resource"`,
    );
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    for (const path of ['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/mcp']) {
      const meta = await (await fetch(`${base}${path}`)).json();
      expect(meta).toMatchObject({
        resource: `${base}/mcp`,
        authorization_servers: [base],
        bearer_methods_supported: ['header'],
        scopes_supported: ['agent'],
      });
    }
  });

  it('a token of another audience is refused: the REST API token, and one minted for another resource', async () => {
    const { id, token: restToken } = await sg.agent(grants());
    const keys = createTokenService(await loadKeyRing(sg.config.SANDGATE_DATA_DIR));
    const elsewhere = await keys.mint(id, { ttlSeconds: 60, audience: 'https://other.example/mcp' });
    for (const token of [restToken, elsewhere.token]) {
      const res = await fetch(`${base}/mcp`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
    }
    // And the other way round: an MCP token does not open the REST API.
    const { auth } = await mcpAgent();
    expect((await sg.app!.inject({ url: '/v1/tools', headers: auth })).statusCode).toBe(401);
    // A token cannot be minted for a resource this service is not.
    const refused = await sg.app!.inject({
      method: 'POST',
      url: `/v1/agents/${id}/tokens`,
      headers: sg.admin,
      payload: { resource: 'https://other.example/mcp' },
    });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().error.code).toBe('validation_failed');
  });

  it('an expired token is refused with the challenge', async () => {
    const { id } = await sg.agent(grants());
    const past = createTokenService(await loadKeyRing(sg.config.SANDGATE_DATA_DIR), () => Date.now() - 120_000);
    const { token } = await past.mint(id, { ttlSeconds: 60, audience: `${base}/mcp` });
    await expect(connect(token)).rejects.toMatchObject({
      code: 401,
      message: expect.stringContaining('token_expired'),
    });
  });

  it('GET without Last-Event-ID and DELETE: 405, there are no sessions', async () => {
    const { token } = await mcpAgent();
    const headers = { authorization: `Bearer ${token}`, accept: 'text/event-stream' };
    expect((await fetch(`${base}/mcp`, { headers })).status).toBe(405);
    expect((await fetch(`${base}/mcp`, { method: 'DELETE', headers })).status).toBe(405);
    const foreign = await fetch(`${base}/mcp`, { headers: { ...headers, 'last-event-id': 'nope_1-0' } });
    expect(foreign.status).toBe(404);
  });
});

describe('tools over MCP', () => {
  it('lists exactly the granted tools: run_code with the granted profiles and their limits, each tool with its schema', async () => {
    const { token } = await mcpAgent();
    const client = await connect(token);
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual([
      'get_action',
      'get_execution',
      'http_fetch',
      'run_code',
      'send_email',
    ]);
    const runCode = tools.find((t) => t.name === 'run_code')!;
    expect((runCode.inputSchema.properties as Record<string, { enum?: string[] }>).profile!.enum).toEqual([
      'js',
      'python',
    ]);
    expect(runCode.description).toContain('- python (python, docker)');
    expect(runCode.description).toMatch(/timeout ≤ 10000 ms, memory ≤ 256 MB/);
    const sendEmail = tools.find((t) => t.name === 'send_email')!;
    expect(sendEmail.annotations).toMatchObject({ destructiveHint: true });
    expect(sendEmail._meta).toMatchObject({ 'sandgate/irreversible': true });
    expect(sendEmail.inputSchema).toMatchObject({ type: 'object', required: ['to', 'subject', 'body'] });
    expect(tools.find((t) => t.name === 'http_fetch')!.annotations).toMatchObject({ destructiveHint: false });

    // Narrower grants, narrower list; a token's scopes narrow it further.
    const jsOnly = await connect((await mcpAgent({ profiles: ['js'] })).token);
    expect((await jsOnly.listTools()).tools.map((t) => t.name).sort()).toEqual(['get_execution', 'run_code']);
    const scoped = await sg.agent(grants(), { resource: `${base}/mcp`, scopes: { profiles: ['python'], tools: [] } });
    const narrowed = (await (await connect(scoped.token)).listTools()).tools;
    expect(narrowed.map((t) => t.name).sort()).toEqual(['get_execution', 'run_code']);
    expect(
      (narrowed.find((t) => t.name === 'run_code')!.inputSchema.properties as Record<string, { enum?: string[] }>)
        .profile!.enum,
    ).toEqual(['python']);
  });

  it('runs js and python, through the same lifecycle as REST (audited, budgeted)', async () => {
    const { id, token } = await mcpAgent();
    const client = await connect(token);
    const js = await call(client, 'run_code', { profile: 'js', code: 'console.log(6 * 7); 1 + 1' });
    expect(js.isError).toBe(false);
    expect(js.structuredContent).toMatchObject({ status: 'succeeded', stdout: '42\n', result: 2 });
    expect(text(js)).toContain('stdout:\n42');
    const py = await call(client, 'run_code', { profile: 'python', code: 'import sys\nprint(sys.version_info[0])' });
    expect(py.structuredContent).toMatchObject({ status: 'succeeded', stdout: '3\n', exitCode: 0 });
    const failed = await call(client, 'run_code', { profile: 'python', code: 'raise SystemExit(3)' });
    expect(failed.isError).toBe(true);
    expect(failed.structuredContent).toMatchObject({ status: 'failed', exitCode: 3 });

    const execId = (js.structuredContent as { id: string }).id;
    const read = await call(client, 'get_execution', { id: execId });
    expect(read.structuredContent).toMatchObject({ id: execId, status: 'succeeded' });
    // The REST view of the same run, and its audit records.
    const rest = (await sg.app!.inject({ url: `/v1/executions/${execId}`, headers: sg.admin })).json();
    expect(rest).toMatchObject({ status: 'succeeded', agentId: id });
    const audit = (await sg.app!.inject({ url: `/v1/audit?agentId=${id}&limit=100`, headers: sg.admin })).json();
    const kinds = audit.records.map((r: { kind: string }) => r.kind);
    expect(kinds.filter((k: string) => k === 'execution.requested')).toHaveLength(3);
    expect(kinds).toContain('run.finished');
  }, 60_000);

  it("a run's output arrives as log and progress notifications before its result", async () => {
    const { token } = await mcpAgent();
    const client = await connect(token);
    const logs: Array<{ at: number; logger?: string; data: unknown }> = [];
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
      logs.push({ at: Date.now(), logger: n.params.logger, data: n.params.data });
    });
    const progress: string[] = [];
    const code =
      'import sys, time\nfor i in range(3):\n    print("line", i)\n    time.sleep(0.4)\nprint("oops", file=sys.stderr)';
    const result = (await client.callTool({ name: 'run_code', arguments: { profile: 'python', code } }, undefined, {
      onprogress: (p) => progress.push(p.message ?? ''),
    })) as CallToolResult;
    const answeredAt = Date.now();
    expect(result.structuredContent).toMatchObject({ status: 'succeeded', stdout: 'line 0\nline 1\nline 2\n' });
    const out = logs
      .filter((l) => l.logger === 'stdout')
      .map((l) => l.data)
      .join('');
    expect(out).toBe('line 0\nline 1\nline 2\n');
    expect(
      logs
        .filter((l) => l.logger === 'stderr')
        .map((l) => l.data)
        .join(''),
    ).toBe('oops\n');
    // Live, not at the end: each line came on its own (the run sleeps between them), before the answer.
    const chunks = logs.filter((l) => l.logger === 'stdout').map((l) => String(l.data));
    // Some first chunks hold line 0 and not yet line 1: sent while the run slept, before line 1
    // existed (a trailing newline may wait for the next chunk: it could start the supervisor's trailer).
    const prefixes = chunks.map((_, k) => chunks.slice(0, k + 1).join(''));
    expect(prefixes.some((p) => p.includes('line 0') && !p.includes('line 1'))).toBe(true);
    expect(prefixes.some((p) => p.includes('line 1') && !p.includes('line 2'))).toBe(true);
    expect(logs.every((l) => l.at <= answeredAt)).toBe(true);
    expect(progress.some((m) => m.startsWith('stdout: line'))).toBe(true);
  }, 30_000);

  it('refusals are tool errors with Sandgate code and message, and are audited like REST refusals', async () => {
    const { id, token } = await mcpAgent();
    const client = await connect(token);
    const shell = await call(client, 'run_code', { profile: 'shell', code: 'echo hi' });
    expect(shell.isError).toBe(true);
    expect(text(shell)).toMatch(/^profile_not_granted: /);
    expect(shell.structuredContent).toMatchObject({ error: { code: 'profile_not_granted', status: 403 } });
    const pay = await call(client, 'make_payment', { amount: 1 });
    expect(text(pay)).toMatch(/^tool_not_granted: /);
    const bad = await call(client, 'run_code', { profile: 'js' });
    expect(text(bad)).toMatch(/^validation_failed: code/);
    const ceiling = await call(client, 'run_code', { profile: 'js', code: '1', timeoutMs: 10_000_000 });
    expect(text(ceiling)).toMatch(/^limit_exceeds_profile: /);
    const notMine = await call(client, 'get_execution', { id: 'ex_doesnotexist00' });
    expect(text(notMine)).toMatch(/^not_found: /);
    const audit = (await sg.app!.inject({ url: `/v1/audit?agentId=${id}&limit=100`, headers: sg.admin })).json();
    const kinds = audit.records.map((r: { kind: string }) => r.kind);
    expect(kinds).toContain('execution.refused');
    expect(kinds).toContain('action.refused');
  });

  it('http_fetch goes through the egress rules: a granted destination answers, another is refused unreached', async () => {
    const { token } = await mcpAgent();
    const client = await connect(token);
    const ok = await call(client, 'http_fetch', { url: `${web.url}/page` });
    expect(ok.isError).toBeFalsy();
    expect(JSON.stringify(ok.structuredContent)).toContain('hello from the web');
    expect((ok.structuredContent as { egress: Array<{ allowed: boolean }> }).egress[0]!.allowed).toBe(true);
    const before = gateway.received.length;
    const refused = await call(client, 'http_fetch', { url: `${gateway.url}/send` });
    expect(refused.isError).toBe(true);
    expect(text(refused)).toContain('egress_refused');
    expect(gateway.received.length).toBe(before);
  });

  it('send_email waits for a human, says how to check, and completes after approval', async () => {
    const { id, token } = await mcpAgent();
    const client = await connect(token);
    // The task is opened over REST (an MCP token does not open the REST API), then named in _meta.
    const rest = await sg.mint(id);
    const taskId = (
      await sg.app!.inject({
        method: 'POST',
        url: '/v1/tasks',
        headers: { authorization: `Bearer ${rest}` },
        payload: { goal: 'mail the report' },
      })
    ).json().id as string;
    const asked = await call(
      client,
      'send_email',
      { to: 'cfo@example.com', subject: 'Q3', body: 'Attached.' },
      { 'sandgate/reasoning': 'the CFO asked for the report', 'sandgate/taskId': taskId },
    );
    expect(asked.structuredContent).toMatchObject({ status: 'awaiting_approval' });
    expect(
      (await sg.app!.inject({ url: `/v1/tasks/${taskId}`, headers: { authorization: `Bearer ${rest}` } })).json().used
        .toolCalls,
    ).toBe(1);
    expect(asked.isError).toBeFalsy();
    const action = asked.structuredContent as { id: string; status: string; approval: { id: string } };
    expect(action.status).toBe('awaiting_approval');
    expect(text(asked)).toContain('waits for a human approver');
    expect(text(asked)).toContain(`get_action {"id":"${action.id}"}`);
    expect(gateway.received.filter((r) => r.body.includes('cfo@example.com'))).toHaveLength(0);

    const pending = (await sg.app!.inject({ url: '/v1/approvals?status=pending', headers: approver })).json();
    expect(pending.approvals.find((a: { id: string }) => a.id === action.approval.id)).toMatchObject({
      reasoning: 'the CFO asked for the report',
    });
    const decided = await sg.app!.inject({
      method: 'POST',
      url: `/v1/approvals/${action.approval.id}`,
      headers: approver,
      payload: { decision: 'approve' },
    });
    expect(decided.statusCode).toBe(200);
    const done = await eventually(async () => {
      const r = await call(client, 'get_action', { id: action.id });
      return (r.structuredContent as { status: string }).status === 'succeeded' ? r : undefined;
    });
    expect(done.isError).toBeFalsy();
    expect(gateway.received.filter((r) => r.body.includes('cfo@example.com'))).toHaveLength(1);
  });

  it('a revoked agent is refused in the middle of its session', async () => {
    const { id, token } = await mcpAgent();
    const client = await connect(token);
    expect((await call(client, 'run_code', { profile: 'js', code: '1' })).isError).toBe(false);
    const revoked = await sg.app!.inject({ method: 'POST', url: `/v1/agents/${id}/revoke`, headers: sg.admin });
    expect(revoked.statusCode).toBe(200);
    const refused = { code: 401, message: expect.stringContaining('agent_revoked') };
    await expect(call(client, 'run_code', { profile: 'js', code: '2' })).rejects.toMatchObject(refused);
    await expect(client.listTools()).rejects.toMatchObject(refused);
  });
});

describe('limits and hostile requests', () => {
  const post = (token: string, body: string, extra: Record<string, string> = {}) =>
    fetch(`${base}/mcp`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        ...extra,
      },
      body,
    });

  it('a request from a browser page of another origin is refused (DNS rebinding)', async () => {
    const { token } = await mcpAgent();
    const res = await post(token, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }), {
      origin: 'http://evil.example',
    });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('forbidden');
    const same = await post(token, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }), { origin: base });
    expect(same.status).toBe(200);
  });

  it('a body over the limit is 413, a body that is not JSON-RPC is 400', async () => {
    const { token } = await mcpAgent();
    const big = await post(
      token,
      JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'x', params: { p: 'x'.repeat(2 << 20) } }),
    );
    expect(big.status).toBe(413);
    const junk = await post(token, JSON.stringify({ hello: 'world' }));
    expect(junk.status).toBe(400);
  });

  it('a response stream in Redis is capped and expires', async () => {
    const redis = new Redis(sg.config.REDIS_URL);
    try {
      const log = createMcpEventLog(redis, sg.config.SANDGATE_PREFIX, 30);
      const agentId = 'ag_capcapcapcap';
      let last = '';
      for (let i = 0; i < MCP_EVENTS_MAX + 500; i += 100) {
        const ids = await Promise.all(
          Array.from({ length: 100 }, (_, j) => log.append(agentId, 'cap-stream', { i: i + j })),
        );
        last = ids.at(-1)!;
      }
      const key = redisKeys(sg.config.SANDGATE_PREFIX).mcpEvents(agentId, 'cap-stream');
      // Trimmed approximately (whole radix nodes): never much more than the cap.
      expect(await redis.xlen(key)).toBeLessThanOrEqual(MCP_EVENTS_MAX + 200);
      expect(await redis.ttl(key)).toBeGreaterThan(0);
      expect(await redis.ttl(key)).toBeLessThanOrEqual(30);
      expect(log.streamOf(last)).toBe('cap-stream');
      expect(await log.after(agentId, last, 10)).toEqual([]);
      expect(await log.after('ag_someoneelse1', last, 10)).toEqual([]);
    } finally {
      redis.disconnect();
    }
  });
});

describe('resumable on any API process', () => {
  let one: Sandgate;
  let two: Sandgate;
  let urls: string[];

  beforeAll(async () => {
    // Two API processes behind one public name, as behind a load balancer: one resource, one audience.
    const config = loadConfig({ ...process.env, ...configEnv(), SANDGATE_PUBLIC_URL: 'http://sandgate.test' });
    one = await composeSandgate({ config, mode: 'api', logger: pino({ level: 'silent' }) });
    two = await composeSandgate({ config, mode: 'api', logger: pino({ level: 'silent' }) });
    urls = [];
    for (const s of [one, two]) {
      await s.app!.listen({ port: 0, host: '127.0.0.1' });
      urls.push(`http://127.0.0.1:${(s.app!.server.address() as { port: number }).port}/mcp`);
    }
  });
  afterAll(async () => {
    await one?.close();
    await two?.close();
  });

  /** The main instance's prefix and data dir, so the runner of `sg` runs what these two admit. */
  const configEnv = () => ({
    REDIS_URL: sg.config.REDIS_URL,
    SANDGATE_PREFIX: sg.config.SANDGATE_PREFIX,
    SANDGATE_DATA_DIR: sg.config.SANDGATE_DATA_DIR,
    SANDGATE_ADMIN_TOKEN: sg.config.SANDGATE_ADMIN_TOKEN!,
    SANDGATE_PROFILES_DIR: sg.config.SANDGATE_PROFILES_DIR,
    SANDGATE_TOOLS_DIR: 'tools',
    SANDGATE_LOG_LEVEL: 'silent',
    SANDGATE_WATCH: QUIET_WATCH,
    PORT: '0',
  });

  const mintOn = async (s: Sandgate, agentId: string) => {
    const res = await s.app!.inject({
      method: 'POST',
      url: `/v1/agents/${agentId}/tokens`,
      headers: sg.admin,
      payload: { resource: 'http://sandgate.test/mcp' },
    });
    expect(res.statusCode).toBe(201);
    return res.json().token as string;
  };

  it('a response stream cut on one process is resumed with Last-Event-ID on the other', async () => {
    const { id } = await sg.agent(grants());
    const token = await mintOn(one, id);
    const headers = {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2025-11-25',
    };
    const abort = new AbortController();
    const res = await fetch(urls[0]!, {
      method: 'POST',
      headers,
      signal: abort.signal,
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 7,
        method: 'tools/call',
        params: {
          name: 'run_code',
          arguments: { profile: 'js', code: 'const t = Date.now(); while (Date.now() - t < 1500); 6 * 7' },
        },
      }),
    });
    expect(res.status).toBe(200);
    // Read up to the priming event's id, then drop the connection.
    const reader = res.body!.getReader();
    let seen = '';
    while (!/id: (\S+)\n/.test(seen)) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += new TextDecoder().decode(value);
    }
    const lastEventId = /id: (\S+)\n/.exec(seen)![1]!;
    abort.abort();

    const resumed = await fetch(urls[1]!, { headers: { ...headers, 'last-event-id': lastEventId } });
    expect(resumed.status).toBe(200);
    const body = await resumed.text();
    const messages = body
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .map((l) => JSON.parse(l.slice(6)));
    const response = messages.find((m) => m.id === 7);
    expect(response.result.structuredContent).toMatchObject({ status: 'succeeded', result: 42 });
    // Another agent cannot read that stream.
    const other = await mintOn(two, (await sg.agent(grants())).id);
    const stolen = await fetch(urls[1]!, {
      headers: { ...headers, authorization: `Bearer ${other}`, 'last-event-id': lastEventId },
    });
    expect(stolen.status).toBe(404);
  }, 30_000);
});
