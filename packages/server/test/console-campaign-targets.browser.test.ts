import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConsoleWorld } from '../src/features/console/console.fixture.js';
import { SYSTEM_CLI } from '../src/shared/principal.js';
import { browserSkipReason, type ConsoleBrowser, signIn } from './support/browser.js';
import { type CampaignConsole, closeCampaignConsole, selectIn, startCampaignConsole } from './support/campaign-console.js';

/**
 * Campaign targets in a real browser (issue 14 item 1): a vendor engineer targets an owner
 * organisation's department from the form, and the campaign's executions are that department's
 * devices only; a device admin starts a campaign from the organisation's menu and it, and its
 * device list, hold only the devices in their range (en, zh).
 */
if (browserSkipReason) console.warn(`[bindery tests] console browser tests skipped: ${browserSkipReason}`);

describe.skipIf(!!browserSkipReason)('campaign targets in chromium', { timeout: 180_000 }, () => {
  let c: CampaignConsole;
  let w: ConsoleWorld;
  let cb: ConsoleBrowser;
  let vendorId: string;
  const ENGINEER = 'targets.engineer';
  const SALES_ADMIN = 'salesadmin.con';
  const shot = (page: Page, name: string) => c.shot(page, name);
  const pick = selectIn;
  const poll = <T>(fn: () => T | Promise<T>) => expect.poll(fn, { timeout: 20_000 });
  const pickDepartment = async (page: Page, name: RegExp) => {
    await page.getByTestId('campaign-department').click();
    await page.locator('.ant-select-tree-node-content-wrapper', { hasText: name }).first().click();
  };
  const executionSns = async (id: string) =>
    (await w.h.services.campaigns.executions(SYSTEM_CLI, id)).executions.map((e) => e.sn).sort();

  beforeAll(async () => {
    // Acme: Sales East, Sales, Engineering, the root; the open organisation: one device.
    c = await startCampaignConsole({
      from: '2.4.0',
      engineer: ENGINEER,
      orgCampaigns: true,
      place: (w) => [
        ['CON0001', w.org.orgId, w.org.dept.salesEast],
        ['CON0002', w.org.orgId, w.org.dept.sales],
        ['CON0003', w.org.orgId, w.org.dept.eng],
        ['CON0004', w.org.orgId, w.org.dept.root],
        ['CON0005', w.openOrg.orgId, w.openOrg.dept.sales],
      ],
    });
    ({ w, cb, vendorId } = c);
  }, 120_000);

  afterAll(() => closeCampaignConsole(c));

  it("a vendor engineer targets an owner organisation's department", async () => {
    for (const lang of ['zh', 'en'] as const) {
      const page = await cb.newPage({ lang });
      await signIn(page, w.baseUrl, ENGINEER, w.password, `/vendors/${vendorId}/campaigns`);
      await page.getByTestId('campaign-new').click();
      await page.getByTestId('campaign-name').fill('Acme sales locks');
      await pick(page, 'campaign-model', /Smart Door Lock S2/);
      await pick(page, 'campaign-image', /2\.6\.0/);
      // Only organisations owning the model's devices, with their counts.
      await page.getByTestId('campaign-org').click();
      const options = page.locator('.ant-select-dropdown:not(.ant-select-dropdown-hidden) .ant-select-item-option');
      await poll(() => options.allInnerTexts()).toEqual(
        lang === 'en' ? ['Acme con (4 devices)', 'Acme open (1 devices)'] : ['Acme con（4 台设备）', 'Acme open（1 台设备）'],
      );
      await options.filter({ hasText: 'Acme con' }).click();
      await pickDepartment(page, /^Sales$/);
      await page.getByTestId('campaign-name').click();
      await page.getByTestId('campaign-org').scrollIntoViewIfNeeded();
      await shot(page, `vendor-campaign-targets-${lang}`);
      if (lang === 'zh') {
        await page.close();
        continue;
      }
      await page.getByTestId('campaign-start').click();
      await page.getByTestId('campaign-status').filter({ hasText: 'Running' }).waitFor();
      const c = (await w.h.services.campaigns.list(SYSTEM_CLI, vendorId))[0]!;
      expect(c.name).toBe('Acme sales locks');
      expect(c.target).toEqual({ org_id: w.org.orgId, department_id: w.org.dept.sales });
      // Sales and Sales East: not Engineering, the root, nor the other organisation.
      expect(await executionSns(c.id)).toEqual(['CON0001', 'CON0002']);
      await w.h.services.campaigns.cancel(SYSTEM_CLI, c.id);
      await page.close();
    }
  });

  it('a device admin starts a campaign and sees only the devices in their range', async () => {
    // The super admin's campaign on Engineering: not the device admin's to see.
    const theirs = await w.h.services.campaigns.createForOrg(
      { kind: 'user', userId: w.org.users.boss, isOperator: false },
      w.org.orgId,
      {
        name: 'Engineering locks',
        model_id: w.models.pkLock!,
        firmware_id: (await w.h.services.campaigns.orgOptions(SYSTEM_CLI, w.org.orgId))[0]!.firmware.find(
          (f) => f.version === '2.6.0',
        )!.id,
        target: { department_id: w.org.dept.eng },
        stages: { canary_count: 1, rate_per_minute: 10, factor: 2, stage_size: 10 },
        thresholds: { min_executions: 10, failure_pct: 10, timeout_pct: 20, did_not_come_back_pct: 5 },
      },
    );
    const page = await cb.newPage({ lang: 'en' });
    await signIn(page, w.baseUrl, SALES_ADMIN, w.password, `/orgs/${w.org.orgId}/devices`);
    await page.getByTestId('nav-org-campaigns').first().click();
    await page.getByTestId('campaign-list').waitFor();
    expect(await page.getByTestId('campaign-list').innerText()).not.toContain('Engineering locks');
    // The zone is shown; setting it is the super admin's (settings page).
    await page.getByTestId('campaign-tz').waitFor();
    expect(await page.getByTestId('campaign-tz-settings').count()).toBe(0);
    await page.getByTestId('campaign-new').click();
    await page.getByTestId('campaign-name').fill('My sales locks');
    await pick(page, 'campaign-model', /Smart Door Lock S2 — .* \(2 devices\)/);
    await pick(page, 'campaign-image', /2\.6\.0/);
    await page.getByTestId('campaign-name').click();
    await shot(page, 'org-campaign-device-admin-new-en');
    await page.getByTestId('campaign-start').click();
    await page.getByTestId('campaign-status').filter({ hasText: 'Running' }).waitFor();
    const mine = (await w.h.services.campaigns.listForOrg(SYSTEM_CLI, w.org.orgId)).find((c) => c.name === 'My sales locks')!;
    expect(await executionSns(mine.id)).toEqual(['CON0001', 'CON0002']);
    const rows = page.getByTestId('campaign-executions').locator('tbody tr.ant-table-row');
    await poll(() => rows.count()).toBe(2);
    expect((await rows.allInnerTexts()).map((t) => t.split(/\s/)[0]).sort()).toEqual(['CON0001', 'CON0002']);
    await shot(page, 'org-campaign-device-admin-en');

    // Their campaign's page in zh; the super admin's campaign is not theirs to open.
    const zh = await cb.newPage({ lang: 'zh' });
    await signIn(zh, w.baseUrl, SALES_ADMIN, w.password, `/orgs/${w.org.orgId}/campaigns`);
    await zh.getByTestId('campaign-list').locator('tr', { hasText: 'My sales locks' }).waitFor();
    await shot(zh, 'org-campaigns-device-admin-zh');
    await zh.goto(`${w.baseUrl}/orgs/${w.org.orgId}/campaigns/${theirs.id}`);
    await zh.locator('.ant-alert-error', { hasText: '没有这个固件升级活动' }).waitFor();
    await zh.close();

    await page.getByTestId('campaign-cancel').click();
    await page.locator('.ant-popconfirm .ant-btn-primary').click();
    await page.getByTestId('campaign-status').filter({ hasText: 'Cancelled' }).waitFor();
    await w.h.services.campaigns.cancel(SYSTEM_CLI, theirs.id);
    await page.close();
  });
});
