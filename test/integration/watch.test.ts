// Watching the agents, end to end on a real Redis and real HTTP: a looping agent is paused by the
// service within a handful of calls and a human is told (a signed webhook, PagerDuty, Slack on
// loopback receivers), spend racing pauses the task, a prober is suspended, a tainted task
// reaching for an irreversible tool raises an alert, two API processes share the detectors'
// state, and a human resumes what was stopped.
import { createHmac } from 'node:crypto';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeSandgate, type Sandgate } from '../../bin/compose.ts';
import { type FakeEndpoint, startFakeEndpoint } from '../helpers/fake-endpoint.ts';
import { eventually, startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

const SECRET = 'whsec-0123456789abcdef';
const ROUTING_KEY = 'pd-routing-key-test';
let sg: TestSandgate;
let second: Sandgate; // another API process on the same Redis and prefix
let webhook: FakeEndpoint;
let pagerduty: FakeEndpoint;
let slack: FakeEndpoint;
let page: FakeEndpoint;
let operator: Record<string, string>;
let auditor: Record<string, string>;

const WATCH = {
  loop: { repeats: 5, windowS: 120 },
  cost: { perWindow: 0.5, windowS: 60 },
  probing: { refusals: 6, windowS: 60 },
  novelty: { minHistory: 1000 },
};

beforeAll(async () => {
  [webhook, pagerduty, slack, page] = await Promise.all([
    startFakeEndpoint(),
    startFakeEndpoint(),
    startFakeEndpoint(),
    startFakeEndpoint(),
  ]);
  sg = await startSandgate({
    SANDGATE_WATCH: JSON.stringify(WATCH),
    SANDGATE_ALERT_WEBHOOK: `${webhook.url}/hook`,
    SANDGATE_ALERT_WEBHOOK_SECRET: SECRET,
    SANDGATE_PAGERDUTY_ROUTING_KEY: ROUTING_KEY,
    SANDGATE_PAGERDUTY_URL: `${pagerduty.url}/v2/enqueue`,
    SANDGATE_SLACK_WEBHOOK: `${slack.url}/slack`,
    SANDGATE_MAIL_GATEWAY_URL: `${page.url}/send`,
    SANDGATE_MAIL_GATEWAY_TOKEN: 'gateway-token',
  });
  second = await composeSandgate({ config: sg.config, mode: 'api', logger: pino({ level: 'silent' }) });
  operator = await sg.principal('operator', 'olga');
  auditor = await sg.principal('auditor', 'ada');
});
afterAll(async () => {
  await second?.close();
  await sg?.stop();
  await Promise.all([webhook, pagerduty, slack, page].map((e) => e?.close()));
});

type Reply = Awaited<ReturnType<NonNullable<TestSandgate['app']>['inject']>>;
type Inject = (method: 'GET' | 'POST', url: string, payload?: Record<string, unknown>) => Promise<Reply>;
const caller =
  (app: TestSandgate['app'], headers: Record<string, string>): Inject =>
  (method, url, payload) =>
    app!.inject({ method, url, headers, ...(payload && { payload }) });

async function newAgent(grants: Record<string, string[]>) {
  const agent = await sg.agent({ profiles: ['js'], ...grants });
  return { ...agent, call: caller(sg.app, agent.auth) };
}

async function newTask(call: Inject) {
  const res = await call('POST', '/v1/tasks', {
    goal: 'watched',
    budget: { maxRuns: 1000, maxToolCalls: 1000, maxSpend: 100 },
  });
  expect(res.statusCode).toBe(201);
  return res.json().id as string;
}

const alertsOf = async (agentId: string) =>
  (await sg.app!.inject({ url: `/v1/alerts?agentId=${agentId}`, headers: operator })).json().alerts;
const hooksFor = (agentId: string) => webhook.received.filter((r) => JSON.parse(r.body).alert.agentId === agentId);

describe('a looping agent', () => {
  it('is paused within a handful of identical http_fetch calls, and a human gets one signed alert', async () => {
    const a = await newAgent({ tools: ['http_fetch'], destinations: [`127.0.0.1:${page.port}`] });
    const taskId = await newTask(a.call);
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      const res = await a.call('POST', '/v1/actions', {
        tool: 'http_fetch',
        args: { url: `${page.url}/same` },
        taskId,
      });
      statuses.push(res.statusCode);
      if (res.statusCode === 423) {
        expect(res.json().error.code).toBe('task_paused');
        expect(res.json().error.message).toMatch(/alert alr_/);
      }
    }
    // Four through, the fifth identical call stopped it, and so every one after it.
    expect(statuses).toEqual([202, 202, 202, 202, 423, 423, 423, 423, 423, 423]);
    const [alert] = await alertsOf(a.id);
    expect(alert).toMatchObject({
      detector: 'loop',
      action: 'pause_task',
      status: 'open',
      taskId,
      resumes: { taskId },
    });
    expect(alert.auditIds.length).toBeGreaterThan(0);

    // Exactly one delivery per receiver, the webhook signed over its body.
    const delivered = await eventually(
      async () => (hooksFor(a.id).length ? hooksFor(a.id) : undefined),
      5000,
      'the webhook',
    );
    await new Promise((r) => setTimeout(r, 500));
    expect(hooksFor(a.id)).toHaveLength(1);
    const { body, headers } = delivered[0]!;
    expect(headers['x-sandgate-signature']).toBe(`sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`);
    expect(JSON.parse(body)).toMatchObject({ event: 'alert.trigger', alert: { id: alert.id, detector: 'loop' } });
    const pd = pagerduty.received.map((r) => JSON.parse(r.body)).filter((b) => b.dedup_key === alert.id);
    expect(pd).toEqual([
      expect.objectContaining({
        routing_key: ROUTING_KEY,
        event_action: 'trigger',
        payload: expect.objectContaining({ class: 'loop', source: 'sandgate' }),
      }),
    ]);
    expect(
      slack.received.some((r) => JSON.parse(r.body).text.includes(alert.id) || JSON.parse(r.body).text.includes(a.id)),
    ).toBe(true);

    // The task says so; the audit trail explains it.
    expect((await a.call('GET', `/v1/tasks/${taskId}`)).json().paused).toMatchObject({ alertId: alert.id });
    const trace = (await a.call('GET', `/v1/tasks/${taskId}/trace`)).json();
    expect(trace.story.join('\n')).toMatch(/ALERT loop .* the service responded: pause_task/);

    // A human resumes the task; the agent may work again (and the loop counts afresh).
    expect(
      (
        await sg.app!.inject({
          method: 'POST',
          url: `/v1/tasks/${taskId}/resume`,
          headers: operator,
          payload: { reason: 'fixed the agent' },
        })
      ).statusCode,
    ).toBe(200);
    expect(
      (await a.call('POST', '/v1/actions', { tool: 'http_fetch', args: { url: `${page.url}/same` }, taskId }))
        .statusCode,
    ).toBe(202);
    // Resolving tells PagerDuty too.
    const resolved = await sg.app!.inject({
      method: 'POST',
      url: `/v1/alerts/${alert.id}`,
      headers: operator,
      payload: { status: 'resolved', reason: 'handled' },
    });
    expect(resolved.json()).toMatchObject({ status: 'resolved', resolvedBy: expect.any(String), reason: 'handled' });
    await eventually(
      async () =>
        pagerduty.received.some(
          (r) => JSON.parse(r.body).dedup_key === alert.id && JSON.parse(r.body).event_action === 'resolve',
        )
          ? true
          : undefined,
      5000,
      'the resolve',
    );
  });

  it('running the same code over and over pauses its task; work queued before the pause waits, and runs after the resume', async () => {
    const a = await newAgent({});
    const taskId = await newTask(a.call);
    const codes: number[] = [];
    for (let i = 0; i < 6; i++)
      codes.push(
        (
          await a.call('POST', '/v1/executions', {
            profile: 'js',
            code: 'let x = 0; for (let i = 0; i < 10; i++) x += i; x',
            taskId,
          })
        ).statusCode,
      );
    expect(codes.slice(0, 4)).toEqual([202, 202, 202, 202]);
    expect(codes[4]).toBe(423);
    // Different code is refused too: the task is paused, not the code.
    expect((await a.call('POST', '/v1/executions', { profile: 'js', code: '2 + 2', taskId })).json().error.code).toBe(
      'task_paused',
    );
  });
});

