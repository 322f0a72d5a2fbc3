import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConsoleWorld, startConsoleWorld } from '../src/features/console/console.fixture.js';
import { SYSTEM_CLI } from '../src/shared/principal.js';
import { browserSkipReason, type ConsoleBrowser, launchConsoleBrowser, signIn } from './support/browser.js';

/**
 * Campaign targets in a real browser (issue 14 item 1): a vendor engineer targets an owner
 * organisation's department from the form, and the campaign's executions are that department's
 * devices only; a device admin starts a campaign from the organisation's menu and it, and its
 * device list, hold only the devices in their range (en, zh).
 */
if (browserSkipReason) console.warn(`[bindery tests] console browser tests skipped: ${browserSkipReason}`);

describe.skipIf(!!browserSkipReason)('campaign targets in chromium', { timeout: 180_000 }, () => {
  let w: ConsoleWorld;
  let cb: ConsoleBrowser;
  let vendorId: string;
  const ENGINEER = 'targets.engineer';
  const SALES_ADMIN = 'salesadmin.con';
  const db = () => w.h.deps.db.kysely;
  const poll = <T>(fn: () => T | Promise<T>) => expect.poll(fn, { timeout: 20_000 });
  const shot = async (page: Page, name: string) => {
    await poll(() => page.locator('.ant-spin-blur, .ant-spin-spinning').count()).toBe(0);
    await page.waitForTimeout(600);
    await cb.shot(page, name);
  };
  const pick = async (page: Page, testId: string, text: RegExp) => {
    await page.getByTestId(testId).click();
    await page
      .locator('.ant-select-dropdown:not(.ant-select-dropdown-hidden) .ant-select-item-option')
      .filter({ hasText: text })
      .first()
      .click();
  };
  const pickDepartment = async (page: Page, name: RegExp) => {
    await page.getByTestId('campaign-department').click();
    await page.locator('.ant-select-tree-node-content-wrapper', { hasText: name }).first().click();
  };
  const executionSns = async (id: string) =>
    (await w.h.services.campaigns.executions(SYSTEM_CLI, id)).executions.map((e) => e.sn).sort();

  beforeAll(async () => {
    cb = await launchConsoleBrowser();
    w = await startConsoleWorld();
    const s = w.h.services;
    vendorId = (
      await db().selectFrom('models').select('vendor_id').where('model_id', '=', w.models.pkLock!).executeTakeFirstOrThrow()
    ).vendor_id;
    const u = await s.accounts.createUser('test', { username: ENGINEER, password: w.password });
    const { token } = await s.vendorPeople.createInvite(SYSTEM_CLI, vendorId, { role: 'engineer' });
    await s.vendorPeople.acceptInvite(token, { kind: 'user', userId: u.id, isOperator: false });
    await s.models.update(SYSTEM_CLI, w.models.pkLock!, { org_campaigns_allowed: true });
    // Acme: Sales East, Sales, Engineering, the root; the open organisation: one device.
    const place: Array<[string, string, string]> = [
      ['CON0001', w.org.orgId, w.org.dept.salesEast],
      ['CON0002', w.org.orgId, w.org.dept.sales],
      ['CON0003', w.org.orgId, w.org.dept.eng],
      ['CON0004', w.org.orgId, w.org.dept.root],
      ['CON0005', w.openOrg.orgId, w.openOrg.dept.sales],
    ];
    for (const [sn, orgId, dept] of place) {
      await s.binding.bind(SYSTEM_CLI, sn, { type: 'org', id: orgId }, { visibleTo: { departments: [dept] } });
    }
    await db()
      .updateTable('devices')
      .set({ firmware_version: '2.4.0', online: 1 })
      .where('model_id', '=', w.models.pkLock!)
      .execute();
    await s.firmware.publishUrl(SYSTEM_CLI, w.models.pkLock!, {
      version: '2.6.0',
      download_url: 'https://firmware.example/lock-2.6.0.bin',
      md5sum: 'fedcba9876543210fedcba9876543210',
      size: 1_048_576,
      make_current: false,
    });
  }, 120_000);

  afterAll(async () => {
    await cb?.close();
    await w?.close();
  });

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
