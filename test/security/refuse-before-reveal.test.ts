// Refuse before you reveal: an agent probing with a token that lacks a grant learns nothing about
// the tool or profile it names: not whether it exists, is configured or can run, nor its argument
// schema, ceilings, languages or file caps. Every such refusal is one 403 whose body differs only
// by the name the agent sent. Ids of other agents' work read as "not found", like ids never made.
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeEndpoint, startFakeEndpoint } from '../helpers/fake-endpoint.ts';
import { eventually, startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

type Auth = Record<string, string>;
type Probe = [what: string, name: string, args: Record<string, unknown>, untrusted?: boolean];

// Attribute-based forbids: naming them in a refusal would tell the agent what the tool or profile is.
const READERS_POLICY = `
@id("ops:readers-no-irreversible")
forbid (principal, action == Sandgate::Action::"call_tool", resource is Sandgate::Tool)
when { principal.name == "reader" && resource.irreversible };

@id("ops:readers-no-containers")
forbid (principal, action == Sandgate::Action::"run_profile", resource is Sandgate::Profile)
when { principal.name == "reader" && resource.engine == "docker" };
`;

const TOOLS = ['deploy', 'http_fetch', 'make_payment', 'send_email'];
const EMAIL = { to: 'a@example.com', subject: 's', body: 'b' };
const TOOL_PROBES: Probe[] = [
  ['configured, good arguments', 'send_email', EMAIL],
  ['configured, bad arguments', 'send_email', { to: 'nope', bcc: 'x@example.com' }],
  ['unconfigured, good arguments', 'deploy', { service: 'web', version: '1', environment: 'production' }],
  ['unconfigured, bad arguments', 'deploy', { environment: 'moon' }],
  ['unknown', 'launch_missiles', {}],
  ['unknown, with arguments', 'read_secrets', { path: '/etc/shadow' }],
  ['upper-case variant', 'SEND_EMAIL', EMAIL],
  ['full-width variant', 'ｓｅｎｄ_ｅｍａｉｌ', EMAIL],
  ['zero-width variant', 'send\u200b_email', EMAIL],
  ['untrusted arguments to a policy-guarded tool', 'make_payment', { payee: 'x', amount: 1, currency: 'EUR' }, true],
];
const REF_TOOL = `{"error":{"code":"tool_not_granted","message":"this agent's token does not grant tool \\"<name>\\""}}`;
const REF_PROFILE = `{"error":{"code":"profile_not_granted","message":"this agent's token does not grant profile \\"<name>\\""}}`;

const manyFiles = Array.from({ length: 40 }, (_, i) => ({ path: `f${i}`, content: 'x' }));
const PROFILE_PROBES: Array<[string, Record<string, unknown>]> = [
  ['existing, engine down', { profile: 'python', code: 'print(1)' }],
  ['over the timeout ceiling', { profile: 'python', code: 'print(1)', timeoutMs: 999_999 }],
  ['over the memory ceiling', { profile: 'python', code: 'print(1)', memoryMb: 65_536 }],
  ['the wrong language', { profile: 'python', code: '1', language: 'javascript' }],
  ['too many files', { profile: 'python', code: 'print(1)', files: manyFiles }],
  ['untrusted inputs', { profile: 'python', code: 'print(1)', untrusted: true }],
  ['unknown', { profile: 'cobol', code: '1' }],
  ['shipped but not loaded here', { profile: 'python-gvisor', code: 'print(1)', timeoutMs: 999_999 }],
];

let sg: TestSandgate;
let gateway: FakeEndpoint;
let policies: string;
const who: Record<'bare' | 'scoped' | 'reader' | 'granted' | 'pythonOnly', { id: string; auth: Auth }> = {} as never;

/** The body with the name the agent sent cut out: all that may vary is what the agent itself said. */
const shape = (body: string, name: string) => body.split(JSON.stringify(name).slice(1, -1)).join('<name>');
const post = (auth: Auth, url: string, payload: Record<string, unknown>) =>
  sg.app!.inject({ method: 'POST', url, headers: auth, payload });
const get = (auth: Auth, url: string) => sg.app!.inject({ url, headers: auth });
const callTool = (auth: Auth, [, tool, args, untrusted]: Probe, taskId?: string) =>
  post(auth, '/v1/actions', { tool, args, ...(untrusted && { untrusted }), ...(taskId && { taskId }) });
const newTask = async (auth: Auth) => (await post(auth, '/v1/tasks', { goal: 'probe' })).json().id as string;

async function agentNamed(name: string, grants: Record<string, string[]>, token: Record<string, unknown> = {}) {
  const res = await post(sg.admin, '/v1/agents', { name, grants });
  expect(res.statusCode).toBe(201);
  const id = res.json().id as string;
  return { id, auth: { authorization: `Bearer ${await sg.mint(id, token)}` } };
}

beforeAll(async () => {
  gateway = await startFakeEndpoint();
  policies = await mkdtemp(join(tmpdir(), 'policies-'));
  await copyFile('policies/README.cedar', join(policies, 'README.cedar'));
  await writeFile(join(policies, 'readers.cedar'), READERS_POLICY);
  // send_email configured, deploy and make_payment not; python loaded but its engine unreachable.
  sg = await startSandgate(
    {
      SANDGATE_TOOLS_DIR: 'tools',
      SANDGATE_POLICIES_DIR: policies,
      SANDGATE_DOCKER_SOCKET: '/nonexistent/docker.sock',
      SANDGATE_MAIL_GATEWAY_URL: `${gateway.url}/send`,
      SANDGATE_MAIL_GATEWAY_TOKEN: 'gw-token-not-for-agents',
    },
    'all',
    ['js', 'python'],
  );
  const all = { profiles: ['js', 'python'], tools: TOOLS };
  who.bare = await agentNamed('bare', { profiles: ['js'] });
  who.granted = await agentNamed('granted', all);
  who.scoped = await agentNamed('scoped', all, { scopes: { profiles: ['js'], tools: ['http_fetch'] } });
  who.reader = await agentNamed('reader', { profiles: ['js', 'python'], tools: ['send_email', 'http_fetch'] });
  who.pythonOnly = {
    id: who.granted.id,
    auth: { authorization: `Bearer ${await sg.mint(who.granted.id, { scopes: { profiles: ['python'], tools: [] } })}` },
  };
});
afterAll(async () => {
  await sg?.stop();
  await gateway?.close();
  if (policies) await rm(policies, { recursive: true, force: true });
});

describe('tool calls by an agent without the grant', () => {
  // bare: no tools; scoped: granted all, token narrowed to http_fetch; reader: an operator forbid.
  for (const agent of ['bare', 'scoped', 'reader'] as const) {
    it.each(TOOL_PROBES)(`${agent}: %s → the one 403`, async (...probe) => {
      const res = await callTool(who[agent].auth, probe);
      expect(res.statusCode).toBe(403);
      expect(shape(res.body, probe[1])).toBe(REF_TOOL);
    });
  }

  it('the granted agent does get what the others were not told, so there was something to hide', async () => {
    const { auth } = who.granted;
    const bad = await callTool(auth, TOOL_PROBES[1]!);
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toContain('unknown property "bcc"');
    const unconfigured = await callTool(auth, TOOL_PROBES[2]!);
    expect(unconfigured.statusCode).toBe(503);
    expect(unconfigured.json().error.code).toBe('tool_unavailable');
    // Refused for its inputs, not outright: this agent may be told which policy (before the 503).
    const untrusted = await callTool(auth, TOOL_PROBES[9]!);
    expect(untrusted.statusCode).toBe(403);
    expect(untrusted.json().error.message).toContain('ops:no-untrusted-payments');
    // Names are exact: a variant or an unknown name is no tool, for this agent too.
    for (const probe of [TOOL_PROBES[4]!, TOOL_PROBES[6]!, TOOL_PROBES[7]!]) {
      expect(shape((await callTool(auth, probe)).body, probe[1])).toBe(REF_TOOL);
    }
  });

  it('untrusted arguments taint the task whether the tool exists or not', async () => {
    const { auth } = who.bare;
    for (const name of ['launch_missiles', 'send_email']) {
      const task = await newTask(auth);
      expect((await callTool(auth, ['', name, EMAIL, true], task)).statusCode).toBe(403);
      expect((await get(auth, `/v1/tasks/${task}`)).json()).toMatchObject({
        tainted: true,
        taintSources: [`arguments of a ${name} call marked untrusted`],
      });
    }
  });
});

describe('runs by an agent without the profile', () => {
  for (const agent of ['bare', 'scoped', 'reader'] as const) {
    it.each(PROFILE_PROBES)(`${agent}: %s → the one 403`, async (_what, payload) => {
      const res = await post(who[agent].auth, '/v1/executions', payload);
      expect(res.statusCode).toBe(403);
      expect(shape(res.body, payload.profile as string)).toBe(REF_PROFILE);
    });
  }

  it.each<[string, Record<string, unknown>]>([
    ['code above the cap', { code: `/*${'x'.repeat(300_000)}*/1` }],
    ['stdin on the isolate', { code: '1', stdin: 'x' }],
    ['files on the isolate', { code: '1', files: [{ path: 'a', content: 'x' }] }],
    ['over the timeout ceiling', { code: '1', timeoutMs: 999_999 }],
  ])('a token scoped out of js: %s → the one 403', async (_what, payload) => {
    const res = await post(who.pythonOnly.auth, '/v1/executions', { profile: 'js', ...payload });
    expect(res.statusCode).toBe(403);
    expect(shape(res.body, 'js')).toBe(REF_PROFILE);
  });

  it('the granted agent does get the ceilings, caps, language and engine state', async () => {
    const run = (payload: Record<string, unknown>) => post(who.granted.auth, '/v1/executions', payload);
    const [plain, timeout, , language, files] = await Promise.all(PROFILE_PROBES.slice(0, 5).map(([, p]) => run(p)));
    expect([plain!.statusCode, plain!.json().error.code]).toEqual([503, 'engine_unavailable']);
    expect(timeout!.json().error.message).toContain('at most 10000 ms');
    expect(language!.json().error.code).toBe('language_mismatch');
    expect(files!.json().error.message).toContain('at most 32');
    expect((await run({ profile: 'js', code: `/*${'x'.repeat(300_000)}*/1` })).statusCode).toBe(413);
    // Refused for a tainted task, not outright: named, and before the engine's 503.
    const tainted = await run({
      profile: 'python',
      code: 'print(1)',
      untrusted: true,
      taskId: await newTask(who.granted.auth),
    });
    expect(tainted.statusCode).toBe(403);
    expect(tainted.json().error.message).toContain('ops:tainted-tasks-only-gvisor');
  });

  it('a misspelt profile is a 400 on the body alone, the same for granted and ungranted', async () => {
    const bodies = await Promise.all(
      [who.granted, who.bare].map(
        async ({ auth }) => (await post(auth, '/v1/executions', { profile: 'Python', code: '1' })).body,
      ),
    );
    expect(JSON.parse(bodies[0]!).error.code).toBe('validation_failed');
    expect(bodies[1]).toBe(bodies[0]);
  });

  it('untrusted inputs taint the task whether the profile exists or not', async () => {
    const { auth } = who.bare;
    for (const profile of ['cobol', 'python']) {
      const task = await newTask(auth);
      expect(
        (await post(auth, '/v1/executions', { profile, code: '1', untrusted: true, taskId: task })).statusCode,
      ).toBe(403);
      expect((await get(auth, `/v1/tasks/${task}`)).json()).toMatchObject({
        tainted: true,
        taintSources: [`inputs of an execution on ${profile} marked untrusted`],
      });
    }
  });
});

describe('tools.call from js code', () => {
  const probes = TOOL_PROBES.filter((p) => !p[3]).map(([, name, args]) => [name, args]);
  const code = `(async () => {
    const out = [];
    for (const [name, args] of ${JSON.stringify(probes)}) {
      try { await tools.call(name, args); out.push(['admitted']); } catch (e) { out.push([e.code, e.message]); }
    }
    return out;
  })()`;
  const runProbes = async (auth: Auth) => {
    const res = await post(auth, '/v1/executions?wait=true', { profile: 'js', code });
    expect(res.json().status).toBe('succeeded');
    return res.json().result as Array<[string, string]>;
  };
  const refusal = (name: string) => ['tool_not_granted', `this agent's token does not grant tool "${name}"`];

  it.each(['bare', 'scoped', 'reader'] as const)('%s: every probe is the same refusal', async (agent) => {
    const result = await runProbes(who[agent].auth);
    expect(result).toEqual(probes.map(([name]) => refusal(name as string)));
  });

  it('the granted agent gets the schema and availability answers from code too', async () => {
    const result = await runProbes(who.granted.auth);
    expect(result.map((r) => r[0])).toEqual([
      'admitted',
      'validation_failed',
      'tool_unavailable',
      'tool_unavailable',
      ...probes.slice(4).map(() => 'tool_not_granted'),
    ]);
  });
});

describe('listings show an agent what it may use', () => {
  const names = async (auth: Auth, what: 'tools' | 'profiles') =>
    ((await get(auth, `/v1/${what}`)).json()[what] as Array<{ name: string }>).map((x) => x.name).sort();

  it.each<[string, () => Auth, string[], string[]]>([
    ['no grants', () => who.bare.auth, [], ['js']],
    ['a narrowed token', () => who.scoped.auth, ['http_fetch'], ['js']],
    ['an operator forbid', () => who.reader.auth, ['http_fetch'], ['js']],
    ['every grant', () => who.granted.auth, TOOLS, ['js', 'python']],
    ['the admin', () => sg.admin, [...TOOLS, 'delete_record'].sort(), ['js', 'python']],
  ])('%s', async (_what, auth, tools, profiles) => {
    expect(await names(auth(), 'tools')).toEqual(tools);
    expect(await names(auth(), 'profiles')).toEqual(profiles);
  });

  it('approvers see every tool, auditors every profile', async () => {
    const token = async (role: string) => ({
      authorization: `Bearer ${(await post(sg.admin, '/v1/principals', { name: role, role })).json().token}`,
    });
    expect(await names(await token('approver'), 'tools')).toHaveLength(5);
    expect(await names(await token('auditor'), 'profiles')).toEqual(['js', 'python']);
  });
});

describe("other agents' ids read as never made", () => {
  const missing = {
    ex: `ex_${'Q'.repeat(20)}`,
    act: `act_${'Q'.repeat(20)}`,
    task: `task_${'Q'.repeat(16)}`,
    apr: `apr_${'Q'.repeat(20)}`,
  };
  let theirs: typeof missing;

  beforeAll(async () => {
    const { auth } = who.granted;
    const task = await newTask(auth);
    const ex = (
      await post(auth, '/v1/executions', { profile: 'js', code: 'while(true){}', timeoutMs: 3000, taskId: task })
    ).json().id;
    const act = (
      await post(auth, '/v1/actions', { tool: 'http_fetch', args: { url: 'http://127.0.0.1:9/' }, taskId: task })
    ).json().id;
    const apr = (await get(auth, `/v1/actions/${(await callTool(auth, TOOL_PROBES[0]!)).json().id}`)).json().approval
      .id;
    theirs = { ex, act, task, apr };
    expect(Object.values(theirs).every(Boolean)).toBe(true);
  });

  /** Sends the same request with their id and with one never made: same status, same body but the id. */
  const alike = async (
    status: number,
    send: (id: string) => Promise<{ statusCode: number; body: string }>,
    kind: keyof typeof missing,
  ) => {
    const [a, b] = [await send(theirs[kind]), await send(missing[kind])];
    expect([a.statusCode, b.statusCode]).toEqual([status, status]);
    expect(shape(a.body, theirs[kind])).toBe(shape(b.body, missing[kind]));
  };

  it('executions: GET and DELETE are 404, and theirs is not cancelled', async () => {
    const { auth } = who.bare;
    await alike(404, (id) => get(auth, `/v1/executions/${id}`), 'ex');
    await alike(404, (id) => sg.app!.inject({ method: 'DELETE', url: `/v1/executions/${id}`, headers: auth }), 'ex');
    expect((await get(who.granted.auth, `/v1/executions/${theirs.ex}`)).json().status).not.toBe('cancelled');
  });

  it('actions and approvals', async () => {
    await alike(404, (id) => get(who.bare.auth, `/v1/actions/${id}`), 'act');
    await alike(403, (id) => get(who.bare.auth, `/v1/approvals/${id}`), 'apr');
  });

  it('tasks: read, trace, usage, and runs or calls under them are 404', async () => {
    const { auth } = who.bare;
    await alike(404, (id) => get(auth, `/v1/tasks/${id}`), 'task');
    await alike(404, (id) => get(auth, `/v1/tasks/${id}/trace`), 'task');
    await alike(404, (id) => post(auth, `/v1/tasks/${id}/usage`, { tokens: 1 }), 'task');
    await alike(
      404,
      (id) => post(auth, '/v1/executions', { profile: 'js', code: '1', taskId: id, untrusted: true }),
      'task',
    );
    await alike(
      404,
      (id) => post(auth, '/v1/actions', { tool: 'send_email', args: EMAIL, taskId: id, untrusted: true }),
      'task',
    );
    // A token bound to its own task does not even look at the id it is sent.
    const bound = { authorization: `Bearer ${await sg.mint(who.bare.id, { taskId: await newTask(auth) })}` };
    await alike(403, (id) => post(bound, '/v1/executions', { profile: 'js', code: '1', taskId: id }), 'task');
    expect((await get(who.granted.auth, `/v1/tasks/${theirs.task}`)).json()).toMatchObject({
      tainted: false,
      used: { tokens: 0 },
    });
  });

  it("a refused run naming their task is not filed in that task's trace", async () => {
    const { auth } = who.granted;
    await post(who.bare.auth, '/v1/executions', {
      profile: 'js',
      code: '1',
      taskId: theirs.task,
      reasoning: 'planted',
    });
    // The owner's own refusal comes after it; once that is in the trace, so would the other be.
    await post(auth, '/v1/executions', {
      profile: 'js',
      code: '1',
      language: 'python',
      taskId: theirs.task,
      reasoning: 'own',
    });
    const trace = await eventually(async () => {
      const t = (await get(auth, `/v1/tasks/${theirs.task}/trace`)).json();
      return t.records.some((r: { data: { reasoning?: string } }) => r.data.reasoning === 'own') ? t : undefined;
    });
    expect(trace.records.map((r: { agentId: string }) => r.agentId)).not.toContain(who.bare.id);
  });
});
