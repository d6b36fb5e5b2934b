// A receiver that fails never blocks admission: with a webhook that hangs and a PagerDuty that
// answers 500, the request that trips a detector is refused at once, the alert is recorded, and
// the deliveries are retried in the background (the alert says how they went).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeEndpoint, startFakeEndpoint } from '../helpers/fake-endpoint.ts';
import { eventually, startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

let sg: TestSandgate;
let hung: FakeEndpoint;
let failing: FakeEndpoint;

beforeAll(async () => {
  hung = await startFakeEndpoint(() => {}); // accepts, never answers
  failing = await startFakeEndpoint((_, res) => {
    res.statusCode = 500;
    res.end('down');
  });
  sg = await startSandgate({
    SANDGATE_WATCH: JSON.stringify({ loop: { repeats: 3 } }),
    SANDGATE_ALERT_WEBHOOK: `${hung.url}/hook`,
    SANDGATE_PAGERDUTY_ROUTING_KEY: 'k',
    SANDGATE_PAGERDUTY_URL: `${failing.url}/enqueue`,
    SANDGATE_WEBHOOK_TIMEOUT_MS: '5000',
  });
});
afterAll(async () => {
  await sg?.stop();
  await Promise.all([hung?.close(), failing?.close()]);
});

describe('failing alert receivers', () => {
  it('do not slow the refusal, and their deliveries are retried', async () => {
    const a = await sg.agent({ profiles: ['js'] });
    const task = (
      await sg.app!.inject({ method: 'POST', url: '/v1/tasks', headers: a.auth, payload: { goal: 'g' } })
    ).json().id;
    let took = 0;
    let status = 0;
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      const res = await sg.app!.inject({
        method: 'POST',
        url: '/v1/executions',
        headers: a.auth,
        payload: { profile: 'js', code: '"x"', taskId: task },
      });
      took = performance.now() - t;
      status = res.statusCode;
    }
    expect(status).toBe(423);
    // Far under the hung receiver's 5 s deadline: nothing on the request's path waited for it.
    expect(took).toBeLessThan(2000);
    // Both receivers were tried, PagerDuty more than once (it answered 500: retried with backoff).
    await eventually(
      async () => (hung.received.length >= 1 && failing.received.length >= 2 ? true : undefined),
      15_000,
      'retries',
    );
    const alerts = (await sg.app!.inject({ url: `/v1/alerts?agentId=${a.id}`, headers: sg.admin })).json().alerts;
    expect(alerts).toHaveLength(1);
    expect(alerts[0].status).toBe('open');
  });
});