describe('a spend spike', () => {
  it('pauses the task once its spend in the window passes the threshold', async () => {
    const a = await newAgent({});
    const taskId = await newTask(a.call);
    const report = (cost: number) => a.call('POST', `/v1/tasks/${taskId}/usage`, { tokens: 1000, cost });
    expect((await report(0.2)).statusCode).toBe(200);
    expect((await report(0.2)).statusCode).toBe(200);
    expect((await report(0.2)).statusCode).toBe(200); // 0.6 > 0.5 in the window: the detector fires
    const alerts = await eventually(
      async () => {
        const list = await alertsOf(a.id);
        return list.length ? list : undefined;
      },
      5000,
      'the cost alert',
    );
    expect(alerts[0]).toMatchObject({ detector: 'cost', action: 'pause_task', taskId });
    const next = await a.call('POST', '/v1/executions', { profile: 'js', code: '1', taskId });
    expect(next.statusCode).toBe(423);
    expect(next.json().error.code).toBe('task_paused');
  });
});

describe('a prober', () => {
  it('is suspended after a burst of refusals; the agent is then refused (423) everywhere, and an operator resumes it', async () => {
    const a = await newAgent({});
    const codes: number[] = [];
    for (let i = 0; i < 8; i++)
      codes.push(
        (
          await a.call('POST', '/v1/actions', {
            tool: ['send_email', 'deploy', 'make_payment', 'delete_record'][i % 4]!,
            args: {},
          })
        ).statusCode,
      );
    expect(codes.filter((c) => c === 403).length).toBeGreaterThanOrEqual(6);
    await eventually(
      async () =>
        (await alertsOf(a.id)).some((x: { detector: string }) => x.detector === 'probing') ? true : undefined,
      5000,
      'the probing alert',
    );
    const refused = await a.call('POST', '/v1/executions', { profile: 'js', code: '1' });
    expect(refused.statusCode).toBe(423);
    expect(refused.json().error.code).toBe('agent_suspended');
    // On the other API process too: one picture across processes.
    const elsewhere = await second.app!.inject({
      method: 'POST',
      url: '/v1/executions',
      headers: a.auth,
      payload: { profile: 'js', code: '1' },
    });
    expect(elsewhere.statusCode).toBe(423);
    expect((await sg.app!.inject({ url: `/v1/agents/${a.id}`, headers: sg.admin })).json().suspended).toMatchObject({
      by: 'detector:probing',
    });
    // An auditor may read alerts, not resume anyone.
    expect((await sg.app!.inject({ url: `/v1/alerts?agentId=${a.id}`, headers: auditor })).statusCode).toBe(200);
    expect(
      (await sg.app!.inject({ method: 'POST', url: `/v1/agents/${a.id}/resume`, headers: auditor, payload: {} }))
        .statusCode,
    ).toBe(403);
    expect(
      (
        await sg.app!.inject({
          method: 'POST',
          url: `/v1/agents/${a.id}/resume`,
          headers: operator,
          payload: { reason: 'a test' },
        })
      ).statusCode,
    ).toBe(200);
    expect((await a.call('POST', '/v1/executions', { profile: 'js', code: '1' })).statusCode).toBe(202);
  });
});

