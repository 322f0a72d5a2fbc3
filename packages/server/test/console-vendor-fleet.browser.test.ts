import { readFileSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConsoleWorld } from '../src/features/console/console.fixture.js';
import { browserSkipReason, type ConsoleBrowser, signIn } from './support/browser.js';
import { closeVendorConsole, pickOption, startVendorConsole } from './support/vendor-console.js';

/**
 * The vendor's models and fleet in a real browser (issue 13, items 2 and 3): an operator, acting as
 * the vendor's admin, creates a model with seed-002 codes from the pickers and sees its secrets once,
 * edits its label format with the live preview, registers pasted SNs (a bad paste names each line
 * and registers nothing), filters the fleet by state and search, and downloads the static-QR
 * spreadsheet of a selection. en and zh, desktop and phone, to CONSOLE_SCREENSHOTS_DIR.
 */
if (browserSkipReason) console.warn(`[bindery tests] console browser tests skipped: ${browserSkipReason}`);

// A loaded machine (several helpers' browsers at once) makes each step slow, not wrong.
describe.skipIf(!!browserSkipReason)('vendor models and devices in chromium', { timeout: 180_000 }, () => {
  let w: ConsoleWorld;
  let cb: ConsoleBrowser;
  let vendorId: string;
  let modelId = '';
  /** Lazy pages and queries take their time on a shared machine: poll for up to 15 s. */
  const poll = <T>(fn: () => T | Promise<T>) => expect.poll(fn, { timeout: 15_000 });
  /** Screenshots once the tables stopped loading and antd's fade-in has ended. */
  const shot = async (page: Page, name: string) => {
    await poll(() => page.locator('.ant-spin-blur, .ant-spin-spinning').count()).toBe(0);
    await page.waitForTimeout(400);
    await cb.shot(page, name);
  };
  const db = () => w.h.deps.db.kysely;
  const FLEET = ['FLT0001', 'FLT0002', 'FLT0003', 'FLT0004', 'FLT0005'];

  beforeAll(async () => {
    // Until vendor accounts land everywhere, an operator acts for every vendor as its admin.
    ({ cb, w, vendorId } = await startVendorConsole('pkLock', 'op.fleet'));
  }, 120_000);

  afterAll(() => closeVendorConsole({ cb, w }));

  it('creates a model with codes from the pickers and shows its secrets once', async () => {
    const page = await cb.newPage({ lang: 'en' });
    await signIn(page, w.baseUrl, 'op.fleet', w.password, `/vendors/${vendorId}/models`);
    await page.getByTestId('models-table').waitFor();
    await poll(() => page.getByTestId('model-link').count()).toBe(2);
    await shot(page, 'vendor-models-en');

    await page.getByTestId('model-new').click();
    await page.getByTestId('model-name').fill('Face Terminal F1');
    await page.getByTestId('model-pk').fill('pkFace');
    await page.getByTestId('model-category').click();
    await pickOption(page, /Turnstile · 闸机/);
    await page.getByTestId('model-class').click();
    await page.keyboard.type('Access');
    await pickOption(page, /180 · Access-control device · 门禁设备/);
    await page.getByTestId('model-scene').click();
    await pickOption(page, /App mode/);
    await page.getByTestId('model-shared-seed').check();
    await shot(page, 'vendor-model-create-en');
    await page.getByTestId('model-create').click();

    const secret = await page.getByTestId('model-secret').innerText();
    const seed = await page.getByTestId('model-seed').innerText();
    expect(secret.length).toBeGreaterThanOrEqual(32);
    expect(seed).toMatch(/^[0-9a-f]{32}$/);
    await shot(page, 'vendor-model-secret-en');
    const row = await db().selectFrom('models').selectAll().where('product_key', '=', 'pkFace').executeTakeFirstOrThrow();
    modelId = row.model_id;
    expect([row.category_code, row.class_code, row.app_scene_code]).toEqual(['11', '180', '2']);
    expect(row.seed_secret_no_enc).not.toBeNull();

    // Once: after "saved" (or a reload) the page has no way to show it again.
    await page.getByTestId('model-secret-done').click();
    await poll(() => page.getByTestId('model-secret').count()).toBe(0);
    await page.reload();
    await page.getByTestId('models-table').waitFor();
    expect(await page.content()).not.toContain(secret);
    await page.close();
  });

  it('edits the label format with a live preview; a template that cannot be read back is refused', async () => {
    const page = await cb.newPage({ lang: 'en' });
    await signIn(page, w.baseUrl, 'op.fleet', w.password, `/vendors/${vendorId}/models/${modelId}`);
    await poll(() => page.getByTestId('model-title').innerText()).toBe('Face Terminal F1');
    expect(await page.getByTestId('label-preview-text').innerText()).toMatch(/\/connect\/hardware\?hw_code=/);
    await page.getByText('Quectel pk&sn&v=1').click();
    await poll(() => page.getByTestId('label-preview-text').innerText()).toBe('pk=pkFace&sn=BDG0000187&v=1');
    await page.getByText('Custom template').click();
    await page.getByTestId('model-template').fill('{pk}-{sn}');
    await page.getByTestId('template-problems').waitFor();
    await shot(page, 'vendor-model-template-refused-en');
    await page.getByTestId('model-template').fill('FACE;{pk};{sn}');
    await poll(() => page.getByTestId('label-preview-text').innerText()).toBe('FACE;pkFace;BDG0000187');
    expect(await page.getByTestId('template-problems').count()).toBe(0);
    await page.getByTestId('model-save').click();
    await poll(
      async () =>
        (
          await db()
            .selectFrom('models')
            .select(['label_format', 'label_template'])
            .where('model_id', '=', modelId)
            .executeTakeFirstOrThrow()
        ).label_template,
    ).toBe('FACE;{pk};{sn}');
    await shot(page, 'vendor-model-detail-en');
    await page.close();
  });

  it('registers pasted SNs all or nothing, filters the fleet and downloads the spreadsheet of a selection', async () => {
    const page = await cb.newPage({ lang: 'en' });
    await signIn(page, w.baseUrl, 'op.fleet', w.password, `/vendors/${vendorId}/devices`);
    await page.getByTestId('devices-table').waitFor();
    await poll(() => page.locator('[data-testid=device-state]').count()).toBe(9);
    await page.getByTestId('devices-register').click();
    await page.getByTestId('register-model').click();
    await pickOption(page, /Face Terminal F1/);
    await page.getByTestId('register-sns').fill('FLT0001\nFLT0002\nbad-sn\nflt0001\nCON0001');
    await page.getByTestId('register-ok').click();
    const errors = page.getByTestId('register-line-errors');
    await errors.waitFor();
    const text = await errors.innerText();
    expect(text).toContain('Not a valid SN');
    expect(text).toContain('Repeats an earlier line');
    expect(text).toContain('Already registered');
    await shot(page, 'vendor-devices-paste-errors-en');
    expect(await db().selectFrom('devices').select('sn').where('model_id', '=', modelId).execute()).toEqual([]);

    await page.getByTestId('register-sns').fill(FLEET.join('\n'));
    await page.getByTestId('register-ok').click();
    await poll(() => page.locator('[data-testid=device-state]').count()).toBe(14);
    // The devices take the model's app scene.
    const scenes = await db().selectFrom('devices').select('app_scene_code').where('model_id', '=', modelId).execute();
    expect(scenes.map((s) => s.app_scene_code)).toEqual(['2', '2', '2', '2', '2']);

    // FLT0002 is bound and online, FLT0003 bound and offline: the state column says so, and filters by it.
    await db()
      .updateTable('devices')
      .set({ activated_at: Date.now(), owner_type: 'org', owner_id: w.org.orgId, online: 1 })
      .where('sn', '=', 'FLT0002')
      .execute();
    await db()
      .updateTable('devices')
      .set({ activated_at: Date.now(), owner_type: 'user', owner_id: 'usr_x', online: 0 })
      .where('sn', '=', 'FLT0003')
      .execute();
    await page.getByTestId('devices-search').locator('input').fill('flt');
    await page.getByTestId('devices-search').locator('input').press('Enter');
    await poll(() => page.locator('[data-testid=device-state]').allInnerTexts()).toEqual([
      'Registered',
      'Online',
      'Bound',
      'Registered',
      'Registered',
    ]);
    await page.getByTestId('filter-state').click();
    await pickOption(page, /^Online$/);
    await poll(() => page.locator('[data-testid=device-state]').allInnerTexts()).toEqual(['Online']);
    expect(page.url()).toContain('state=online');
    await shot(page, 'vendor-devices-filtered-en');
    await page.getByTestId('filter-state').locator('.ant-select-clear').click({ force: true });
    await poll(() => page.locator('[data-testid=device-state]').count()).toBe(5);

    // A selection of two → the static-QR spreadsheet of those two.
    for (const sn of ['FLT0001', 'FLT0004']) await page.locator('tr', { hasText: sn }).locator('input[type=checkbox]').check();
    expect(await page.getByTestId('sheet-scope').innerText()).toContain('2 selected');
    await shot(page, 'vendor-devices-selected-en');
    const [dl] = await Promise.all([page.waitForEvent('download'), page.getByTestId('sheet-csv').click()]);
    const csv = readFileSync((await dl.path())!, 'utf8')
      .replace(/^\uFEFF/, '')
      .trim()
      .split('\r\n');
    expect(csv[0]).toBe('SN,model,PK,hw_code,static QR URL,label content,verification code');
    expect(csv.slice(1).map((l) => l.split(',')[0])).toEqual(['FLT0001', 'FLT0004']);
    const hw = (await db().selectFrom('devices').select('hw_code').where('sn', '=', 'FLT0001').executeTakeFirstOrThrow()).hw_code;
    expect(csv[1]).toContain(`/connect/hardware?hw_code=${hw}`);
    expect(csv[1]).toContain('FACE;pkFace;FLT0001');

    // A model's page links to its devices: the list opens filtered by it.
    await page.goto(`${w.baseUrl}/vendors/${vendorId}/models/${modelId}`);
    await page.getByTestId('model-devices').click();
    await page.waitForURL(/\/devices\?model_id=/);
    await poll(() => page.locator('[data-testid=device-state]').count()).toBe(5);
    await page.close();
  });

  it('shows the pages in zh and on a phone', async () => {
    for (const lang of ['en', 'zh'] as const) {
      for (const phone of [false, true]) {
        if (lang === 'en' && !phone) continue;
        const tag = `${lang}${phone ? '-phone' : ''}`;
        const page = await cb.newPage({ lang, phone });
        await signIn(page, w.baseUrl, 'op.fleet', w.password, `/vendors/${vendorId}/devices?q=flt`);
        await poll(() => page.locator('[data-testid=device-state]').count()).toBe(5);
        if (lang === 'zh') expect(await page.locator('[data-testid=device-state]').allInnerTexts()).toContain('在线');
        await shot(page, `vendor-devices-${tag}`);
        await page.goto(`${w.baseUrl}/vendors/${vendorId}/models`);
        await poll(() => page.getByTestId('model-link').count()).toBe(3);
        await shot(page, `vendor-models-${tag}`);
        await page.goto(`${w.baseUrl}/vendors/${vendorId}/models/${modelId}`);
        await page.getByTestId('label-preview-text').waitFor();
        await shot(page, `vendor-model-detail-${tag}`);
        if (lang === 'zh' && !phone) {
          await page.goto(`${w.baseUrl}/vendors/${vendorId}/models`);
          await page.getByTestId('model-new').click();
          await page.getByTestId('model-category').click();
          await shot(page, 'vendor-model-create-zh');
        }
        await page.close();
      }
    }
  });
});
