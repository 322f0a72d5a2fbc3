import { execFileSync } from 'node:child_process';
import type { Page } from 'playwright-core';
import { expect } from 'vitest';
import { type ConsoleWorld, startConsoleWorld } from '../../src/features/console/console.fixture.js';
import { SYSTEM_CLI } from '../../src/shared/principal.js';
import { type ConsoleBrowser, launchConsoleBrowser } from './browser.js';

/**
 * What the vendor console's browser tests share (issue 13): their world, Ant Design pickers, the people page's
 * invitation (its link shown once), joining by that link in a fresh browser, and the pairing station
 * driven as a USB scanner drives it.
 */

const OPEN_DROPDOWN = '.ant-select-dropdown:not(.ant-select-dropdown-hidden)';

/**
 * Clicks the option matching `text` in the open Ant Design Select or TreeSelect dropdown (a single
 * choice), then waits until it has closed: a dropdown still fading out would otherwise answer the
 * next pick. A string is the option's whole text.
 */
export async function pickOption(page: Page, text: RegExp | string): Promise<void> {
  const hasText = typeof text === 'string' ? new RegExp(`^${text}$`) : text;
  const option = page
    .locator(`${OPEN_DROPDOWN} .ant-select-item-option, ${OPEN_DROPDOWN} .ant-select-tree-node-content-wrapper`)
    .filter({ hasText })
    .first();
  const closed = () => expect.poll(() => page.locator(OPEN_DROPDOWN).count(), { timeout: 5_000 }).toBe(0);
  // A click while the dropdown is still opening can miss and leave it open (CI): a single choice is
  // clicked again until it closes. The fade-out itself takes ~0.2 s quiet, over a second loaded.
  for (let attempt = 1; ; attempt++) {
    await option.click();
    try {
      await closed();
      return;
    } catch (e) {
      if (attempt === 3) throw e;
      if ((await page.locator(OPEN_DROPDOWN).count()) === 0) return;
    }
  }
}

/**
 * A vendor's console in chromium: the browser, the console world, the vendor of the world's model
 * `modelKey` (its `models` map), and an operator `username` who acts for every vendor as its admin.
 * Close it with closeVendorConsole (also what a failed start does with what it had started).
 */
export async function startVendorConsole(
  modelKey: string,
  username: string,
): Promise<{ cb: ConsoleBrowser; w: ConsoleWorld; vendorId: string }> {
  const cb = await launchConsoleBrowser();
  let w: ConsoleWorld | undefined;
  try {
    w = await startConsoleWorld();
    const m = await w.h.deps.db.kysely
      .selectFrom('models')
      .select('vendor_id')
      .where('model_id', '=', w.models[modelKey]!)
      .executeTakeFirstOrThrow();
    await w.h.services.accounts.createUser(SYSTEM_CLI, { username, password: w.password, isOperator: true });
    return { cb, w, vendorId: m.vendor_id };
  } catch (e) {
    await closeVendorConsole({ cb, w });
    throw e;
  }
}

export async function closeVendorConsole(v: { cb?: ConsoleBrowser | undefined; w?: ConsoleWorld | undefined }): Promise<void> {
  await v.cb?.close();
  await v.w?.close();
}

/** Whether a command-line tool is on PATH (zbarimg, pdftotext). */
export function hasTool(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * On the vendor admin's people page: invites with the role whose option reads `roleOption` and
 * returns the link the dialog shows once (`…/invite#v.…`); `shot` names a screenshot of it.
 */
export async function inviteVendorPerson(page: Page, roleOption: RegExp, shot?: () => Promise<void>): Promise<string> {
  await page.getByTestId('vinvite-open').click();
  await page.getByTestId('vinvite-role').click();
  await pickOption(page, roleOption);
  await page.getByTestId('vinvite-submit').click();
  const link = (await page.getByTestId('vinvite-link').textContent()) ?? '';
  expect(link).toMatch(/\/invite#v\./);
  if (shot) await shot();
  await page.getByTestId('vinvite-done').click();
  await page.getByTestId('vinvite-link').waitFor({ state: 'detached' });
  return link;
}

/**
 * A new person opens an invitation link in a fresh browser, reads the role, creates an account on
 * the page and joins, then continues to the vendor's pages. `link` may name another origin (the
 * public URL): it is opened on `baseUrl` with the same fragment.
 */
export async function joinByInviteLink(
  cb: ConsoleBrowser,
  baseUrl: string,
  link: string,
  person: { username: string; displayName: string; password: string; lang: 'en' | 'zh'; roleText: string },
  shot?: (page: Page) => Promise<void>,
): Promise<Page> {
  const page = await cb.newPage({ lang: person.lang });
  await page.goto(`${baseUrl}/invite${link.slice(link.indexOf('#'))}`);
  await expect.poll(() => page.getByTestId('invite-role').innerText()).toBe(person.roleText);
  const form = page.getByTestId('invite-join-form');
  await form.locator('input[name=display_name]').fill(person.displayName);
  await form.locator('input[name=username]').fill(person.username);
  await form.locator('input[name=password]').fill(person.password);
  await form.locator('input[name=confirm]').fill(person.password);
  if (shot) await shot(page);
  await page.getByTestId('invite-join').click();
  await page.getByTestId('invite-joined').waitFor();
  await page.getByTestId('invite-continue').click();
  await page.waitForURL(/\/vendors\/[^/]+/);
  return page;
}

/** A 15-digit IMEI with its Luhn check digit, numbered from 35 209 000 000 000 (src/testing/imei.ts). */
export { imei } from '../../src/testing/imei.js';

/** The pairing station, as a USB scanner and the person at the line use it. */
export const station = {
  /** What a USB scanner does: types the code into whatever has focus and presses Enter. */
  async scan(page: Page, code: string): Promise<void> {
    await page.getByTestId('pairing-scan').focus();
    await page.keyboard.type(code);
    await page.keyboard.press('Enter');
  },
  async text(page: Page, id: string): Promise<string | undefined> {
    return (await page.getByTestId(id).textContent())?.trim();
  },
  async waitText(page: Page, id: string, value: string): Promise<void> {
    await page.waitForFunction(([i, v]) => document.querySelector(`[data-testid="${i}"]`)?.textContent?.trim() === v, [
      id,
      value,
    ] as const);
  },
  async waitReason(page: Page, reason: string): Promise<void> {
    await page.locator(`[data-testid="pairing-result"][data-result="refused"][data-reason="${reason}"]`).waitFor();
  },
  /** The setup form: the batch (once its option is there) and the station's name. */
  async setup(page: Page, batchId: string, name: string): Promise<void> {
    await page.getByTestId('pairing-setup').waitFor();
    await page.locator('[data-testid="pairing-target"] option[value^="batch:"]').first().waitFor({ state: 'attached' });
    await page.getByTestId('pairing-target').selectOption(`batch:${batchId}`);
    await page.getByTestId('pairing-station-name').fill(name);
  },
};
