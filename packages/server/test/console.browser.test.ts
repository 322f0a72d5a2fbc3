import { dynamicBindUrl, signBindQr, staticBindUrl } from '@bindery/protocol';
import type { Page } from 'playwright-core';
import QRCode from 'qrcode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifCodeFor } from '../src/features/binding/scan.js';
import { CODE_SN, type ConsoleWorld, startConsoleWorld } from '../src/features/console/console.fixture.js';
import { browserSkipReason, type ConsoleBrowser, launchConsoleBrowser, signIn } from './support/browser.js';

/**
 * The console in a real browser (Debian chromium through playwright-core) against the real app on
 * SQLite: log in, bind by SN, by a static label and by a fresh dynamic QR, the "device bound"
 * notification arriving live, the device page and unbinding, a member refused where the
 * organisation has no member binding, and the phone-sized scan page with a photo of a code.
 * Screenshots go to CONSOLE_SCREENSHOTS_DIR (docs/img to refresh the ones in the docs).
 */
if (browserSkipReason) console.warn(`[bindery tests] console browser tests skipped: ${browserSkipReason}`);

describe.skipIf(!!browserSkipReason)('web console in chromium', () => {
  let w: ConsoleWorld;
  let cb: ConsoleBrowser;
  const shot = (page: Page, name: string) => cb.shot(page, name);
  /** A fresh browser profile-like context; phone adds the 390×844 touch viewport. */
  const newPage = (opts: { phone?: boolean; lang?: 'en' | 'zh' } = {}) => cb.newPage(opts);

  const login = (page: Page, username: string, next = '/devices') => signIn(page, w.baseUrl, username, w.password, next);

  const apiState = async (sn: string) =>
    (await w.h.deps.db.kysely
      .selectFrom('devices')
      .select(['owner_type', 'owner_id', 'state'])
      .where('sn', '=', sn)
      .executeTakeFirst()) as { owner_type: string | null; owner_id: string | null; state: string } | undefined;

  beforeAll(async () => {
    cb = await launchConsoleBrowser();
    w = await startConsoleWorld();
  }, 120_000);

  afterAll(async () => {
    await cb?.close();
    await w?.close();
  });

  it('logs in, says why a wrong password is refused, and logs out', async () => {
    const page = await newPage();
    await page.goto(`${w.baseUrl}/`);
    await page.waitForURL(/\/login\?next=/);
    await page.locator('input[name=username]').fill('boss.con');
    await page.locator('input[name=password]').fill('not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').getByText('The credentials are invalid').waitFor();
    await page.locator('input[name=password]').fill(w.password);
    await shot(page, 'login');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'My devices' }).waitFor();
    await page.getByText('No devices yet.').waitFor();
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL(/\/login/);
    // The session is gone on the server too: the console's pages send the visitor to log in.
    await page.goto(`${w.baseUrl}/devices`);
    await page.waitForURL(/\/login\?next=%2Fdevices/);
  });

  it('binds by SN into the organisation, asking for the verification code when the model wants one', async () => {
    const page = await newPage();
    await login(page, 'boss.con', '/scan');
    const form = page.getByTestId('sn-form');
    await form.locator('input[name=sn]').fill('CON0001');
    await form.locator('select[name=owner]').selectOption({ label: 'Acme con' });
    await form.locator('input[name=remark_name]').fill('Front door');
    await form.getByRole('button', { name: 'Confirm and bind' }).click();
    await page.waitForURL(/\/devices\/CON0001/);
    await page.getByTestId('device-name').getByText('Front door').waitFor();
    expect(await apiState('CON0001')).toMatchObject({ owner_type: 'org', owner_id: w.org.orgId });

    // A typo: the server says there is no such SN, in words, and nothing is bound.
    await page.goto(`${w.baseUrl}/scan`);
    await form.locator('input[name=sn]').fill('CON000X');
    await form.getByRole('button', { name: 'Confirm and bind' }).click();
    await page
      .getByTestId('bind-error')
      .getByText(/CON000X/)
      .waitFor();

    // The meeting-room model requires a code: the page asks for it (where to find it, not an error);
    // a wrong code is refused, the right one binds.
    await form.locator('input[name=sn]').fill(CODE_SN);
    await form.locator('select[name=owner]').selectOption({ label: 'Acme con' });
    await form.getByRole('button', { name: 'Confirm and bind' }).click();
    await page
      .getByTestId('verif-needed')
      .getByText(/printed on the device's label/)
      .waitFor();
    expect(await page.getByTestId('bind-error').count()).toBe(0);
    await shot(page, 'add-device-verif');
    const right = verifCodeFor(w.devices.get(CODE_SN)!.secretNo, CODE_SN);
    const wrong = right === '000000' ? '111111' : '000000';
    await form.locator('input[name=verif_code]').fill(wrong);
    await form.getByRole('button', { name: 'Confirm and bind' }).click();
    await page
      .getByTestId('bind-error')
      .getByText(/verification code/i)
      .waitFor();
    expect((await apiState(CODE_SN))?.owner_id ?? null).toBeNull();
    await form.locator('input[name=verif_code]').fill(right);
    await form.getByRole('button', { name: 'Confirm and bind' }).click();
    await page.waitForURL(new RegExp(`/devices/${CODE_SN}`));
    expect(await apiState(CODE_SN)).toMatchObject({ owner_type: 'org', owner_id: w.org.orgId });
  });

  it('binds by opening a static label URL: the confirmation page shows model, SN and default name', async () => {
    const page = await newPage();
    await login(page, 'boss.con');
    const url = staticBindUrl(w.baseUrl, w.devices.get('CON0002')!.hwCode);
    await page.goto(url);
    const confirm = page.getByTestId('bind-confirm');
    await confirm.waitFor();
    expect(await page.getByTestId('bind-model').textContent()).toBe('Smart Door Lock S2');
    expect(await page.getByTestId('bind-sn').textContent()).toBe('CON0002');
    await confirm.getByText('Smart Door Lock S2 CON0002').waitFor();
    await page.getByTestId('owner-org').locator('input').check();
    // The visibility range: a super admin may pick any department.
    await confirm.getByRole('checkbox', { name: 'Sales East' }).check();
    await confirm.locator('input[name=remark_name]').fill('Sales East entrance');
    await shot(page, 'bind');
    await confirm.getByRole('button', { name: 'Confirm and bind' }).click();
    await page.getByTestId('bind-done').getByText('Bound to Acme con.').waitFor();
    const vis = await w.h.deps.db.kysely
      .selectFrom('device_visibility')
      .innerJoin('devices', 'devices.id', 'device_visibility.device_id')
      .select(['device_visibility.department_id'])
      .where('devices.sn', '=', 'CON0002')
      .execute();
    expect(vis.map((v) => v.department_id)).toEqual([w.org.dept.salesEast]);
  });

  it('binds by opening a fresh dynamic QR URL into the personal space; the same code is then refused as used', async () => {
    const page = await newPage();
    await login(page, 'carol.con');
    const sn = 'CON0004';
    const ts = String(Math.floor(Date.now() / 1000));
    const nonce = '4242';
    const url = dynamicBindUrl(w.baseUrl, {
      sn,
      timestamp: ts,
      nonce,
      signature: signBindQr({ sn, timestamp: ts, nonce }, w.devices.get(sn)!.secretNo),
    });
    await page.goto(url);
    await page.getByTestId('bind-confirm').waitFor();
    expect(await page.getByTestId('bind-sn').textContent()).toBe(sn);
    await page.getByTestId('owner-user').locator('input').check();
    await page.getByRole('button', { name: 'Confirm and bind' }).click();
    await page.getByTestId('bind-done').getByText('Bound to My personal space.').waitFor();
    const state = await apiState(sn);
    expect(state?.owner_type).toBe('user');
    expect(state?.owner_id).toBe(w.org.users.carol);
    // Opening the same code again names the reason.
    await page.goto(url);
    await page.getByTestId('code-problem').waitFor();
    expect(await page.getByTestId('code-problem').getAttribute('data-validity')).toMatch(/used|bound/);

    // A forged code: the page says so and names no device.
    const forged = dynamicBindUrl(w.baseUrl, { sn: 'CON0005', timestamp: ts, nonce, signature: 'f'.repeat(40) });
    await page.goto(forged);
    await page.getByTestId('code-problem').waitFor();
    expect(await page.getByTestId('code-problem').getAttribute('data-validity')).toBe('forged');
    expect(await page.getByTestId('code-problem').textContent()).not.toContain('CON0005');
  });

  it('shows the "device bound" notification arriving live, with the unread count, and marks it read', async () => {
    // The super admin's inbox is open; a device admin binds in another browser.
    const inbox = await newPage();
    await login(inbox, 'boss.con', '/notifications');
    await inbox.getByRole('heading', { name: 'Notifications' }).waitFor();
    const unreadNow = async () => Number((await inbox.getByTestId('unread-text').textContent())?.match(/\d+/)?.[0]);
    // The count is the server's once the stream has sent its first `unread` event.
    await inbox.locator('[data-testid=unread-text][data-live=true]').waitFor();
    const unreadBefore = await unreadNow();
    const other = await newPage();
    await login(other, 'engadmin.con', '/scan');
    const form = other.getByTestId('sn-form');
    await form.locator('input[name=sn]').fill('CON0003');
    await form.locator('select[name=owner]').selectOption({ label: 'Acme con' });
    await form.getByRole('button', { name: 'Confirm and bind' }).click();
    await other.waitForURL(/\/devices\/CON0003/);

    const item = inbox.locator('[data-testid=notifications] li', { hasText: 'CON0003' });
    await item.waitFor();
    expect(await item.textContent()).toContain('engadmin bound Smart Door Lock S2 CON0003 to Acme con.');
    await inbox
      .getByTestId('unread-text')
      .getByText(`${unreadBefore + 1} unread`)
      .waitFor();
    await inbox
      .getByTestId('unread-count')
      .getByText(String(unreadBefore + 1))
      .waitFor();
    await shot(inbox, 'notifications');
    await item.getByRole('button', { name: 'Mark read' }).click();
    await inbox.getByTestId('unread-text').getByText(`${unreadBefore} unread`).waitFor();
    const boss = { kind: 'user' as const, userId: w.org.users.boss, isOperator: false };
    expect(await w.h.services.notifications.unreadCount(boss)).toBe(unreadBefore);
    // Following the link opens the device page.
    await item.getByRole('link', { name: 'Open' }).click();
    await inbox.waitForURL(/\/devices\/CON0003$/);
    await inbox.getByTestId('device-name').waitFor();
  });

  it('shows the device page with its facts and error reports, renames, and unbinds', async () => {
    const page = await newPage();
    await login(page, 'boss.con', '/devices/CON0003');
    await page.getByTestId('device-name').waitFor();
    await page.getByTestId('error-reports').getByText('door motor stalled').waitFor();
    await page.getByText('latest 2.4.0').waitFor();
    expect(await page.getByTestId('bound-by').textContent()).toContain('engadmin');
    for (const action of ['Upgrade firmware', 'Reboot', 'Fetch logs', 'Unbind']) {
      await page.getByRole('button', { name: action, exact: true }).waitFor();
    }
    await page.locator('input[name=remark_name]').fill('Lobby lock');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByTestId('device-name').getByText('Lobby lock').waitFor();
    await page.getByRole('button', { name: 'Reboot' }).click();
    await page.getByTestId('action-msg').getByText('Sent to the device: Reboot.').waitFor();
    await shot(page, 'device');
    await page.getByRole('button', { name: 'Unbind', exact: true }).click();
    await page.getByTestId('unbind-confirm').click();
    // The page shows the device's new state at once: no longer this person's, no stale actions left.
    await page.getByTestId('device-unbound').getByText('Lobby lock is unbound.').waitFor();
    expect(await page.getByRole('button', { name: 'Reboot' }).count()).toBe(0);
    await shot(page, 'device-unbound');
    const s = await apiState('CON0003');
    expect(s?.owner_id ?? null).toBeNull();
    // The device page of an unbound device is no longer there for this person.
    await page.reload();
    await page.getByTestId('device-error').waitFor();
  });

  it('refuses a member of an organisation without member binding, in clear words', async () => {
    const page = await newPage();
    await login(page, 'alice.con');
    await page.goto(staticBindUrl(w.baseUrl, w.devices.get('CON0005')!.hwCode));
    await page.getByTestId('bind-confirm').waitFor();
    const org = page.getByTestId('owner-org');
    expect(await org.locator('input').isDisabled()).toBe(true);
    const reason = await org.getByTestId('owner-reason').textContent();
    expect(reason).toContain('does not let members bind devices');
    await shot(page, 'refused');
    // The typed-SN form says the same before trying, and the server refuses it too.
    await page.goto(`${w.baseUrl}/scan`);
    const form = page.getByTestId('sn-form');
    await form.locator('select[name=owner]').selectOption({ label: 'Acme con' });
    await page.getByTestId('owner-blocked').getByText('does not let members bind devices').waitFor();
    expect(await form.getByRole('button', { name: 'Confirm and bind' }).isDisabled()).toBe(true);
    const r = await page.evaluate(async () => {
      const csrf = decodeURIComponent(
        document.cookie
          .split('; ')
          .find((c) => c.startsWith('bindery_csrf='))!
          .slice(13),
      );
      const me = await (await fetch('/api/v1/session')).json();
      const res = await fetch('/api/v1/bind', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
        body: JSON.stringify({ sn: 'CON0005', owner: { type: 'org', id: me.organisations[0].id } }),
      });
      return { status: res.status, body: await res.json() };
    });
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('MEMBER_BINDING_OFF');
    expect((await apiState('CON0005'))?.owner_id ?? null).toBeNull();
  });

  it('scans on a phone: the 390×844 scan page reads a photo of a label and binds from it', async () => {
    const page = await newPage({ phone: true });
    await login(page, 'bob.con', '/scan');
    await page.getByRole('heading', { name: 'Add a device' }).waitFor();
    await page
      .getByRole('button', { name: 'Choose a photo of the code' })
      .or(page.getByText('Choose a photo of the code'))
      .first()
      .waitFor();
    // Nothing wider than the phone: no sideways scrolling.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await shot(page, 'scan-mobile');
    const label = staticBindUrl(w.baseUrl, w.devices.get('CON0006')!.hwCode);
    const png = await QRCode.toBuffer(label, { margin: 4, scale: 8 });
    await page.getByTestId('photo').setInputFiles({ name: 'label.png', mimeType: 'image/png', buffer: png });
    await page.waitForURL(/\/bind\?code=/);
    await page.getByTestId('bind-confirm').waitFor();
    expect(await page.getByTestId('bind-sn').textContent()).toBe('CON0006');
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await shot(page, 'bind-mobile');
    await page.getByTestId('owner-user').locator('input').check();
    await page.getByRole('button', { name: 'Confirm and bind' }).click();
    await page.getByTestId('bind-done').waitFor();
    expect((await apiState('CON0006'))?.owner_id).toBe(w.org.users.bob);
  });

  it('switches to Chinese, remembers it, and shows the organisation devices, search and members', async () => {
    const page = await newPage();
    await login(page, 'boss.con', `/orgs/${w.org.orgId}`);
    // The organisation's devices page (issue 12: pages/org/devices.tsx).
    const search = page.getByTestId('devices-search').locator('input');
    const rows = '[data-testid^=device-row-]';
    await page.locator(rows).first().waitFor();
    await search.fill('Front');
    await search.press('Enter');
    await page.waitForFunction((sel) => document.querySelectorAll(sel).length === 1, rows);
    expect(await page.locator(rows).getAttribute('data-testid')).toBe('device-row-CON0001');
    await search.fill('');
    await search.press('Enter');
    await page.waitForFunction((sel) => document.querySelectorAll(sel).length === 3, rows);
    await shot(page, 'org-devices');
    await page.getByTestId('lang').click();
    await page.getByTestId('nav-org-members').click();
    await page.getByTestId('members-table').getByText('设备管理员').first().waitFor();
    await page.reload();
    await page.getByTestId('members-table').getByText('超级管理员').first().waitFor();
    await shot(page, 'members-zh');
    await page.goto(`${w.baseUrl}/notifications`);
    await page.getByRole('heading', { name: '通知' }).waitFor();
    await page.locator('[data-testid=notifications] li', { hasText: '设备已绑定' }).first().waitFor();
    await shot(page, 'notifications-zh');
    await page.goto(`${w.baseUrl}/scan`);
    await page.getByRole('heading', { name: '添加设备' }).waitFor();
  });
});
