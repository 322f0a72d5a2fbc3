import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConsoleWorld, startConsoleWorld } from '../src/features/console/console.fixture.js';
import { SYSTEM_CLI } from '../src/shared/principal.js';
import { browserSkipReason, type ConsoleBrowser, launchConsoleBrowser, signIn } from './support/browser.js';

/**
 * Issue 12 (device page) and issue 15 item 3 (third-party entry) in chromium: a device page refreshes
 * itself when the device changes; "visible to" shows the device read-only to people in its range; a
 * bound device scanned by its organisation's admin opens its page; a bind started by an application
 * returns to its registered origin with the outcome, and an unregistered origin is refused.
 */
if (browserSkipReason) console.warn(`[bindery tests] console browser tests skipped: ${browserSkipReason}`);

describe.skipIf(!!browserSkipReason)('device page and third-party entry in chromium', () => {
  let w: ConsoleWorld;
  let cb: ConsoleBrowser;
  const login = (page: Page, username: string, next: string) => signIn(page, w.baseUrl, username, w.password, next);
  const bindToOrg = async (sn: string, dept: 'salesEast' | 'eng') =>
    w.h.services.binding.bind(
      SYSTEM_CLI,
      sn,
      { type: 'org', id: w.org.orgId },
      { visibleTo: { departments: [w.org.dept[dept]] } },
    );
  const emit = (type: 'device.online' | 'device.offline', sn: string) =>
    w.h.services.events.emit({ type, via: 'wss', sn, modelId: w.models.pkLock!, vendorId: 'v', at: Date.now() });

  beforeAll(async () => {
    cb = await launchConsoleBrowser();
    w = await startConsoleWorld();
    await bindToOrg('CON0004', 'salesEast');
    await bindToOrg('CON0005', 'eng');
  }, 120_000);
  afterAll(async () => {
    await cb?.close();
    await w?.close();
  });

  it('refreshes a device page when the device comes online, without a reload', async () => {
    const page = await cb.newPage();
    await login(page, 'boss.con', '/devices/CON0004');
    await page.getByTestId('device-status').getByText('Offline').waitFor();
    await emit('device.online', 'CON0004');
    await w.h.deps.db.kysely.updateTable('devices').set({ online: 1 }).where('sn', '=', 'CON0004').execute();
    await emit('device.online', 'CON0004');
    await page.getByTestId('device-status').getByText('Online').waitFor();
    await cb.shot(page, 'device-live-online');
  });

  it('shows a device to a member inside its range, read-only, and not one outside it', async () => {
    const page = await cb.newPage({ phone: true, lang: 'zh' });
    await login(page, 'alice.con', '/devices');
    // Alice (Sales East) sees CON0004 (visible to Sales East), marked view only; not CON0005 (Engineering).
    await page.locator('[data-sn=CON0004]').getByTestId('view-only').waitFor();
    expect(await page.locator('[data-sn=CON0005]').count()).toBe(0);
    await cb.shot(page, 'devices-view-only-zh-phone');
    await page.locator('[data-sn=CON0004]').click();
    await page.getByTestId('read-only').waitFor();
    expect(await page.getByTestId('unbind-confirm').count()).toBe(0);
    expect(await page.locator('input[name=remark_name]').count()).toBe(0);
    await cb.shot(page, 'device-read-only-zh-phone');
  });

  it('opens the device page when an admin of its organisation scans its label', async () => {
    const page = await cb.newPage({ phone: true });
    const hw = w.devices.get('CON0004')!.hwCode;
    await login(page, 'boss.con', `/connect/hardware?hw_code=${hw}`);
    await page.waitForURL(/\/devices\/CON0004\?scanned=bound/);
    await page.getByTestId('device-name').waitFor();
  });

  it('returns to the application that started the bind, only to its registered origin', async () => {
    await w.h.services.organisations.createApplication(SYSTEM_CLI, w.org.orgId, { appKey: 'crm.visits', name: 'Visitor CRM' });
    // The super admin registers the application's return address on the settings page.
    const admin = await cb.newPage();
    await login(admin, 'boss.con', `/orgs/${w.org.orgId}/settings`);
    await admin.getByTestId('app-origins-crm.visits').click();
    await admin.getByTestId('app-origins-input').fill(`${w.baseUrl}/any/path`);
    await admin.getByTestId('app-origins-save').click();
    await admin.getByText('Return addresses saved').waitFor();
    const back = `${w.baseUrl}/favicon.svg?visit=42`;
    const page = await cb.newPage();
    await login(page, 'boss.con', `/hw/addDevice?app=crm.visits&redirect_uri=${encodeURIComponent(back)}`);
    const form = page.getByTestId('sn-form');
    await form.locator('input[name=sn]').fill('CON0006');
    await form.locator('select[name=owner]').selectOption({ label: 'Acme con' });
    await form.locator('button[type=submit]').click();
    await page.waitForURL((u) => u.pathname === '/favicon.svg');
    const u = new URL(page.url());
    expect([u.searchParams.get('visit'), u.searchParams.get('bindery_result'), u.searchParams.get('bindery_sn')]).toEqual([
      '42',
      'bound',
      'CON0006',
    ]);

    // An origin the application never registered: the person stays, told why.
    const evil = await cb.newPage();
    await login(
      evil,
      'boss.con',
      `/devices/CON0004?app=crm.visits&redirect_uri=${encodeURIComponent('https://evil.example/steal')}`,
    );
    await evil.getByTestId('return-to-app').click();
    await evil.getByTestId('return-refused').waitFor();
    expect(new URL(evil.url()).origin).toBe(w.baseUrl);
    await cb.shot(evil, 'third-party-refused');
  });
});
