// The detectors with their shipped defaults. A realistic, varied workload of several agents and
// hundreds of calls raises nothing (the false-positive test); a scripted runaway agent that
// loops, then burns money, is stopped by the service itself and a human is told within seconds.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeEndpoint, startFakeEndpoint } from '../helpers/fake-endpoint.ts';
import { eventually, startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

let sg: TestSandgate;
let webhook: FakeEndpoint;
let page: FakeEndpoint;
let operator: Record<string, string>;

beforeAll(async () => {
  // The pages differ as pages of a real site do (a constant body would be the same result every
  // time, which the loop detector rightly counts, however varied the URLs).
  [webhook, page] = await Promise.all([
    startFakeEndpoint(),
    startFakeEndpoint((req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(`<h1>${req.url}</h1>`);
    }),
  ]);
  sg = await startSandgate({ SANDGATE_WATCH: '{}', SANDGATE_ALERT_WEBHOOK: `${webhook.url}/hook` });
  const res = await sg.app!.inject({
    method: 'POST',
    url: '/v1/principals',
    headers: sg.admin,
    payload: { name: 'ops', role: 'operator' },
  });
  operator = { authorization: `Bearer ${res.json().token}` };
});
afterAll(async () => {
  await sg?.stop();
  await Promise.all([webhook?.close(), page?.close()]);
});

const allAlerts = async () =>
  (await sg.app!.inject({ url: '/v1/alerts?limit=500', headers: operator })).json().alerts as Array<{
    detector: string;
    agentId: string;
    summary: string;
  }>;

describe('a realistic workload', { timeout: 120_000 }, () => {
  it('of five agents and hundreds of varied calls raises no alert', async () => {
    const grants = { profiles: ['js'], tools: ['http_fetch'], destinations: [`127.0.0.1:${page.port}`] };
    const agents = await Promise.all(Array.from({ length: 5 }, () => sg.agent(grants)));
    let calls = 0;
    await Promise.all(
      agents.map(async (a, n) => {
        const call = (method: 'GET' | 'POST', url: string, payload?: Record<string, unknown>) =>
          sg.app!.inject({ method, url, headers: a.auth, ...(payload && { payload }) });
        for (let t = 0; t < 2; t++) {
          const task = (
            await call('POST', '/v1/tasks', { goal: `analysis ${n}.${t}`, budget: { maxSpend: 50 } })
          ).json().id;
          for (let i = 0; i < 30; i++) {
            // Varied code, the way an agent iterates on a problem; now and then the same check twice.
            const code =
              i % 10 === 9
                ? 'JSON.stringify({ ok: true })'
                : `const data = [${i}, ${n}, ${t}]; data.map((x) => x * ${i + 1}).reduce((a, b) => a + b, 0)`;
            expect((await call('POST', '/v1/executions', { profile: 'js', code, taskId: task })).statusCode).toBe(202);
            calls++;
            if (i % 3 === 0) {
              const url = `${page.url}/docs/${n}/${t}/${i}`;
              expect(
                (await call('POST', '/v1/actions', { tool: 'http_fetch', args: { url }, taskId: task })).statusCode,
              ).toBe(202);
              calls++;
            }
            if (i % 6 === 0) {
              expect((await call('POST', `/v1/tasks/${task}/usage`, { tokens: 1500 + i, cost: 0.02 })).statusCode).toBe(
                200,
              );
              calls++;
            }
          }
          // An honest mistake or two: a tool it was not granted.
          expect((await call('POST', '/v1/actions', { tool: 'send_email', args: {}, taskId: task })).statusCode).toBe(
            403,
          );
          calls++;
        }
      }),
    );
    expect(calls).toBeGreaterThan(400);
    // Let the result-side detectors see every result.
    await new Promise((r) => setTimeout(r, 1500));
    expect(await allAlerts()).toEqual([]);
    expect(webhook.received).toEqual([]);
  });
});

describe('a scripted runaway agent', { timeout: 60_000 }, () => {
  it('loops, then burns money: the service stops each task itself and a human hears of it within seconds', async () => {
    const a = await sg.agent({ profiles: ['js'] });
    const call = (method: 'GET' | 'POST', url: string, payload?: Record<string, unknown>) =>
      sg.app!.inject({ method, url, headers: a.auth, ...(payload && { payload }) });
    const looping = (await call('POST', '/v1/tasks', { goal: 'runaway', budget: { maxSpend: 100 } })).json().id;
    let firstRefusal: number | undefined;
    for (let i = 0; i < 20 && firstRefusal === undefined; i++) {
      const res = await call('POST', '/v1/executions', { profile: 'js', code: 'fetchTheSameThing()', taskId: looping });
      if (res.statusCode === 423) firstRefusal = i + 1;
    }
    expect(firstRefusal).toBeDefined();
    expect(firstRefusal!).toBeLessThanOrEqual(8);
    const stoppedAt = Date.now();
    const hook = await eventually(
      async () => webhook.received.find((r) => JSON.parse(r.body).alert.agentId === a.id),
      10_000,
      'the loop alert',
    );
    expect(JSON.parse(hook.body).alert).toMatchObject({ detector: 'loop', action: 'pause_task' });
    expect(hook.at - stoppedAt).toBeLessThan(10_000);

    // A new task, and the agent spends fast: the task is paused by the cost detector.
    const burning = (await call('POST', '/v1/tasks', { goal: 'runaway spend', budget: { maxSpend: 100 } })).json().id;
    let codes: number[] = [];
    for (let i = 0; i < 5; i++)
      codes.push((await call('POST', `/v1/tasks/${burning}/usage`, { tokens: 50_000, cost: 0.4 })).statusCode);
    expect(codes.slice(0, 3)).toEqual([200, 200, 200]);
    await eventually(
      async () => ((await call('GET', `/v1/tasks/${burning}`)).json().paused ? true : undefined),
      5000,
      'the pause',
    );
    codes = [(await call('POST', '/v1/executions', { profile: 'js', code: '1', taskId: burning })).statusCode];
    expect(codes).toEqual([423]);
    const costAlert = await eventually(
      async () =>
        webhook.received
          .map((r) => JSON.parse(r.body).alert)
          .find((al) => al.agentId === a.id && al.detector === 'cost'),
      10_000,
      'the cost alert',
    );
    expect(costAlert).toMatchObject({ action: 'pause_task', taskId: burning });
    // The audit trail explains both.
    const trace = (await sg.app!.inject({ url: `/v1/tasks/${burning}/trace`, headers: sg.admin })).json();
    expect(trace.story.join('\n')).toMatch(/ALERT cost/);
  });
});
