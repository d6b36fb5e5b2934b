// The approvals console end to end, in real headless Chromium against a real Sandgate listening
// on loopback: an approver signs in, sees the pending send_email with its untrusted arguments
// rendered as text, approves it (the fake gateway gets exactly one request) or denies it (the
// gateway gets nothing); a wrong token gets a clear error and no list. If Chromium cannot start,
// every test fails with the reason: nothing here is skipped.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_CSP } from '../../api/console/console-routes.ts';
import { type ConsoleBrowser, launchConsoleBrowser, sel, signIn } from '../helpers/console-browser.ts';
import { type FakeEndpoint, startFakeEndpoint } from '../helpers/fake-endpoint.ts';
import { eventually, startSandgate, type TestSandgate } from '../helpers/sandgate.ts';

const GATEWAY_TOKEN = 'gw-secret-console-4d8e2a';
const XSS_BODY = '<img src=x onerror="window.__xss=1">';
const TEST_TIMEOUT = 60_000;

let gateway: FakeEndpoint;
let sg: TestSandgate;
let url: string;
let approverToken: string;
let approver: Record<string, string>;
let browser: ConsoleBrowser;

const sentTo = (to: string) => gateway.received.filter((r) => JSON.parse(r.body).args?.to === to);
const getJson = async (path: string, headers: Record<string, string>) =>
  (await sg.app!.inject({ url: path, headers })).json();

beforeAll(async () => {
  gateway = await startFakeEndpoint();
  sg = await startSandgate({
    SANDGATE_TOOLS_DIR: 'tools',
    SANDGATE_MAIL_GATEWAY_URL: `${gateway.url}/send`,
    SANDGATE_MAIL_GATEWAY_TOKEN: GATEWAY_TOKEN,
  });
  url = await sg.app!.listen({ port: 0, host: '127.0.0.1' });
  const res = await sg.app!.inject({
    method: 'POST',
    url: '/v1/principals',
    headers: sg.admin,
    payload: { name: 'console-alice', role: 'approver' },
  });
  expect(res.statusCode).toBe(201);
  approverToken = res.json().token;
  approver = { authorization: `Bearer ${approverToken}` };
  browser = await launchConsoleBrowser();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await sg?.stop();
  await gateway?.close();
});

const open = () => browser.open(`${url}/console/approvals`);

/** An agent asks for send_email; returns the action id and its approval id. */
async function askToSend(args: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const { auth } = await sg.agent({ tools: ['send_email'] });
  const res = await sg.app!.inject({
    method: 'POST',
    url: '/v1/actions',
    headers: auth,
    payload: { tool: 'send_email', args, ...extra },
  });
  expect(res.statusCode).toBe(202);
  expect(res.json().status).toBe('awaiting_approval');
  const actionId: string = res.json().id;
  const approvalId: string = (await getJson(`/v1/actions/${actionId}`, approver)).approval.id;
  return { actionId, approvalId };
}

async function finalStatus(actionId: string) {
  return eventually(
    async () => {
      const a = await getJson(`/v1/actions/${actionId}`, approver);
      return ['succeeded', 'failed', 'denied', 'expired', 'cancelled'].includes(a.status) ? a : undefined;
    },
    20_000,
    `action ${actionId} to finish`,
  );
}

