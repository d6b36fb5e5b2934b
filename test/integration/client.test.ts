// The TypeScript client (client/) against the real service over HTTP: every method, the typed
// errors, the event stream, waiting for a human, and retries that never do the work twice.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  API_ERRORS,
  isApiError,
  SandgateApiError,
  SandgateClient,
  SandgateNetworkError,
  type StreamEvent,
} from '../../client/index.ts';
import { type FakeEndpoint, startFakeEndpoint } from '../helpers/fake-endpoint.ts';
import { startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

let sg: TestSandgate;
let base: string;
let gateway: FakeEndpoint;
let web: FakeEndpoint;
let approverToken: string;

beforeAll(async () => {
  gateway = await startFakeEndpoint();
  web = await startFakeEndpoint((_, res) => res.end('fetched'));
  sg = await startSandgate(
    {
      SANDGATE_TOOLS_DIR: 'tools',
      SANDGATE_MAIL_GATEWAY_URL: `${gateway.url}/send`,
      SANDGATE_MAIL_GATEWAY_TOKEN: 'gw',
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
    payload: { name: 'carol', role: 'approver' },
  });
  approverToken = res.json().token;
}, 60_000);
afterAll(async () => {
  await sg?.stop();
  await Promise.all([gateway?.close(), web?.close()]);
});

const client = async (fetchImpl?: typeof fetch) => {
  const { token } = await sg.agent({
    profiles: ['js', 'python'],
    tools: ['send_email', 'http_fetch'],
    destinations: [`127.0.0.1:${web.port}`],
  });
  return new SandgateClient({ baseUrl: base, token, ...(fetchImpl && { fetch: fetchImpl }) });
};

describe('the client', () => {
  it('runCode, getExecution, profiles and tools', async () => {
    const c = await client();
    const run = await c.runCode({ profile: 'js', code: 'console.log("hi"); 6 * 7' });
    expect(run).toMatchObject({ status: 'succeeded', stdout: 'hi\n', result: 42 });
    expect((await c.getExecution(run.id)).status).toBe('succeeded');
    const py = await c.runCode({ profile: 'python', code: 'print(1 + 1)' });
    expect(py.stdout).toBe('2\n');
    expect((await c.profiles()).map((p) => p.name).sort()).toEqual(['js', 'python']);
    expect((await c.tools()).map((t) => t.name).sort()).toEqual(['http_fetch', 'send_email']);
  });

  it('refusals are typed errors with the API code', async () => {
    const c = await client();
    const refused = await c.runCode({ profile: 'shell', code: 'echo' }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(API_ERRORS.profile_not_granted);
    expect(refused).toBeInstanceOf(SandgateApiError);
    expect(isApiError(refused, 'profile_not_granted')).toBe(true);
    expect(refused).toMatchObject({ status: 403, name: 'ProfileNotGrantedError' });
    const missing = await c.getExecution('ex_00000000_AAAAAAAAAAAAAAAAAAAA').catch((e: unknown) => e);
    expect(isApiError(missing, 'not_found')).toBe(true);
    const bad = await new SandgateClient({ baseUrl: base, token: 'nope' }).profiles().catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(API_ERRORS.unauthorized);
  });

  it('createTask, reportUsage and the budget as typed errors; trace', async () => {
    const c = await client();
    const task = await c.createTask({ goal: 'client test', budget: { maxRuns: 1, maxTokens: 1000 } });
    await c.runCode({ profile: 'js', code: '1', taskId: task.id });
    const over = await c.runCode({ profile: 'js', code: '2', taskId: task.id }).catch((e: unknown) => e);
    expect(over).toBeInstanceOf(API_ERRORS.budget_exceeded);
    expect((over as SandgateApiError).status).toBe(402);
    const { remaining } = await c.reportUsage(task.id, { tokens: 400, cost: 0.001, reasoning: 'planning' });
    expect(remaining.tokens).toBe(600);
    const spent = await c.reportUsage(task.id, { tokens: 700 }).catch((e: unknown) => e);
    expect(isApiError(spent, 'budget_exceeded')).toBe(true);
    expect((await c.getTask(task.id)).used.tokens).toBe(1100);
    const trace = await c.trace(task.id);
    expect(trace.records.map((r) => r.kind)).toEqual(
      expect.arrayContaining(['task.created', 'execution.requested', 'usage.reported']),
    );
    expect(trace.story.length).toBe(trace.records.length);
  });

  it('stream follows a run: status, chunks, then final with the record', async () => {
    const c = await client();
    const { id } = await c.startCode({
      profile: 'python',
      code: 'import time\nprint("a")\ntime.sleep(0.3)\nprint("b")',
    });
    const events: StreamEvent[] = [];
    for await (const e of c.stream(id)) events.push(e);
    const last = events.at(-1)!;
    expect(last.type).toBe('final');
    expect(last.type === 'final' && last.execution).toMatchObject({ id, status: 'succeeded', stdout: 'a\nb\n' });
    const out = events.flatMap((e) => (e.type === 'chunk' && e.stream === 'stdout' ? [e.data] : [])).join('');
    expect(out).toBe('a\nb\n');
    expect(events.some((e) => e.type === 'status' && e.status === 'running')).toBe(true);
    // Resumed from a cursor: only what came after it.
    const cursor = events.find((e) => e.type === 'chunk')!.id;
    const again: StreamEvent[] = [];
    for await (const e of c.stream(id, { after: cursor })) again.push(e);
    expect(again.length).toBeLessThan(events.length);
    expect(again.at(-1)!.type).toBe('final');
  });

  it('stream resumes at its cursor after a dropped connection: every event once', async () => {
    let cut = 0;
    // The first stream response is cut after its first event (a proxy dropping the connection).
    const cutting: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (!String(input).endsWith('/stream') || cut++ > 0) return res;
      const reader = res.body!.getReader();
      let seen = '';
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          const { value, done } = await reader.read();
          if (done) return controller.close();
          seen += new TextDecoder().decode(value);
          controller.enqueue(value);
          if (/\nid: /.test(`\n${seen}`) && seen.includes('\n\n')) {
            await reader.cancel();
            controller.error(new TypeError('terminated'));
          }
        },
      });
      return new Response(body, { status: res.status, headers: res.headers });
    };
    const c = await client(cutting);
    const { id } = await c.startCode({
      profile: 'python',
      code: 'import time\nfor i in range(3):\n    print(i)\n    time.sleep(0.2)',
    });
    const events: StreamEvent[] = [];
    for await (const e of c.stream(id)) events.push(e);
    expect(cut).toBeGreaterThanOrEqual(2);
    const ids = events.flatMap((e) => (e.id ? [e.id] : []));
    expect(new Set(ids).size).toBe(ids.length);
    const out = events.flatMap((e) => (e.type === 'chunk' ? [e.data] : [])).join('');
    expect(out).toBe('0\n1\n2\n');
    expect(events.at(-1)!.type).toBe('final');
  });

  it('callTool waits for a reversible call; an irreversible one waits for a human (waitForApproval)', async () => {
    const c = await client();
    const fetched = await c.callTool('http_fetch', { url: `${web.url}/x` });
    expect(fetched.status).toBe('succeeded');
    expect(JSON.stringify(fetched.result)).toContain('fetched');

    const asked = await c.callTool(
      'send_email',
      { to: 'x@example.com', subject: 's', body: 'b' },
      { reasoning: 'test' },
    );
    expect(asked.status).toBe('awaiting_approval');
    setTimeout(() => {
      void fetch(`${base}/v1/approvals/${asked.approval!.id}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${approverToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ decision: 'approve' }),
      });
    }, 300);
    const done = await c.waitForApproval(asked.id, { timeoutMs: 20_000 });
    expect(done.status).toBe('succeeded');
    expect(gateway.received.filter((r) => r.body.includes('x@example.com'))).toHaveLength(1);
  });

  it('a POST whose answer was lost is retried with its Idempotency-Key: one run, one tool call', async () => {
    let dropped = 0;
    // The request reaches the service; its answer is lost on the way back (once per path).
    const lossy: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      const url = String(input);
      if (init?.method === 'POST' && dropped < 2 && (url.includes('/v1/executions') || url.includes('/v1/actions'))) {
        dropped++;
        await res.body?.cancel();
        throw new TypeError('fetch failed: socket hang up');
      }
      return res;
    };
    const c = await client(lossy);
    const task = await c.createTask({ goal: 'retries' });
    const run = await c.runCode({ profile: 'js', code: '41 + 1', taskId: task.id });
    expect(run.result).toBe(42);
    const mail = await c.callTool(
      'send_email',
      { to: 'once@example.com', subject: 's', body: 'b' },
      { taskId: task.id },
    );
    expect(mail.status).toBe('awaiting_approval');
    expect(dropped).toBe(2);
    const used = (await c.getTask(task.id)).used;
    expect(used).toMatchObject({ runs: 1, toolCalls: 1 });
  });

  it('a POST without a safe retry is not retried when its answer is lost', async () => {
    let posts = 0;
    const lossy: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (init?.method === 'POST' && String(input).includes('/usage')) {
        posts++;
        await res.body?.cancel();
        throw new TypeError('fetch failed');
      }
      return res;
    };
    const c = await client(lossy);
    const task = await c.createTask({ goal: 'no retry' });
    const lost = await c.reportUsage(task.id, { tokens: 10 }).catch((e: unknown) => e);
    expect(lost).toBeInstanceOf(SandgateNetworkError);
    expect(posts).toBe(1);
    expect((await c.getTask(task.id)).used.tokens).toBe(10);
  });
});
