import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConsoleWorld } from '../src/features/console/console.fixture.js';
import { SYSTEM_CLI } from '../src/shared/principal.js';
import { browserSkipReason, type ConsoleBrowser, signIn } from './support/browser.js';
import { type CampaignConsole, closeCampaignConsole, selectIn, startCampaignConsole } from './support/campaign-console.js';

/**
 * An organisation's own firmware campaign in a real browser (issue 14): the lock's vendor lets
 * organisations run campaigns; Acme's super admin sets the time zone on the settings page, finds
 * the campaigns page in the menu (it shows the zone and links back to settings), starts a campaign on the Sales department (with its sub-departments) in a night-time maintenance
 * window, and reads it back (en, zh; desktop and phone).
 */
if (browserSkipReason) console.warn(`[bindery tests] console browser tests skipped: ${browserSkipReason}`);

describe.skipIf(!!browserSkipReason)('organisation firmware campaigns in chromium', { timeout: 180_000 }, () => {
  let c: CampaignConsole;
  let w: ConsoleWorld;
  let cb: ConsoleBrowser;
  const BOSS = 'boss.con';
  const poll = <T>(fn: () => T | Promise<T>) => expect.poll(fn, { timeout: 20_000 });
  const shot = (page: Page, name: string) => c.shot(page, name);
  const pick = selectIn;

  beforeAll(async () => {
    c = await startCampaignConsole({
      from: '2.4.0',
      orgCampaigns: true,
      place: (w) =>
        (['salesEast', 'sales', 'eng', 'root'] as const).map((dept, i) => [`CON000${i + 1}`, w.org.orgId, w.org.dept[dept]]),
    });
    ({ w, cb } = c);
  }, 120_000);

  afterAll(() => closeCampaignConsole(c));

  it("a super admin runs a campaign on the organisation's own devices by department, in a maintenance window", async () => {
    const page = await cb.newPage({ lang: 'en' });
    await signIn(page, w.baseUrl, BOSS, w.password, `/orgs/${w.org.orgId}/devices`);
    await page.getByTestId('nav-org-settings').first().click();
    await page.getByTestId('org-time-zone').click();
    await page.keyboard.type('Asia/Shanghai');
    await page.keyboard.press('Enter');
    await poll(async () => (await w.h.services.organisations.view(w.org.orgId)).time_zone).toBe('Asia/Shanghai');
    await shot(page, 'org-settings-time-zone-en');

    await page.getByTestId('nav-org-campaigns').first().click();
    await page.getByTestId('campaign-list').waitFor();
    await page.getByTestId('campaign-tz').filter({ hasText: 'Asia/Shanghai' }).waitFor();
    expect(await page.getByTestId('campaign-tz-settings').getAttribute('href')).toBe(`/orgs/${w.org.orgId}/settings`);

    await page.getByTestId('campaign-new').click();
    await page.getByTestId('campaign-name').fill('Sales locks 2.6.0');
    await pick(page, 'campaign-model', /Smart Door Lock S2/);
    await pick(page, 'campaign-image', /2\.6\.0/);
    await page.getByTestId('campaign-department').click();
    await page
      .locator('.ant-select-tree-node-content-wrapper', { hasText: /^Sales$/ })
      .first()
      .click();
    const times = page.locator('.ant-picker-range input');
    await times.nth(0).click();
    await times.nth(0).fill('02:00');
    await times.nth(0).press('Enter');
    await times.nth(1).fill('04:00');
    await times.nth(1).press('Enter');
    await page.getByTestId('campaign-name').click();
    await shot(page, 'org-campaign-new-en');
    await page.getByTestId('campaign-window-days').scrollIntoViewIfNeeded();
    await shot(page, 'org-campaign-new-window-en');
    await page.getByTestId('campaign-start').click();
    await page.getByTestId('campaign-status').filter({ hasText: 'Running' }).waitFor();

    const [c] = await w.h.services.campaigns.listForOrg(SYSTEM_CLI, w.org.orgId);
    expect(c?.name).toBe('Sales locks 2.6.0');
    expect(c?.org_id).toBe(w.org.orgId);
    expect(c?.maintenance_window).toEqual({ start: '02:00', end: '04:00' });
    // Sales and Sales East: the two devices placed there, no other.
    const sns = (await w.h.services.campaigns.executions(SYSTEM_CLI, c!.id)).executions.map((e) => e.sn).sort();
    expect(sns).toEqual(['CON0001', 'CON0002']);
    expect(await page.getByTestId('campaign-maintenance').innerText()).toContain('02:00–04:00');
    await shot(page, 'org-campaign-en');

    for (const [lang, phone, path, name] of [
      ['zh', false, `/orgs/${w.org.orgId}/campaigns/${c!.id}`, 'org-campaign-zh'],
      ['zh', true, `/orgs/${w.org.orgId}/campaigns`, 'org-campaigns-zh-phone'],
      ['en', true, `/orgs/${w.org.orgId}/campaigns`, 'org-campaigns-en-phone'],
      ['zh', false, `/orgs/${w.org.orgId}/campaigns`, 'org-campaigns-zh'],
    ] as const) {
      const p = await cb.newPage({ lang, phone });
      await signIn(p, w.baseUrl, BOSS, w.password, path);
      if (path.endsWith('campaigns'))
        await p.getByTestId('campaign-list').locator('tr', { hasText: 'Sales locks 2.6.0' }).waitFor();
      else await p.getByTestId('campaign-maintenance').filter({ hasText: '02:00–04:00' }).waitFor();
      await shot(p, name);
      await p.close();
    }

    await page.getByTestId('campaign-cancel').click();
    await page.locator('.ant-popconfirm .ant-btn-primary').click();
    await page.getByTestId('campaign-status').filter({ hasText: 'Cancelled' }).waitFor();
  });

  it("shows the vendor's setting on the model page", async () => {
    const vendorId = (
      await w.h.deps.db.kysely
        .selectFrom('models')
        .select('vendor_id')
        .where('model_id', '=', w.models.pkLock!)
        .executeTakeFirstOrThrow()
    ).vendor_id;
    const page = await cb.newPage({ lang: 'en' });
    await signIn(page, w.baseUrl, 'root', 'correct horse battery', `/vendors/${vendorId}/models/${w.models.pkLock}`);
    const sw = page.getByTestId('model-org-campaigns');
    await sw.waitFor();
    expect(await sw.getAttribute('aria-checked')).toBe('true');
    await shot(page, 'vendor-model-org-campaigns-en');
    await page.close();
  });
});