describe('a tainted task reaching for an irreversible tool', () => {
  it('raises a tainted-flow alert and suspends the agent', async () => {
    const a = await newAgent({ tools: ['send_email'] });
    const taskId = await newTask(a.call);
    // Untrusted input taints the task, then the agent wants to send mail.
    expect(
      (await a.call('POST', '/v1/executions', { profile: 'js', code: '1', taskId, untrusted: true })).statusCode,
    ).toBe(202);
    const res = await a.call('POST', '/v1/actions', {
      tool: 'send_email',
      args: { to: 'x@example.com', subject: 's', body: 'b' },
      taskId,
    });
    expect(res.statusCode).toBe(423);
    expect(res.json().error.code).toBe('agent_suspended');
    const [alert] = await alertsOf(a.id);
    expect(alert).toMatchObject({
      detector: 'tainted_flow',
      severity: 'critical',
      action: 'suspend_agent',
      resumes: { agentId: a.id },
    });
  });
});

describe('two API processes', () => {
  it('count one loop between them', async () => {
    const a = await newAgent({});
    const taskId = await newTask(a.call);
    const other = caller(second.app, a.auth);
    const codes: number[] = [];
    for (let i = 0; i < 6; i++)
      codes.push(
        (await (i % 2 ? other : a.call)('POST', '/v1/executions', { profile: 'js', code: '"same"', taskId }))
          .statusCode,
      );
    expect(codes).toEqual([202, 202, 202, 202, 423, 423]);
  });
});

describe('the alert records', () => {
  it('are deduplicated per agent and detector while open, and counted', async () => {
    const a = await newAgent({});
    for (let i = 0; i < 12; i++) await a.call('POST', '/v1/actions', { tool: 'deploy', args: {} });
    await a.call('POST', '/v1/actions', { tool: 'deploy', args: {} }).catch(() => undefined);
    const probing = await eventually(
      async () => {
        // Refusals are judged in the background: wait until the later ones are counted too.
        const list = (await alertsOf(a.id)).filter((x: { detector: string }) => x.detector === 'probing');
        return list.some((x: { count: number }) => x.count > 1) ? list : undefined;
      },
      5000,
      'the alert, counted more than once',
    );
    expect(probing).toHaveLength(1);
    expect(probing[0].count).toBeGreaterThan(1);
    // open → acknowledged → resolved, never again.
    const post = (status: string) =>
      sg.app!.inject({ method: 'POST', url: `/v1/alerts/${probing[0].id}`, headers: operator, payload: { status } });
    expect((await post('acknowledged')).json()).toMatchObject({
      status: 'acknowledged',
      acknowledgedBy: expect.any(String),
    });
    expect((await post('resolved')).statusCode).toBe(200);
    expect((await post('resolved')).statusCode).toBe(409);
    expect((await post('acknowledged')).statusCode).toBe(409);
  });

  it('refuse an agent token and an unknown id', async () => {
    const a = await newAgent({});
    expect((await a.call('GET', '/v1/alerts')).statusCode).toBe(403);
    expect(
      (
        await sg.app!.inject({
          method: 'POST',
          url: '/v1/alerts/alr_doesnotexist0',
          headers: operator,
          payload: { status: 'resolved' },
        })
      ).statusCode,
    ).toBe(404);
  });

  it('are exported to Prometheus', async () => {
    const metrics = (await sg.app!.inject('/metrics')).body;
    expect(metrics).toMatch(/sandgate_alerts_total\{detector="loop",severity="high"\} \d+/);
    expect(metrics).toMatch(/sandgate_alerts_open \d+/);
  });
});
