import { checkCharScheme } from '@bindery/protocol';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConsoleWorld } from '../src/features/console/console.fixture.js';
import { SYSTEM_CLI } from '../src/shared/principal.js';
import { browserSkipReason, type ConsoleBrowser, signIn } from './support/browser.js';
import { closeVendorConsole, pickOption, startVendorConsole } from './support/vendor-console.js';

/**
 * Label batches and relation files in a real browser (issue 13, items 4 and 5): a 200-label batch is
 * created from the console and generated in the background, the page is reloaded halfway and the
 * progress is still there, the preview is drawn and a download is counted; a relation file passes
 * its dry run, imports and is in the history. The zip's contents (every QR decoded, the codes on the
 * PDFs) and a relation file's line errors are checked by the vendor journey
 * (console-vendor-journey.browser.test.ts). en and zh, desktop and phone, to CONSOLE_SCREENSHOTS_DIR.
 */
if (browserSkipReason) console.warn(`[bindery tests] console browser tests skipped: ${browserSkipReason}`);

describe.skipIf(!!browserSkipReason)('vendor label batches and relation files in chromium', () => {
  let w: ConsoleWorld;
  let cb: ConsoleBrowser;
  let vendorId: string;
  let batchId = '';
  let sns: string[] = [];
  const shot = (page: Page, name: string) => cb.shot(page, name);
  const db = () => w.h.deps.db.kysely;

  beforeAll(async () => {
    // Until vendor accounts land everywhere, an operator acts for every vendor as its admin.
    ({ cb, w, vendorId } = await startVendorConsole('pkCode', 'op.con'));
  }, 120_000);

  afterAll(() => closeVendorConsole({ cb, w }));

  it('creates a 200-label batch, keeps its progress across a reload, and counts a download', async () => {
    const bg = w.h.services.production.background;
    // Slow enough to reload in the middle: 10 slices of 20, 500 ms apart.
    bg.sliceSize = 20;
    bg.sliceDelayMs = 500;
    const page = await cb.newPage({ lang: 'en' });
    await signIn(page, w.baseUrl, 'op.con', w.password, `/vendors/${vendorId}/batches`);
    await page.getByTestId('batches-table').waitFor();
    await shot(page, 'vendor-batches-empty-en');
    await page.getByTestId('batch-new').click();
    await page.getByTestId('batch-model').click();
    await pickOption(page, /Meeting Room Screen/);
    await page.getByTestId('batch-format').waitFor();
    await page.getByTestId('batch-prefix').fill('LBL');
    await page.getByTestId('batch-count').fill('200');
    await shot(page, 'vendor-batch-create-en');
    await page.getByTestId('batch-create').click();
    await page.waitForURL(/\/batches\/bat_/);
    batchId = decodeURIComponent(page.url().split('/batches/')[1]!);
    await page.getByTestId('batch-progress').waitFor();
    await shot(page, 'vendor-batch-progress-en');

    // Reload mid-way: the bar comes back with the server's progress, not from zero.
    const generated = async () =>
      Number(
        (
          await db()
            .selectFrom('devices')
            .select((eb) => eb.fn.countAll().as('n'))
            .where('batch_id', '=', batchId)
            .executeTakeFirstOrThrow()
        ).n,
      );
    while ((await generated()) < 60) await new Promise((r) => setTimeout(r, 100));
    await page.reload();
    const text = await page.getByTestId('batch-progress').innerText();
    const shown = Number(/Generating: (\d+) of 200/.exec(text)?.[1]);
    expect(shown).toBeGreaterThanOrEqual(60);
    expect(shown).toBeLessThan(200);
    await shot(page, 'vendor-batch-reloaded-en');
    bg.sliceDelayMs = 0;

    await page.getByTestId('batch-preview').waitFor();
    await expect.poll(() => page.getByTestId('batch-state').innerText()).toBe('Ready');
    // The preview image loaded (an SVG the server made), at 50 × 30 mm.
    await expect
      .poll(() => page.getByTestId('batch-preview').evaluate((img) => (img as HTMLImageElement).naturalWidth))
      .toBeGreaterThan(0);
    await shot(page, 'vendor-batch-ready-en');
    const rows = await db().selectFrom('devices').select('sn').where('batch_id', '=', batchId).orderBy('id').execute();
    sns = rows.map((r) => r.sn);
    expect(sns).toHaveLength(200);
    for (const sn of sns) expect(checkCharScheme(sn), sn).toBe('p-sn-4');

    // The zip, as the browser downloads it (what is in it, every QR decoded and the codes on the PDFs,
    // is the vendor journey's check on 2 000 labels: console-vendor-journey.browser.test.ts).
    const [dl] = await Promise.all([page.waitForEvent('download'), page.getByTestId('dl-zip').click()]);
    expect(await dl.failure()).toBeNull();
    // Counted once the response finished (after the browser had every byte).
    await expect
      .poll(async () => (await w.h.services.production.getBatch(SYSTEM_CLI, batchId)).counts.downloaded, { timeout: 15_000 })
      .toBe(1);
    await shot(page, 'vendor-batch-downloaded-en');

    // Phone and zh views of the same batch.
    const zh = await cb.newPage({ lang: 'zh' });
    await signIn(zh, w.baseUrl, 'op.con', w.password, `/vendors/${vendorId}/batches/${batchId}`);
    await zh.getByTestId('batch-preview').waitFor();
    await expect.poll(() => zh.getByTestId('batch-state').innerText()).toBe('已就绪');
    await shot(zh, 'vendor-batch-ready-zh');
    await zh.goto(`${w.baseUrl}/vendors/${vendorId}/batches`);
    await zh.getByTestId('batch-link').first().waitFor();
    await zh.locator('.ant-spin-spinning').waitFor({ state: 'detached' });
    await shot(zh, 'vendor-batches-zh');
    const phone = await cb.newPage({ lang: 'zh', phone: true });
    await signIn(phone, w.baseUrl, 'op.con', w.password, `/vendors/${vendorId}/batches/${batchId}`);
    await phone.getByTestId('batch-preview').waitFor();
    await shot(phone, 'vendor-batch-phone-zh');
  }, 240_000);

  it('imports a relation file after its dry run, and lists it in the history', async () => {
    expect(sns.length).toBe(200);
    const imei = (n: number) => `8612340000${String(n).padStart(5, '0')}`;
    const good = ['*DeviceKey,*ProductKey,Device SN', ...sns.slice(0, 50).map((sn, i) => `${imei(100 + i)},pkCode,${sn}`)].join(
      '\r\n',
    );
    const paired = async () =>
      Number(
        (
          await db()
            .selectFrom('devices')
            .select((eb) => eb.fn.count('device_key').as('n'))
            .where('batch_id', '=', batchId)
            .executeTakeFirstOrThrow()
        ).n,
      );

    const page = await cb.newPage({ lang: 'en' });
    await signIn(page, w.baseUrl, 'op.con', w.password, `/vendors/${vendorId}/relations`);
    await page.getByTestId('relations-history').waitFor();
    await page.locator('input[type=file]').setInputFiles({ name: 'good.csv', mimeType: 'text/csv', buffer: Buffer.from(good) });
    await page.getByTestId('relations-check').click();
    await page.getByTestId('relations-checked').waitFor();
    expect(await paired()).toBe(0);
    await page.getByTestId('relations-import').click();
    await page.getByTestId('relations-imported').waitFor();
    expect(await paired()).toBe(50);
    await expect
      .poll(() => page.getByTestId('relations-history').locator('tbody tr.ant-table-row').count())
      .toBeGreaterThanOrEqual(1);
    await shot(page, 'vendor-relations-imported-en');
    const phone = await cb.newPage({ lang: 'zh', phone: true });
    await signIn(phone, w.baseUrl, 'op.con', w.password, `/vendors/${vendorId}/relations`);
    await phone.getByTestId('relations-history').locator('tbody tr.ant-table-row').first().waitFor();
    await shot(phone, 'vendor-relations-phone-zh');
  }, 240_000);
});
