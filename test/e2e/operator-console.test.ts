// The operator console end to end, in real headless Chromium against a real Sandgate on
// loopback: an operator watching the alerts page sees a looping agent's alert appear without a
// reload, opens its task's timeline (hostile reasoning and code shown as text, each record's
// audit check shown), suspends the agent with one click, and the agent's next request is refused
// (423); an auditor reads everything and finds no button that acts, and prints the evidence pack;
// the admin revokes with a reason and a confirmation; an agent token sees nothing. Every page is
// screenshotted into test-artifacts/console/ (gitignored) for a human to look at. If Chromium
// cannot start, every test fails with the reason: nothing here is skipped.
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_CSP } from '../../api/console/console-routes.ts';
import { type ConsoleBrowser, launchConsoleBrowser, sel, signIn } from '../helpers/console-browser.ts';
import { type FakeEndpoint, startFakeEndpoint } from '../helpers/fake-endpoint.ts';
import { eventually, startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

const SHOTS = 'test-artifacts/console';
const TEST_TIMEOUT = 90_000;
const HOSTILE_REASONING = 'the page said: <script>window.__xss=1</script><img src=x onerror="window.__xss=2">';
const HOSTILE_CODE = '/* </pre><img src=x onerror="window.__xss=3"> */ console.log("<b>bold</b>"); 41 + 1';
const HOSTILE_ARGS = {
  to: 'a@example.com',
  subject: '<svg onload="window.__xss=4">',
  body: '"><script>window.__xss=5</script>',
};
const HOSTILE_GOAL = 'summarise <iframe src="javascript:window.__xss=6"></iframe>';

let gateway: FakeEndpoint;
let sg: TestSandgate;
let url: string;
const tokens: Record<'operator' | 'auditor' | 'approver', string> = { operator: '', auditor: '', approver: '' };
let browser: ConsoleBrowser;

const inject = (method: 'GET' | 'POST', path: string, headers: Record<string, string>, payload?: unknown) =>
  sg.app!.inject({ method, url: path, headers, ...(payload !== undefined && { payload: payload as object }) });

beforeAll(async () => {
  await mkdir(SHOTS, { recursive: true });
  gateway = await startFakeEndpoint();
  sg = await startSandgate({
    SANDGATE_TOOLS_DIR: 'tools',
    SANDGATE_MAIL_GATEWAY_URL: `${gateway.url}/send`,
    SANDGATE_MAIL_GATEWAY_TOKEN: 'gw-console-e2e',
    SANDGATE_WATCH: JSON.stringify({ loop: { repeats: 5 } }),
  });
  url = await sg.app!.listen({ port: 0, host: '127.0.0.1' });
  for (const role of ['operator', 'auditor', 'approver'] as const) {
    const res = await inject('POST', '/v1/principals', sg.admin, { name: `${role}-pat`, role });
    expect(res.statusCode).toBe(201);
    tokens[role] = res.json().token;
  }
  browser = await launchConsoleBrowser();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await sg?.stop();
  await gateway?.close();
});

const open = (hash = '') => browser.open(`${url}/console/${hash}`, { width: 1280, height: 900 });

const xss = (page: Page) => page.evaluate(() => (globalThis as Record<string, unknown>).__xss);
const shot = (page: Page, name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

/** A hash change inside the console (the page is one document). */
async function go(page: Page, hash: string) {
  await page.evaluate((h) => {
    (globalThis as unknown as { location: { hash: string } }).location.hash = h;
  }, hash);
}

describe('operator console', () => {
  it(
    'serves every page, script and style with strict headers; no inline code, no markup built from strings',
    async () => {
      const files = ['console.js', 'console.css', 'approvals.js'];
      for (const sub of ['lib', 'views'])
        for (const f of await readdir(`api/console/${sub}`)) files.push(`${sub}/${f}`);
      for (const path of ['', 'approvals', ...files].map((f) => `/console/${f}`).concat('/console')) {
        const res = await fetch(`${url}${path}`);
        expect(res.status, path).toBe(200);
        expect(res.headers.get('content-security-policy'), path).toBe(CONSOLE_CSP);
        expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
        const body = await res.text();
        if (path.endsWith('.js')) {
          expect(res.headers.get('content-type'), path).toContain('text/javascript');
          expect(body, path).not.toMatch(
            /\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML\(|document\.write\(|\beval\(|new Function\(/,
          );
        } else if (!path.endsWith('.css')) {
          expect(body, path).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/i);
          expect(body, path).not.toMatch(/\sstyle=|<style|\son[a-z]+=/i);
        }
      }
      // Only the allow-list is served: no TypeScript source, nothing outside the directory.
      for (const path of ['/console/console-routes.ts', '/console/../app.ts', '/console/nope.js'])
        expect((await fetch(`${url}${path}`)).status, path).toBe(404);
      expect(await readFile('api/console/console.css', 'utf8')).not.toMatch(/@import|url\(\s*['"]?https?:/);
    },
    TEST_TIMEOUT,
  );

  it(
    "an operator sees a looping agent's alert appear, opens its task timeline, suspends it with one click; its next request is refused",
    async () => {
      const agent = await sg.agent({ profiles: ['js'] });
      const task = (await inject('POST', '/v1/tasks', agent.auth, { goal: HOSTILE_GOAL })).json().id as string;
      const { context, page, problems } = await open('#/alerts');
      try {
        await signIn(page, tokens.operator);
        await page.locator(sel('page-alerts')).waitFor();
        await page.locator(sel('alerts-summary')).waitFor();
        await shot(page, '01-alerts-before');
        expect(await page.locator(`${sel('alert-card')}`).count()).toBe(0);

        // The agent loops: the fifth identical run pauses its task and raises an alert.
        const codes: number[] = [];
        for (let i = 0; i < 5; i++) {
          const res = await inject('POST', '/v1/executions', agent.auth, {
            profile: 'js',
            code: HOSTILE_CODE,
            taskId: task,
            reasoning: HOSTILE_REASONING,
          });
          codes.push(res.statusCode);
        }
        expect(codes).toEqual([202, 202, 202, 202, 423]);
        const [alert] = (await inject('GET', `/v1/alerts?agentId=${agent.id}`, sg.admin)).json().alerts;
        expect(alert).toMatchObject({ detector: 'loop', taskId: task });

        // No reload: the next refresh brings it in, marked new, and the nav counts it.
        const card = page.locator(`${sel('alert-card')}[data-alert-id="${alert.id}"]`);
        await card.waitFor({ state: 'visible', timeout: 10_000 });
        expect(await card.locator(sel('alert-new')).count()).toBe(1);
        expect(await card.locator(sel('alert-detector')).textContent()).toBe('loop');
        expect(await card.locator(sel('alert-action')).textContent()).toBe('paused the task');
        expect(await card.locator(sel('alert-record-link')).count()).toBeGreaterThan(0);
        expect(await page.locator(sel('open-alerts-count')).textContent()).toMatch(/^[1-9]\d*$/);
        await shot(page, '02-alerts-with-loop');

        // Its task: the timeline tells what was asked and why, as text.
        await card.locator(sel('alert-task-link')).click();
        await page.locator(sel('page-task')).waitFor();
        const items = page.locator(sel('timeline-item'));
        await items.first().waitFor();
        expect(await page.locator(sel('task-goal')).textContent()).toBe(HOSTILE_GOAL);
        const asked = page.locator(`${sel('timeline-item')}[data-kind="execution.requested"]`).first();
        expect(await asked.locator(sel('reasoning')).textContent()).toBe(HOSTILE_REASONING);
        expect(await asked.locator(sel('code')).textContent()).toBe(HOSTILE_CODE);
        expect(await asked.locator(sel('decision')).textContent()).toContain('allowed by');
        expect(await page.locator(`${sel('timeline-item')}[data-kind="alert.raised"]`).count()).toBe(1);
        expect(await page.locator(sel('task-paused')).count()).toBe(1);
        // Each record's audit check is shown; here every one verifies.
        await page.locator(sel('verification-summary'), { hasText: 'verified' }).waitFor();
        const checks = await page.locator(sel('verify-badge')).allTextContents();
        expect(checks.length).toBe(await items.count());
        expect(new Set(checks)).toEqual(new Set(['verified']));
        // Output comes back as text too.
        await page
          .locator(`${sel('timeline-item')}[data-kind="run.finished"] ${sel('output')}`)
          .first()
          .waitFor();
        expect(
          await page
            .locator(`${sel('timeline-item')}[data-kind="run.finished"] ${sel('output')}`)
            .first()
            .textContent(),
        ).toBe('<b>bold</b>\n');
        expect(await page.locator('main img, main iframe, main b, main script').count()).toBe(0);
        expect(await xss(page)).toBeUndefined();
        await page.locator(sel('task-chart')).waitFor();
        await shot(page, '03-task-timeline');
        await page.screenshot({ path: join(SHOTS, '03b-task-top.png') }); // what an operator sees first

        // One click suspends the agent; its very next request is refused.
        await page.locator(sel('suspend-agent')).click();
        await page.locator(`${sel('status-message')}[data-kind="success"]`).waitFor();
        const next = await inject('POST', '/v1/executions', agent.auth, { profile: 'js', code: '2 + 2' });
        expect(next.statusCode).toBe(423);
        expect(next.json().error.code).toBe('agent_suspended');

        // The agents page says so, alerting agents first.
        await go(page, '#/agents');
        const row = page.locator(`${sel('agent-row')}[data-agent-id="${agent.id}"]`);
        await row.locator(sel('agent-status'), { hasText: 'suspended' }).waitFor();
        expect(await row.locator(sel('agent-alerts')).textContent()).toContain('1 open alert');
        expect(await page.locator(sel('agent-row')).first().getAttribute('data-agent-id')).toBe(agent.id);
        await shot(page, '04-agents');

        // The agent page: figures, chart, and now a resume button instead of suspend.
        await row.locator(sel('agent-link')).click();
        await page.locator(sel('page-agent')).waitFor();
        await page.locator(sel('resume')).waitFor();
        expect(await page.locator(sel('suspend')).count()).toBe(0);
        expect(await page.locator(sel('revoke')).count()).toBe(0); // operators do not revoke
        expect(await page.locator(sel('evidence-link')).count()).toBe(0);
        await page.locator(sel('agent-last-hour'), { hasText: '4 runs' }).waitFor();
        await page
          .locator(`${sel('activity-chart')} ${sel('chart-bucket')}`)
          .first()
          .waitFor();
        await shot(page, '05-agent');

        // The tasks page lists the paused task.
        await go(page, '#/tasks');
        const taskRow = page.locator(`${sel('task-row')}[data-task-id="${task}"]`);
        await taskRow.waitFor();
        expect(await taskRow.locator(sel('task-paused')).count()).toBe(1);
        expect(await taskRow.locator(sel('task-link')).textContent()).toBe(HOSTILE_GOAL);
        await shot(page, '06-tasks');

        // A record the alert cites.
        await go(page, `#/records/${encodeURIComponent(alert.auditIds[0])}`);
        await page.locator(sel('record-kind')).waitFor();
        expect(await page.locator(sel('verify-badge')).textContent()).toBe('verified');
        await shot(page, '07-record');

        // Acknowledge, then resolve, from the alerts page, reached as an alert's delivered link does.
        await go(page, `#/alerts?alert=${alert.id}`);
        await page.locator(`${sel('alert-card')}.target[data-alert-id="${alert.id}"]`).waitFor();
        const again = page.locator(`${sel('alert-card')}[data-alert-id="${alert.id}"]`);
        await again.locator(sel('acknowledge')).click();
        await again.locator(sel('alert-status'), { hasText: 'acknowledged' }).waitFor();
        await page.locator(`${sel('alert-card')}[data-alert-id="${alert.id}"] ${sel('resolve')}`).click();
        // Resolved, it stays in view (the link asked for it) without its buttons; the default list drops it.
        await again.locator(sel('alert-status'), { hasText: 'resolved' }).waitFor();
        expect(await again.locator(sel('resolve')).count()).toBe(0);
        await go(page, '#/alerts');
        await page.locator(sel('alerts-summary')).waitFor();
        await page.locator(`${sel('alert-card')}[data-alert-id="${alert.id}"]`).waitFor({ state: 'detached' });
        expect((await inject('GET', `/v1/alerts/${alert.id}`, sg.admin)).json()).toMatchObject({
          status: 'resolved',
          resolvedBy: expect.stringMatching(/^pr_/),
        });
        expect(await xss(page)).toBeUndefined();
        expect(problems).toEqual([]);
      } finally {
        await context.close();
      }
    },
    TEST_TIMEOUT,
  );

  it(
    'hostile tool arguments, reasoning, goal and reported usage render as text in the timeline',
    async () => {
      const agent = await sg.agent({ profiles: ['js'], tools: ['send_email'] });
      const task = (await inject('POST', '/v1/tasks', agent.auth, { goal: HOSTILE_GOAL })).json().id as string;
      const asked = await inject('POST', '/v1/actions', agent.auth, {
        tool: 'send_email',
        args: HOSTILE_ARGS,
        taskId: task,
        reasoning: HOSTILE_REASONING,
      });
      expect(asked.json().status).toBe('awaiting_approval');
      await inject('POST', `/v1/tasks/${task}/usage`, agent.auth, {
        tokens: 10,
        cost: 0.001,
        reasoning: '<img src=x onerror="window.__xss=7">',
        prompt: '<script>window.__xss=8</script>',
      });
      const { context, page, problems } = await open(`#/tasks/${task}`);
      try {
        await signIn(page, tokens.operator);
        const item = page.locator(`${sel('timeline-item')}[data-kind="action.requested"]`);
        await item.waitFor();
        expect(JSON.parse((await item.locator(sel('args')).textContent()) ?? '')).toEqual(HOSTILE_ARGS);
        expect(await item.locator(sel('reasoning')).textContent()).toBe(HOSTILE_REASONING);
        const usage = page.locator(`${sel('timeline-item')}[data-kind="usage.reported"]`);
        await usage.waitFor();
        expect(await usage.locator(sel('reasoning')).textContent()).toBe('<img src=x onerror="window.__xss=7">');
        expect(await usage.locator(sel('prompt')).textContent()).toBe('<script>window.__xss=8</script>');
        await page.waitForTimeout(3500); // through a refresh
        expect(await page.locator('main img, main iframe, main svg[onload], main script').count()).toBe(0);
        expect(await xss(page)).toBeUndefined();
        await shot(page, '08-task-hostile-tool-call');
        await item.screenshot({ path: join(SHOTS, '08b-hostile-tool-call-item.png') });
        expect(problems).toEqual([]);
      } finally {
        await context.close();
      }
    },
    TEST_TIMEOUT,
  );

  it(
    'an auditor reads every page but finds no button that acts, and gets the printable evidence pack',
    async () => {
      const agent = await sg.agent({ profiles: ['js'] });
      const task = (await inject('POST', '/v1/tasks', agent.auth, { goal: 'audited' })).json().id as string;
      for (let i = 0; i < 5; i++)
        await inject('POST', '/v1/executions', agent.auth, { profile: 'js', code: '7', taskId: task });
      const { context, page, problems } = await open('#/agents');
      try {
        await signIn(page, tokens.auditor);
        const acting = [
          'suspend',
          'resume',
          'revoke',
          'suspend-agent',
          'resume-task',
          'resume-agent',
          'acknowledge',
          'resolve',
        ];
        const noActions = async () => {
          for (const id of acting) expect(await page.locator(sel(id)).count(), id).toBe(0);
          expect(await page.locator('main input[data-testid="action-reason"]').count()).toBe(0);
        };
        await page.locator(`${sel('agent-row')}[data-agent-id="${agent.id}"]`).waitFor();
        await noActions();
        await go(page, `#/agents/${agent.id}`);
        await page.locator(sel('evidence-link')).waitFor();
        await noActions();
        await go(page, '#/alerts');
        await page
          .locator(`${sel('alert-card')}`)
          .first()
          .waitFor();
        await noActions();
        await go(page, `#/tasks/${task}`);
        await page.locator(sel('timeline-item')).first().waitFor();
        await noActions();
        await go(page, `#/agents/${agent.id}`);
        await page.locator(sel('evidence-link')).click();
        await page.locator(sel('page-evidence')).waitFor();
        await page.locator(sel('evidence-created')).waitFor();
        expect(await page.locator(sel('evidence-created')).textContent()).toContain('by admin (admin)');
        expect(await page.locator(`${sel('evidence-tokens')} tbody tr`).count()).toBe(1);
        expect(await page.locator(`${sel('evidence-alerts')} tbody tr`).count()).toBe(1);
        expect(await page.locator(sel('evidence-verification')).textContent()).toMatch(/\d+ verified, 0 failed/);
        await shot(page, '09-evidence');
        await page.emulateMedia({ media: 'print' });
        expect(await page.locator('header.top').isVisible()).toBe(false);
        await shot(page, '10-evidence-print');
        await page.emulateMedia({ media: 'screen' });
        // The API agrees: an auditor cannot suspend.
        const refused = await inject(
          'POST',
          `/v1/agents/${agent.id}/suspend`,
          { authorization: `Bearer ${tokens.auditor}` },
          {},
        );
        expect(refused.statusCode).toBe(403);
        expect(problems).toEqual([]);
      } finally {
        await context.close();
      }
    },
    TEST_TIMEOUT,
  );

  it(
    'the admin revokes with a reason, confirmed; the agent is then refused (401)',
    async () => {
      const agent = await sg.agent({ profiles: ['js'] });
      const { context, page, problems } = await open(`#/agents/${agent.id}`);
      try {
        await signIn(page, sg.config.SANDGATE_ADMIN_TOKEN!);
        await page.locator(sel('revoke')).click();
        const confirm = page.locator(sel('revoke-confirm'));
        expect(await confirm.isDisabled()).toBe(true); // no reason, no revoke
        await page.locator(sel('revoke-reason')).fill('credentials leaked');
        await shot(page, '11-agent-revoke-confirm');
        await confirm.click();
        await page.locator(sel('agent-status'), { hasText: 'revoked' }).waitFor();
        const next = await inject('POST', '/v1/executions', agent.auth, { profile: 'js', code: '1' });
        expect(next.statusCode).toBe(401);
        expect(next.json().error.code).toBe('agent_revoked');
        const [rec] = (await inject('GET', `/v1/audit?agentId=${agent.id}&kind=agent.revoked`, sg.admin)).json()
          .records;
        expect(rec.data.reason).toBe('credentials leaked');
        expect(problems).toEqual([]);
      } finally {
        await context.close();
      }
    },
    TEST_TIMEOUT,
  );

  it(
    'an agent token sees nothing; a wrong token neither; an approver is sent to the approvals page',
    async () => {
      const agent = await sg.agent({ profiles: ['js'] });
      const { context, page, problems } = await open('#/agents');
      try {
        await page.locator(sel('token-input')).waitFor();
        await shot(page, '00-sign-in');
        await signIn(page, agent.token);
        const error = page.locator(`${sel('status-message')}[data-kind="error"]`);
        await error.waitFor();
        expect(await error.textContent()).toContain('not a console token');
        await shot(page, '12-agent-token-refused');
        expect(await page.locator(sel('view')).isVisible()).toBe(false);
        expect(await page.locator('#nav').isVisible()).toBe(false);
        expect(await page.locator(sel('agent-row')).count()).toBe(0);
        expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
        // Straight to a page by its address: still nothing without a human token.
        await go(page, `#/agents/${agent.id}`);
        expect(await page.locator(sel('page-agent')).count()).toBe(0);

        await signIn(page, 'sgp_not-a-real-token');
        await page.locator(`${sel('status-message')}[data-kind="error"]`, { hasText: 'not accepted' }).waitFor();
        expect(await page.locator(sel('view')).isVisible()).toBe(false);

        await signIn(page, tokens.approver);
        await page.locator(sel('approvals-link')).waitFor();
        expect(await page.locator(sel('nav-approvals')).isVisible()).toBe(true);
        expect(await page.locator(sel('nav-agents')).isVisible()).toBe(false);
        await shot(page, '13-approver-landing');
        // The approvals page shares the sign-in of the tab.
        await page.locator(sel('approvals-link')).click();
        await page.locator(sel('approval-list')).waitFor();
        expect(problems).toEqual([]);
      } finally {
        await context.close();
      }
    },
    TEST_TIMEOUT,
  );
});

// The artifacts directory exists for the screenshots; make sure it is not committed.
describe('test artifacts', () => {
  it('are gitignored', async () => {
    expect(await readFile('.gitignore', 'utf8')).toMatch(/^test-artifacts\/$/m);
    await eventually(async () => ((await readdir(SHOTS)).length > 0 ? true : undefined), 1000, 'screenshots');
  });
});
