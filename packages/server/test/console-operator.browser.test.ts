import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConsoleWorld, startConsoleWorld } from '../src/features/console/console.fixture.js';
import { SYSTEM_CLI } from '../src/shared/principal.js';
import { browserSkipReason, type ConsoleBrowser, launchConsoleBrowser, signIn } from './support/browser.js';
import { pickOption } from './support/vendor-console.js';

/**
 * The operator's pages in a real browser (issue 12, items 5 and 6): instance health with the
 * first-start banner (the world's public URL is 127.0.0.1), a vendor and its key (shown once), an
 * organisation with its first super admin, who signs in from a fresh browser and finds it; the
 * organisation made a merchant, and its super admin managing it (APIv3 key, inspection import with
 * errors by line). en and zh, desktop and phone, shots to CONSOLE_SCREENSHOTS_DIR.
 */
if (browserSkipReason) console.warn(`[bindery tests] console browser tests skipped: ${browserSkipReason}`);

const OPERATOR_PASSWORD = 'correct horse battery';
const ORG_NAME = 'Harbour Cafe';
const BOSS = 'harbour.boss';
const BOSS_PASSWORD = 'harbour boss password';
const MCHID = '1900012345';

describe.skipIf(!!browserSkipReason)('operator pages in chromium', () => {
  let w: ConsoleWorld;
  let cb: ConsoleBrowser;
  let orgId = '';
  const shot = (page: Page, name: string) => cb.shot(page, name);
  const asOperator = (page: Page, next: string) => signIn(page, w.baseUrl, 'root', OPERATOR_PASSWORD, next);
  const db = () => w.h.deps.db.kysely;

  beforeAll(async () => {
    cb = await launchConsoleBrowser();
    w = await startConsoleWorld();
  }, 120_000);

  afterAll(async () => {
    await cb?.close();
    await w?.close();
  });

  it('shows instance health and the localhost banner to the operator', async () => {
    const page = await cb.newPage();
    await asOperator(page, '/operator');
    await page.getByTestId('health').waitFor();
    // The banner of the shell: the public URL (127.0.0.1) is printed into every label.
    await page.getByTestId('setup-warning-public_url_localhost').waitFor();
    expect(await page.getByTestId('setup-warning-no_operator_password').count()).toBe(0);
    await page.getByTestId('dependency-database').getByText('OK').waitFor();
    await page.getByTestId('dependency-bus').getByText('memory').waitFor();
    expect(await page.getByTestId('health-version').innerText()).toMatch(/^\d+\.\d+\.\d+/);
    await page.getByTestId('health-nodes').getByText('this one').waitFor();
    await page.getByTestId('health-devices').getByText('0 devices connected').waitFor();
    await shot(page, 'operator-health');

    // The same page in Chinese (the header's switch), then at a phone's width.
    await page.getByTestId('lang').click();
    await page.getByTestId('setup-banner').getByText('请完成实例设置').waitFor();
    await page.getByTestId('dependency-database').getByText('正常').waitFor();
    await shot(page, 'operator-health-zh');
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByTestId('health').waitFor();
    await shot(page, 'operator-health-phone-zh');

    // People who are not operators see no banner (and are refused the warnings).
    const person = await cb.newPage();
    await signIn(person, w.baseUrl, 'boss.con', w.password, '/devices');
    await person.getByTestId('nav-devices').waitFor();
    expect(await person.getByTestId('setup-banner').count()).toBe(0);
  });

  it('creates a vendor and a vendor key, shown once, that works', async () => {
    const page = await cb.newPage();
    await asOperator(page, '/operator/vendors');
    await page.getByTestId('vendors-table').waitFor();
    await page.getByTestId('vendor-new').click();
    await page.getByTestId('vendor-name').fill('Lumen Devices');
    await page.getByTestId('vendor-create').click();
    // The new vendor opens at once, with no keys yet.
    await page.getByTestId('vendor-drawer').getByText('No keys yet').waitFor();
    await page.getByTestId('vendor-key-name').fill('factory line');
    await page.getByTestId('vendor-key-create').click();
    const token = (await page.getByTestId('vendor-key-token').innerText()).trim();
    expect(token.length).toBeGreaterThan(20);
    await page.getByTestId('vendor-keys').getByText('factory line').waitFor();
    await shot(page, 'operator-vendor-key');

    const vendor = await db().selectFrom('vendors').select('id').where('name', '=', 'Lumen Devices').executeTakeFirstOrThrow();
    const r = await fetch(`${w.baseUrl}/api/v1/vendors/${vendor.id}`, { headers: { authorization: `Bearer ${token}` } });
    expect(r.status).toBe(200);

    // Revoked from the page, the key stops working.
    await page.getByTestId('vendor-key-revoke-factory line').click();
    await page.getByTestId('vendor-key-revoke-confirm').click();
    await page.getByTestId('vendor-keys').getByText('Revoked').waitFor();
    const after = await fetch(`${w.baseUrl}/api/v1/vendors/${vendor.id}`, { headers: { authorization: `Bearer ${token}` } });
    expect(after.status).toBe(401);

    const zh = await cb.newPage({ lang: 'zh' });
    await asOperator(zh, '/operator/vendors');
    await zh.getByTestId('vendor-Lumen Devices').click();
    await zh.getByTestId('vendor-keys').getByText('已吊销').waitFor();
    await shot(zh, 'operator-vendors-zh');
  });

  it('creates an organisation with its first super admin, who signs in and finds it', async () => {
    const page = await cb.newPage();
    await asOperator(page, '/operator/orgs');
    await page.getByTestId('orgs-table').waitFor();
    await page.getByTestId('org-new').click();
    await page.getByTestId('org-name').fill(ORG_NAME);
    await page.getByTestId('org-admin-username').fill(BOSS);
    await page.getByTestId('org-admin-display-name').fill('Hana Harbour');
    await page.getByTestId('org-admin-password').fill(BOSS_PASSWORD);
    await page.getByTestId('org-create').click();
    await page.getByTestId(`org-${ORG_NAME}`).waitFor();
    await shot(page, 'operator-orgs');
    const org = await db().selectFrom('organisations').select('id').where('name', '=', ORG_NAME).executeTakeFirstOrThrow();
    orgId = org.id;

    // The super admin, in a fresh browser on a phone: their organisation is in the navigation.
    const boss = await cb.newPage({ phone: true, lang: 'zh' });
    await signIn(boss, w.baseUrl, BOSS, BOSS_PASSWORD, '/devices');
    await boss.getByTestId(`nav-org-${orgId}`).click();
    await boss.waitForURL(new RegExp(`/orgs/${orgId}`));
    await boss.getByTestId('admin-title').getByText(ORG_NAME).waitFor();
    await shot(boss, 'operator-new-org-admin-phone-zh');
  });

  it('makes the organisation a merchant; its super admin manages it and imports inspections', async () => {
    expect(orgId).not.toBe('');
    // A device of the organisation, so it is in the merchant's list once it is one.
    await w.h.services.binding.bind(SYSTEM_CLI, 'CON0007', { type: 'org', id: orgId });

    const page = await cb.newPage();
    await asOperator(page, '/operator/merchants');
    await page.getByTestId('merchants-table').waitFor();
    await page.getByTestId('merchant-new').click();
    await page.locator('.ant-modal .ant-form-item').filter({ hasText: 'Organisation' }).locator('.ant-select').first().click();
    await pickOption(page, ORG_NAME);
    await page.getByTestId('merchant-mchid-input').fill(MCHID);
    await page.getByTestId('merchant-shortname-input').fill('港湾咖啡');
    await page.getByTestId('merchant-create').click();
    await page.getByTestId('merchant-detail').waitFor();
    expect(await page.getByTestId('merchant-mchid').innerText()).toBe(MCHID);
    expect(await page.getByTestId('merchant-fleet').innerText()).toBe('1');
    await page.getByTestId('platform-key-id').waitFor();
    await shot(page, 'operator-merchant-detail');

    // The organisation's super admin: the same detail under their organisation.
    const boss = await cb.newPage();
    await signIn(boss, w.baseUrl, BOSS, BOSS_PASSWORD, `/orgs/${orgId}/merchant`);
    await boss.getByTestId('merchant-detail').waitFor();
    expect(await boss.getByTestId('merchant-mchid').innerText()).toBe(MCHID);
    // An APIv3 key, generated and shown once.
    await boss.getByTestId('merchant-apiv3-generate').click();
    await boss.getByTestId('merchant-apiv3-generate-confirm').click();
    const apiv3 = (await boss.getByTestId('merchant-apiv3-key').innerText()).trim();
    expect(apiv3).toMatch(/^[A-Za-z0-9]{32}$/);
    await boss.getByTestId('merchant-apiv3-state').getByText('Set').waitFor();

    // An inspection csv with a device outside the list: nothing imported, the line named.
    const upload = (text: string) =>
      boss
        .getByTestId('merchant-detail')
        .locator('input[type=file][accept=".csv,text/csv"]')
        .setInputFiles({ name: 'inspections.csv', mimeType: 'text/csv', buffer: Buffer.from(text) });
    await upload(
      'device_sn,result,inspect_time\nCON0007,SUCCESS,2026-03-01T09:00:00.000+08:00\nCON0008,FAIL,2026-03-01T09:05:00.000+08:00\n',
    );
    await boss
      .getByTestId('inspections-problems')
      .getByText(`no device with SN CON0008 is in the list of merchant ${MCHID}`)
      .waitFor();
    expect(await boss.getByTestId('inspections-problems').locator('tbody tr').first().innerText()).toMatch(/^3\b/);
    await shot(boss, 'org-merchant-inspection-errors');
    await upload('device_sn,result,inspect_time\nCON0007,SUCCESS,2026-03-01T09:00:00.000+08:00\n');
    await boss.getByTestId('inspections-done').getByText('1 records imported').waitFor();
    const rec = await db()
      .selectFrom('device_inspections as i')
      .innerJoin('devices as d', 'd.id', 'i.device_id')
      .select('i.result')
      .where('d.sn', '=', 'CON0007')
      .executeTakeFirstOrThrow();
    expect(rec.result).toBe('SUCCESS');
    await shot(boss, 'org-merchant');

    const zhPhone = await cb.newPage({ phone: true, lang: 'zh' });
    await signIn(zhPhone, w.baseUrl, BOSS, BOSS_PASSWORD, `/orgs/${orgId}/merchant`);
    await zhPhone.getByTestId('merchant-detail').getByText('平台密钥').waitFor();
    await shot(zhPhone, 'org-merchant-phone-zh');

    // Another organisation's super admin finds no merchant in theirs.
    const other = await cb.newPage();
    await signIn(other, w.baseUrl, 'boss.con', w.password, `/orgs/${w.org.orgId}/merchant`);
    await other.getByTestId('not-merchant').waitFor();
    await shot(other, 'org-merchant-none');
  });
});
