import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConsoleWorld, startConsoleWorld } from '../src/features/console/console.fixture.js';
import { SYSTEM_CLI } from '../src/shared/principal.js';
import { browserSkipReason, type ConsoleBrowser, launchConsoleBrowser, signIn } from './support/browser.js';
import { inviteVendorPerson, pickOption } from './support/vendor-console.js';

/**
 * Vendor people in a real browser (issue 13, item 1): a vendor admin invites an engineer and a
 * production worker from the people page (each link shown once); each joins in a fresh browser and
 * sees only their role's menu; the admin sees them with their roles. en and zh, desktop and phone,
 * to CONSOLE_SCREENSHOTS_DIR.
 */
if (browserSkipReason) console.warn(`[bindery tests] console browser tests skipped: ${browserSkipReason}`);

const ENGINEER_MENU = ['nav-v-models', 'nav-v-devices', 'nav-v-firmware', 'nav-v-integrations'];
const PRODUCTION_MENU = ['nav-v-models', 'nav-v-devices', 'nav-v-batches', 'nav-v-relations', 'nav-v-pairing'];
const ALL_MENU = [
  'nav-v-models',
  'nav-v-devices',
  'nav-v-batches',
  'nav-v-relations',
  'nav-v-pairing',
  'nav-v-firmware',
  'nav-v-integrations',
  'nav-v-people',
];

describe.skipIf(!!browserSkipReason)('vendor people in chromium', () => {
  let w: ConsoleWorld;
  let cb: ConsoleBrowser;
  let vendorId: string;

  beforeAll(async () => {
    cb = await launchConsoleBrowser();
    w = await startConsoleWorld();
    vendorId = (await w.h.services.vendors.create(SYSTEM_CLI, { name: 'Lombo Devices' })).id;
    // The operator made the vendor and invited its first admin, who joined with an existing account.
    const admin = await w.h.services.accounts.createUser(SYSTEM_CLI, {
      username: 'vadmin.con',
      password: w.password,
      displayName: 'Wang Admin',
    });
    const { token } = await w.h.services.vendorPeople.createInvite(SYSTEM_CLI, vendorId, { role: 'vendor_admin' });
    await w.h.services.vendorPeople.acceptInvite(token, { kind: 'user', userId: admin.id, isOperator: false });
  }, 120_000);

  afterAll(async () => {
    await cb?.close();
    await w?.close();
  });

  /** The admin's people page: invites `role` and returns the link's token (read from the link shown once). */
  async function invite(page: Page, role: 'engineer' | 'production', optionText: RegExp, shotName?: string): Promise<string> {
    const link = await inviteVendorPerson(page, optionText, shotName ? () => cb.shot(page, shotName) : undefined);
    const token = link.slice(link.indexOf('#') + 1);
    const row = await w.h.deps.db.kysely
      .selectFrom('vendor_invites')
      .select('role')
      .where('accepted_at', 'is', null)
      .where('revoked_at', 'is', null)
      .orderBy('created_at', 'desc')
      .executeTakeFirstOrThrow();
    expect(row.role).toBe(role);
    return token;
  }

  /**
   * A fresh browser joins with the token as the /invite page does (POST /api/v1/vendor-invites/accept
   * with a new account signs it in), then opens the vendor from the console's own menu.
   */
  async function join(token: string, username: string, lang: 'en' | 'zh', phone = false): Promise<Page> {
    const page = await cb.newPage({ lang, phone });
    await page.goto(`${w.baseUrl}/login`);
    const status = await page.evaluate(
      async ({ token, username, password }) => {
        const r = await fetch('/api/v1/vendor-invites/accept', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ token, username, password, display_name: username }),
        });
        return r.status;
      },
      { token, username, password: w.password },
    );
    expect(status).toBe(201);
    await page.goto(`${w.baseUrl}/devices`);
    await page.getByTestId(`nav-vendor-${vendorId}`).click();
    await page.waitForURL(new RegExp(`/vendors/${vendorId}/models`));
    return page;
  }

  async function menuOf(page: Page): Promise<string[]> {
    await page.getByTestId('nav-v-models').waitFor();
    const seen: string[] = [];
    for (const id of ALL_MENU) if ((await page.getByTestId(id).count()) > 0) seen.push(id);
    return seen;
  }

  for (const lang of ['en', 'zh'] as const) {
    it(`invites an engineer and a production worker, who each see only their menu (${lang})`, async () => {
      const admin = await cb.newPage({ lang });
      await signIn(admin, w.baseUrl, 'vadmin.con', w.password, `/vendors/${vendorId}/people`);
      await admin.getByTestId('vmembers-table').waitFor();
      await admin.getByTestId('vmember-vadmin.con').waitFor();
      expect(await menuOf(admin)).toEqual(ALL_MENU);
      const eng = await invite(admin, 'engineer', lang === 'en' ? /^Engineer$/ : /^工程师$/, `vendor-people-invite-${lang}`);
      const prod = await invite(admin, 'production', lang === 'en' ? /^Production$/ : /^生产人员$/);
      // Two pending invitations, each revocable; the links are not shown again.
      await expect.poll(() => admin.getByTestId('vinvites-table').locator('tbody tr.ant-table-row').count()).toBe(2);
      await cb.shot(admin, `vendor-people-pending-${lang}`);

      const engPage = await join(eng, `eng.${lang}`, lang);
      expect(await menuOf(engPage)).toEqual(ENGINEER_MENU);
      await cb.shot(engPage, `vendor-people-engineer-menu-${lang}`);
      // The people page is the admin's: the server refuses the engineer.
      await engPage.goto(`${w.baseUrl}/vendors/${vendorId}/people`);
      await engPage.locator('.ant-alert-error').first().waitFor();

      const prodPage = await join(prod, `prod.${lang}`, lang);
      expect(await menuOf(prodPage)).toEqual(PRODUCTION_MENU);
      await cb.shot(prodPage, `vendor-people-production-menu-${lang}`);

      await admin.reload();
      await admin.getByTestId(`vmember-eng.${lang}`).waitFor();
      await admin.getByTestId(`vmember-prod.${lang}`).waitFor();
      await expect.poll(() => admin.getByTestId('vinvites-table').locator('tbody tr.ant-table-row').count()).toBe(0);
      await cb.shot(admin, `vendor-people-members-${lang}`);

      // The admin moves the production worker to engineer; the server has it.
      await admin.getByTestId(`vmember-role-prod.${lang}`).click();
      await pickOption(admin, lang === 'en' ? /^Engineer$/ : /^工程师$/);
      await expect
        .poll(async () => {
          const r = await w.h.deps.db.kysely
            .selectFrom('vendor_members as m')
            .innerJoin('users as u', 'u.id', 'm.user_id')
            .select('m.role')
            .where('u.username', '=', `prod.${lang}`)
            .executeTakeFirst();
          return r?.role;
        })
        .toBe('engineer');
    });
  }

  it('shows the people page on a phone', async () => {
    const page = await cb.newPage({ lang: 'zh', phone: true });
    await signIn(page, w.baseUrl, 'vadmin.con', w.password, `/vendors/${vendorId}/people`);
    await page.getByTestId('vmembers-table').waitFor();
    await page.getByTestId('vmember-vadmin.con').waitFor();
    await cb.shot(page, 'vendor-people-zh-phone');
  });
});
