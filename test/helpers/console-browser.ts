// Real headless Chromium for the console's end-to-end tests: one browser per test file, a page
// per test with its CSP violations and page errors collected. A launch failure is kept and thrown
// by every open(), so each browser test FAILS with the reason (a throw in beforeAll would only
// mark them skipped).
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { expect } from 'vitest';
import { CONSOLE_CSP } from '../../api/console/console-routes.ts';

const CHROMIUM = '/usr/bin/chromium';

export interface Opened {
  context: BrowserContext;
  page: Page;
  /** CSP violations and uncaught page errors: must stay empty. */
  problems: string[];
}

export interface ConsoleBrowser {
  /** Opens `url` in a new context and checks that it is served with the console's CSP. */
  open(url: string, viewport?: { width: number; height: number }): Promise<Opened>;
  close(): Promise<void>;
}

export async function launchConsoleBrowser(): Promise<ConsoleBrowser> {
  let browser: Browser | undefined;
  let launchError: Error | undefined;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], headless: true });
  } catch (e) {
    launchError = new Error(
      `Chromium (${CHROMIUM}) could not start, so the console cannot be tested: ${(e as Error).message}`,
    );
  }
  return {
    async open(url, viewport) {
      if (!browser) throw launchError ?? new Error('Chromium was not started');
      const context = await browser.newContext(viewport ? { viewport } : {});
      const page = await context.newPage();
      page.setDefaultTimeout(20_000);
      const problems: string[] = [];
      page.on('console', (m) => {
        if (/Content.Security.Policy/i.test(m.text())) problems.push(`csp: ${m.text()}`);
      });
      page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
      const res = await page.goto(url);
      expect(res?.status()).toBe(200);
      expect(res?.headers()['content-security-policy']).toBe(CONSOLE_CSP);
      return { context, page, problems };
    },
    async close() {
      await browser?.close();
    },
  };
}

export const sel = (testid: string) => `[data-testid="${testid}"]`;

export async function signIn(page: Page, token: string): Promise<void> {
  await page.locator(sel('token-input')).fill(token);
  await page.locator(sel('sign-in')).click();
}