describe('approvals console', () => {
  it(
    'serves the page, its script and its style with strict security headers and no inline code',
    async () => {
      for (const [path, type] of [
        ['/console/approvals', 'text/html'],
        ['/console/approvals.js', 'text/javascript'],
        ['/console/console.css', 'text/css'],
      ] as const) {
        const res = await fetch(`${url}${path}`);
        expect(res.status, path).toBe(200);
        expect(res.headers.get('content-type'), path).toContain(type);
        expect(res.headers.get('content-security-policy'), path).toBe(CONSOLE_CSP);
        expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
        expect(res.headers.get('referrer-policy'), path).toBe('no-referrer');
        expect(res.headers.get('cache-control'), path).toBe('no-store');
        const body = await res.text();
        if (path === '/console/approvals') {
          expect(body).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/i);
          expect(body).not.toMatch(/\sstyle=|<style|\son[a-z]+=/i);
        }
        if (path === '/console/approvals.js')
          expect(body).not.toMatch(/\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML\(|document\.write\(/);
      }
      // Not part of the API description.
      const doc = (await sg.app!.inject('/docs/json')).json();
      expect(Object.keys(doc.paths).some((p) => p.startsWith('/console'))).toBe(false);
    },
    TEST_TIMEOUT,
  );

  it(
    'approve: the card shows the untrusted arguments as text, one click sends the email exactly once',
    async () => {
      const args = { to: 'a@example.com', subject: 'hi', body: XSS_BODY };
      const { actionId, approvalId } = await askToSend(args, { reasoning: 'the user asked' });
      const { context, page, problems } = await open();
      try {
        await signIn(page, approverToken);
        const card = page.locator(`${sel('approval-card')}[data-approval-id="${approvalId}"]`);
        await card.waitFor({ state: 'visible' });

        expect(await card.locator(sel('tool')).textContent()).toBe('send_email');
        expect(await card.locator(sel('reasoning')).textContent()).toBe('the user asked');
        expect(JSON.parse((await card.locator(sel('args')).textContent()) ?? '')).toEqual(args);
        expect(await card.locator(sel('args')).textContent()).toContain('<img src=x onerror=');
        expect(await card.locator(sel('agent-id')).textContent()).toMatch(/\S/);
        expect(await card.locator(sel('task-id')).textContent()).toBe('(none)');
        expect(await card.locator(sel('tainted-badge')).count()).toBe(0);
        expect(await page.locator('img').count()).toBe(0);
        expect(await page.evaluate(() => (globalThis as Record<string, unknown>).__xss)).toBeUndefined();

        // The token lives in sessionStorage only, and survives a reload of the tab.
        expect(await page.evaluate(() => ({ session: sessionStorage.length, local: localStorage.length }))).toEqual({
          session: 1,
          local: 0,
        });
        expect(await context.cookies()).toEqual([]);
        await page.reload();
        await card.waitFor({ state: 'visible' });

        await card.locator(sel('reason')).fill('looks right');
        await card.locator(sel('approve')).click();
        const success = page.locator(`${sel('status-message')}[data-kind="success"]`);
        await success.waitFor({ state: 'visible' });
        expect(await success.textContent()).toContain(`Approved send_email (${approvalId})`);
        await card.waitFor({ state: 'detached' });

        const done = await finalStatus(actionId);
        expect(done).toMatchObject({ status: 'succeeded', approval: { status: 'used', reason: 'looks right' } });
        // The console follows the action it approved until it ends.
        await page.locator(sel('decision-entry'), { hasText: `${actionId}: succeeded` }).waitFor();
        // Wait through at least one more refresh: no second request may come.
        await new Promise((r) => setTimeout(r, 3_500));
        const sent = sentTo('a@example.com');
        expect(sent).toHaveLength(1);
        expect(JSON.parse(sent[0]!.body).args).toEqual(args);
        expect(await page.locator(`${sel('approval-card')}[data-approval-id="${approvalId}"]`).count()).toBe(0);
        expect(await page.evaluate(() => (globalThis as Record<string, unknown>).__xss)).toBeUndefined();

        // Sign out: back to the form, the token is gone from the tab.
        await page.locator(sel('sign-out')).click();
        await page.locator(sel('token-input')).waitFor({ state: 'visible' });
        expect(await page.locator(sel('approval-list')).isVisible()).toBe(false);
        expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
        expect(problems).toEqual([]);
      } finally {
        await context.close();
      }
    },
    TEST_TIMEOUT,
  );

  it(
    'deny: a tainted request is flagged, denied with one click, and never reaches the gateway',
    async () => {
      const args = { to: 'deny@example.com', subject: 'exfil', body: 'the database dump' };
      const reasoning = 'the page said to <b>send</b> it <script>window.__xss=2</script>';
      const { context, page, problems } = await open();
      try {
        await signIn(page, approverToken);
        await page.locator(sel('approval-list')).waitFor({ state: 'visible' });
        // Asked after the approver signed in: the 3 s refresh brings it in.
        const { actionId, approvalId } = await askToSend(args, { reasoning, untrusted: true });
        const card = page.locator(`${sel('approval-card')}[data-approval-id="${approvalId}"]`);
        await card.waitFor({ state: 'visible' });
        expect(await card.locator(sel('reasoning')).textContent()).toBe(reasoning);
        expect(await card.locator(sel('tainted-badge')).textContent()).toBe('TAINTED');
        expect(await card.locator(sel('taint-sources')).textContent()).toContain('arguments marked untrusted');

        await card.locator(sel('reason')).fill('not to that address');
        await card.locator(sel('deny')).click();
        const success = page.locator(`${sel('status-message')}[data-kind="success"]`);
        await success.waitFor({ state: 'visible' });
        expect(await success.textContent()).toContain(`Denied send_email (${approvalId})`);
        await card.waitFor({ state: 'detached' });

        expect(await finalStatus(actionId)).toMatchObject({
          status: 'denied',
          approval: { status: 'denied', reason: 'not to that address' },
        });
        await new Promise((r) => setTimeout(r, 1_000));
        expect(sentTo('deny@example.com')).toHaveLength(0);
        expect(await page.evaluate(() => (globalThis as Record<string, unknown>).__xss)).toBeUndefined();
        expect(problems).toEqual([]);
      } finally {
        await context.close();
      }
    },
    TEST_TIMEOUT,
  );

  it(
    "an approval decided elsewhere shows the API's error and leaves the list",
    async () => {
      const { approvalId } = await askToSend({ to: 'race@example.com', subject: 's', body: 'b' });
      const { context, page, problems } = await open();
      try {
        await signIn(page, approverToken);
        const card = page.locator(`${sel('approval-card')}[data-approval-id="${approvalId}"]`);
        await card.waitFor({ state: 'visible' });
        // Another approver denies it before this one clicks (faster than the 3 s refresh).
        const other = await sg.app!.inject({
          method: 'POST',
          url: '/v1/principals',
          headers: sg.admin,
          payload: { name: 'bob', role: 'approver' },
        });
        const decided = await sg.app!.inject({
          method: 'POST',
          url: `/v1/approvals/${approvalId}`,
          headers: { authorization: `Bearer ${other.json().token}` },
          payload: { decision: 'deny' },
        });
        expect(decided.statusCode).toBe(200);
        await card.locator(sel('approve')).click();
        const error = page.locator(`${sel('status-message')}[data-kind="error"]`);
        await error.waitFor({ state: 'visible' });
        expect(await error.textContent()).toContain('already denied');
        await card.waitFor({ state: 'detached' });
        expect(sentTo('race@example.com')).toHaveLength(0);
        expect(problems).toEqual([]);
      } finally {
        await context.close();
      }
    },
    TEST_TIMEOUT,
  );

  it(
    'a wrong token, or an agent token, shows an error and no list',
    async () => {
      await askToSend({ to: 'never-shown@example.com', subject: 's', body: 'b' });
      const { context, page, problems } = await open();
      try {
        await signIn(page, 'sgp_not-a-real-token');
        const error = page.locator(`${sel('status-message')}[data-kind="error"]`);
        await error.waitFor({ state: 'visible' });
        expect(await error.textContent()).toContain('The token was not accepted');
        expect(await page.locator(sel('token-input')).isVisible()).toBe(true);
        expect(await page.locator(sel('approval-list')).isVisible()).toBe(false);
        expect(await page.locator(sel('approval-card')).count()).toBe(0);
        expect(await page.evaluate(() => sessionStorage.length)).toBe(0);

        const { token: agentToken } = await sg.agent({ tools: ['send_email'] });
        await signIn(page, agentToken);
        await page
          .locator(`${sel('status-message')}[data-kind="error"]`, { hasText: 'not an approver token' })
          .waitFor();
        expect(await page.locator(sel('approval-list')).isVisible()).toBe(false);
        expect(await page.locator(sel('approval-card')).count()).toBe(0);
        expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
        expect(problems).toEqual([]);
      } finally {
        await context.close();
      }
    },
    TEST_TIMEOUT,
  );
});
