/**
 * bench:console-bundle — how much JavaScript a phone downloads on the way from a QR code to a bound
 * device (issue 12: at or under 120 KB gzipped). Debian's chromium (playwright-core) at 390×844 against
 * the real app on SQLite with the built console; every script response is gzipped here (level 6, what a
 * gzip-serving proxy does by default) and summed once per URL.
 *
 * Three journeys, each in a fresh browser (nothing cached), signed out at the start:
 *   label URL   the phone's camera app opens the label's URL: sign in → confirm → bind → device page
 *   photo scan  /scan, choose a photo of the label (the QR decoder chunk loads unless the browser has
 *               BarcodeDetector; headless Linux chromium has none) → confirm → bind → device page
 *   admin       an organisation's admin pages, for comparison (Ant Design loads here, and only here)
 *
 *   npm run build:console && npm run bench:console-bundle
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import { gzipSync } from 'node:zlib';
import { staticBindUrl } from '@bindery/protocol';
import { chromium, type Page } from 'playwright-core';
import QRCode from 'qrcode';
import { type ConsoleWorld, startConsoleWorld } from '../packages/server/src/features/console/console.fixture.js';

const CHROMIUM = '/usr/bin/chromium';
const BUDGET_KB = 120;

interface Tally {
  scripts: Map<string, { raw: number; gz: number }>;
}

function track(page: Page): Tally {
  const t: Tally = { scripts: new Map() };
  page.on('response', async (r) => {
    if (r.request().resourceType() !== 'script') return;
    try {
      const body = await r.body();
      t.scripts.set(new URL(r.url()).pathname, { raw: body.length, gz: gzipSync(body, { level: 6 }).length });
    } catch {
      // a response without a body (redirect): nothing downloaded
    }
  });
  return t;
}

function report(name: string, t: Tally): number {
  const rows = [...t.scripts.entries()].sort((a, b) => b[1].gz - a[1].gz);
  const gz = rows.reduce((a, [, v]) => a + v.gz, 0) / 1024;
  const raw = rows.reduce((a, [, v]) => a + v.raw, 0) / 1024;
  console.log(`\n${name}: ${gz.toFixed(1)} KB gzipped JavaScript (${raw.toFixed(1)} KB raw) in ${rows.length} files`);
  for (const [url, v] of rows) console.log(`  ${(v.gz / 1024).toFixed(1).padStart(6)} KB gz  ${url.replace(/^\/assets\//, '')}`);
  return gz;
}

async function main(): Promise<void> {
  if (!existsSync(CHROMIUM)) throw new Error(`needs ${CHROMIUM} (apt-get install chromium)`);
  const cpus = os.cpus();
  console.log(
    `CPU: ${cpus[0]?.model ?? 'unknown'} × ${cpus.length} cores, Node ${process.version}, ${os.platform()} ${os.release()}`,
  );
  const w: ConsoleWorld = await startConsoleWorld();
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const phonePage = async () => {
    const ctx = await browser.newContext({
      viewport: { width: 390, height: 844 },
      isMobile: true,
      hasTouch: true,
      locale: 'zh-CN',
    });
    const page = await ctx.newPage();
    page.setDefaultTimeout(30_000);
    return page;
  };
  const signIn = async (page: Page, username: string) => {
    await page.waitForURL(/\/login\?next=/);
    await page.locator('input[name=username]').fill(username);
    await page.locator('input[name=password]').fill(w.password);
    await page.locator('form button[type=submit]').click();
  };
  try {
    // 1. The label URL, as a phone's camera app opens it.
    let page = await phonePage();
    let t = track(page);
    await page.goto(staticBindUrl(w.baseUrl, w.devices.get('CON0007')!.hwCode));
    await signIn(page, 'bob.con');
    await page.getByTestId('bind-confirm').waitFor();
    await page.getByTestId('owner-user').locator('input').check();
    await page.getByTestId('bind-confirm').locator('button[type=submit]').click();
    await page.getByTestId('bind-done').waitFor();
    await page.getByTestId('bind-done').locator('a').first().click();
    await page.waitForURL(/\/devices\/CON0007/);
    await page.waitForLoadState('networkidle');
    const labelKb = report('label URL → sign in → bind → device page', t);
    await page.context().close();

    // 2. The console's own scanner with a photo of the label.
    page = await phonePage();
    t = track(page);
    await page.goto(`${w.baseUrl}/scan`);
    await signIn(page, 'bob.con');
    await page.getByTestId('photo').waitFor({ state: 'attached' });
    const png = await QRCode.toBuffer(staticBindUrl(w.baseUrl, w.devices.get('CON0008')!.hwCode), { margin: 4, scale: 8 });
    await page.getByTestId('photo').setInputFiles({ name: 'label.png', mimeType: 'image/png', buffer: png });
    await page.getByTestId('bind-confirm').waitFor();
    await page.getByTestId('owner-user').locator('input').check();
    await page.getByTestId('bind-confirm').locator('button[type=submit]').click();
    await page.getByTestId('bind-done').waitFor();
    await page.waitForLoadState('networkidle');
    const hasDetector = await page.evaluate(() => 'BarcodeDetector' in window);
    const photoKb = report(`/scan → photo → bind (BarcodeDetector: ${hasDetector ? 'yes' : 'no, the jsQR chunk loads'})`, t);
    await page.context().close();

    // 3. For comparison: an organisation's admin pages (Ant Design).
    page = await phonePage();
    t = track(page);
    await page.goto(`${w.baseUrl}/orgs/${w.org.orgId}`);
    await signIn(page, 'boss.con');
    await page.getByTestId('admin-title').waitFor();
    await page.waitForLoadState('networkidle');
    const adminKb = report('organisation admin pages (for comparison)', t);
    await page.context().close();

    console.log(`\nbudget ${BUDGET_KB} KB gz for scan → bind:`);
    console.log(`  label URL path   ${labelKb.toFixed(1)} KB  ${labelKb <= BUDGET_KB ? 'within' : 'OVER'}`);
    console.log(`  photo scan path  ${photoKb.toFixed(1)} KB  ${photoKb <= BUDGET_KB ? 'within' : 'OVER'} (decoder included)`);
    console.log(`  admin pages      ${adminKb.toFixed(1)} KB  (not budgeted)`);
  } finally {
    await browser.close();
    await w.close();
  }
}

await main();
