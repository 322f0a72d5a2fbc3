import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { CONSOLE_DIST } from '../../src/features/console/console.routes.js';

/**
 * The console's browser tests share this: Debian's chromium through playwright-core, fresh contexts (a
 * new profile each: a "fresh browser"), desktop 1280×800 or phone 390×844, en or zh, and screenshots.
 */
export const CHROMIUM = '/usr/bin/chromium';
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
export const browserSkipReason = existsSync(CHROMIUM) ? undefined : `no ${CHROMIUM} (apt-get install chromium)`;
/** Generous: two cores shared with the rest of the suite. Waiting is on elements, never on sleeps. */
export const WAIT = 30_000;

export const SHOTS = process.env.CONSOLE_SCREENSHOTS_DIR
  ? path.resolve(ROOT, process.env.CONSOLE_SCREENSHOTS_DIR)
  : path.join(tmpdir(), 'bindery-console-shots');

export interface ConsoleBrowser {
  browser: Browser;
  /** A fresh context (its own cookies and storage) and a page in it. */
  newPage(opts?: { phone?: boolean; lang?: 'en' | 'zh' }): Promise<Page>;
  /** Screenshot to SHOTS/console-<name>.png: phones as the screen shows them, desktops whole. */
  shot(page: Page, name: string): Promise<void>;
  close(): Promise<void>;
}

/** Builds the console when a direct vitest run finds it missing (`npm test` builds it first). */
export function ensureConsoleBuilt(): void {
  if (!existsSync(path.join(CONSOLE_DIST, 'index.html'))) {
    execFileSync('npm', ['run', 'build:console'], { cwd: ROOT, stdio: 'ignore' });
  }
}

/** `args`: extra chromium switches (the Bluetooth test turns on Web Bluetooth, behind a flag on Linux). */
export async function launchConsoleBrowser(opts: { args?: string[] } = {}): Promise<ConsoleBrowser> {
  mkdirSync(SHOTS, { recursive: true });
  ensureConsoleBuilt();
  // launch() gives chromium a new, empty profile directory of its own and removes it on close.
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
      '--no-first-run',
      ...(opts.args ?? []),
    ],
  });
  const contexts: BrowserContext[] = [];
  return {
    browser,
    async newPage(opts = {}) {
      const ctx = await browser.newContext({
        ...(opts.phone
          ? { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 }
          : { viewport: { width: 1280, height: 800 } }),
        locale: opts.lang === 'zh' ? 'zh-CN' : 'en-GB',
      });
      contexts.push(ctx);
      const page = await ctx.newPage();
      page.setDefaultTimeout(WAIT);
      page.setDefaultNavigationTimeout(WAIT);
      // A console page that breaks its own policy or throws is a defect the tests should see.
      page.on('pageerror', (e) => console.warn(`[browser pageerror] ${e.message}`));
      return page;
    },
    async shot(page, name) {
      const phone = (page.viewportSize()?.width ?? 1280) < 720;
      await page.screenshot({ path: path.join(SHOTS, `console-${name}.png`), fullPage: !phone });
    },
    async close() {
      for (const c of contexts) await c.close().catch(() => undefined);
      await browser.close();
    },
  };
}

/**
 * Signs in through the login page, starting from `next` (a deep link: the console sends the visitor to
 * /login?next=… and back). Works in en and zh: it finds the form by its field names.
 */
export async function signIn(page: Page, baseUrl: string, username: string, password: string, next = '/devices'): Promise<void> {
  await page.goto(`${baseUrl}${next}`);
  await page.waitForURL(/\/login\?next=/);
  await page.locator('input[name=username]').fill(username);
  await page.locator('input[name=password]').fill(password);
  await page.locator('form button[type=submit]').click();
  await page.waitForURL((u) => !u.pathname.startsWith('/login'));
}
