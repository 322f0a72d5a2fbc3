import { sql } from 'kysely';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConsoleWorld, startConsoleWorld } from '../src/features/console/console.fixture.js';
import { ALL_MODELS, scopesOf } from '../src/features/fleet-stats/fleet-stats.service.js';
import { SYSTEM_CLI } from '../src/shared/principal.js';
import { browserSkipReason, type ConsoleBrowser, launchConsoleBrowser, signIn } from './support/browser.js';

/**
 * The fleet dashboard in a real browser (issue 14 item 6): a vendor engineer and an organisation's
 * super admin see the four charts with a month of rollups, at desktop and phone sizes, in en and zh.
 */
if (browserSkipReason) console.warn(`[bindery tests] console browser tests skipped: ${browserSkipReason}`);

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

describe.skipIf(!!browserSkipReason)('fleet dashboard in chromium', () => {
  let w: ConsoleWorld;
  let cb: ConsoleBrowser;
  let vendorId: string;
  const ENGINEER = 'dash.engineer';
  const db = () => w.h.deps.db.kysely;
  const errors: string[] = [];

  beforeAll(async () => {
    cb = await launchConsoleBrowser();
    w = await startConsoleWorld();
    const s = w.h.services;
    const model = w.models.pkLock!;
    vendorId = (await db().selectFrom('models').select('vendor_id').where('model_id', '=', model).executeTakeFirstOrThrow())
      .vendor_id;
    const u = await s.accounts.createUser('test', { username: ENGINEER, password: w.password });
    const { token } = await s.vendorPeople.createInvite(SYSTEM_CLI, vendorId, { role: 'engineer' });
    await s.vendorPeople.acceptInvite(token, { kind: 'user', userId: u.id, isOperator: false });

    // A month of history for the vendor and Acme: binds, unbinds, errors by code, hourly online counts.
    const scopes = scopesOf(vendorId, 'org', w.org.orgId);
    const now = Date.now();
    for (let d = 29; d >= 0; d--) {
      const at = now - d * DAY;
      await s.fleetStats.bump(scopes, model, at, { binds: 20 + ((d * 7) % 13), unbinds: (d * 3) % 5 });
      for (let i = 0; i < (d * 5) % 7; i++) await s.fleetStats.recordError(scopes, model, at, 600010 + (i % 3) * 10);
    }
    const points = [];
    for (let hr = 7 * 24; hr >= 1; hr--) {
      const at = Math.floor((now - hr * HOUR) / HOUR) * HOUR;
      const online = 600 + Math.round(250 * Math.sin((hr / 24) * 2 * Math.PI));
      // The model's row and the all-models row, as the sampler writes them.
      for (const scope of scopes) {
        for (const model_id of [model, ALL_MODELS]) points.push({ scope, at, model_id, devices: 1000, online });
      }
    }
    await db().insertInto('fleet_online').values(points).execute();
    // Charts longer than 14 days read each day's highest hourly point (fleet_online_daily), which the
    // sampler folds as it writes; these hours were written here, so fold them as migration 027 does.
    await sql`INSERT INTO fleet_online_daily (scope, model_id, day, devices, online)
      SELECT scope, model_id, CAST(at / 86400000 AS integer), max(devices), max(online)
      FROM fleet_online GROUP BY scope, model_id, CAST(at / 86400000 AS integer)`.execute(db());
    for (const [sn, v, on] of [
      ['CON0001', '2.4.0', 1],
      ['CON0002', '2.4.0', 1],
      ['CON0003', '2.3.1', 0],
      ['CON0004', '2.3.1', 1],
      ['CON0005', '2.2.0', 0],
    ] as const) {
      await db().updateTable('devices').set({ firmware_version: v, online: on }).where('sn', '=', sn).execute();
      await s.binding.bind(SYSTEM_CLI, sn, { type: 'org', id: w.org.orgId });
    }
    await s.fleetStats.sample();
  }, 180_000);
  afterAll(async () => {
    await cb?.close();
    await w?.close();
  });

  /** Every chart drew on its canvas, and no key went untranslated. */
  const expectCharts = async (page: Page) => {
    const dash = page.getByTestId('fleet-dashboard');
    for (const id of ['chart-online', 'chart-versions', 'chart-binds', 'chart-errors']) {
      await dash.getByTestId(id).locator('canvas').first().waitFor();
    }
    expect(await dash.innerText()).not.toMatch(/fleet\.\w/);
  };
  const watch = (page: Page) => page.on('pageerror', (e) => errors.push(e.message));

  it('shows a vendor engineer the fleet, by model and period, in en and zh', { timeout: 180_000 }, async () => {
    const page = await cb.newPage({ lang: 'en' });
    watch(page);
    await signIn(page, w.baseUrl, ENGINEER, w.password, `/vendors/${vendorId}/dashboard`);
    await expectCharts(page);
    expect(await page.getByTestId('fleet-sampled').innerText()).toContain('as of');
    // Let the charts' entry animation finish before the picture.
    await page.waitForTimeout(1500);
    await cb.shot(page, 'fleet-vendor-en');

    // Seven days: the online chart turns hourly; the request carries the period.
    const asked = page.waitForRequest((r) => r.url().includes('/fleet-stats') && r.url().includes('days=7'));
    await page.getByTestId('fleet-days').click();
    await page.locator('.ant-select-item-option', { hasText: 'Last 7 days' }).click();
    await asked;
    await expectCharts(page);

    const zh = await cb.newPage({ lang: 'zh' });
    watch(zh);
    await signIn(zh, w.baseUrl, ENGINEER, w.password, `/vendors/${vendorId}/dashboard`);
    await expectCharts(zh);
    expect(await zh.getByTestId('fleet-dashboard').innerText()).toContain('固件版本分布');
    await zh.waitForTimeout(1500);
    await cb.shot(zh, 'fleet-vendor-zh');

    const phone = await cb.newPage({ lang: 'zh', phone: true });
    watch(phone);
    await signIn(phone, w.baseUrl, ENGINEER, w.password, `/vendors/${vendorId}/dashboard`);
    await expectCharts(phone);
    await phone.waitForTimeout(1500);
    await cb.shot(phone, 'fleet-vendor-zh-phone');
  });

  it("shows an organisation's super admin its devices; a device admin has no dashboard", { timeout: 180_000 }, async () => {
    const page = await cb.newPage({ lang: 'en' });
    watch(page);
    await signIn(page, w.baseUrl, 'boss.con', w.password, `/orgs/${w.org.orgId}/dashboard`);
    await expectCharts(page);
    await page.waitForTimeout(1500);
    await cb.shot(page, 'fleet-org-en');

    const phone = await cb.newPage({ lang: 'en', phone: true });
    watch(phone);
    await signIn(phone, w.baseUrl, 'boss.con', w.password, `/orgs/${w.org.orgId}/dashboard`);
    await expectCharts(phone);
    await phone.waitForTimeout(1500);
    await cb.shot(phone, 'fleet-org-en-phone');

    // The same page in Chinese: every card titled in zh, the sampled note in zh, no English card title left.
    for (const [name, phoneSize] of [
      ['fleet-org-zh', false],
      ['fleet-org-zh-phone', true],
    ] as const) {
      const zh = await cb.newPage({ lang: 'zh', phone: phoneSize });
      watch(zh);
      await signIn(zh, w.baseUrl, 'boss.con', w.password, `/orgs/${w.org.orgId}/dashboard`);
      await expectCharts(zh);
      const text = await zh.getByTestId('fleet-dashboard').innerText();
      for (const title of ['在线设备', '固件版本分布', '每日绑定与解绑', '每日错误上报（按错误码）'])
        expect(text).toContain(title);
      expect(await zh.getByTestId('fleet-sampled').innerText()).toContain('日期按 UTC 计');
      expect(text).not.toMatch(/Devices online|Firmware versions|Binds and unbinds|Error reports/);
      await zh.waitForTimeout(1500);
      await cb.shot(zh, name);
    }

    const admin = await cb.newPage({ lang: 'en' });
    await signIn(admin, w.baseUrl, 'salesadmin.con', w.password, `/orgs/${w.org.orgId}/dashboard`);
    await admin.getByTestId('fleet-dashboard').locator('.ant-alert-error').waitFor();
    expect(errors).toEqual([]);
  });
});
