import { execFileSync } from 'node:child_process';
import type { Page } from 'playwright-core';
import { expect } from 'vitest';
import type { ConsoleBrowser } from './browser.js';

/**
 * What the vendor console's browser tests share (issue 13): Ant Design pickers, the people page's
 * invitation (its link shown once), joining by that link in a fresh browser, and the pairing station
 * driven as a USB scanner drives it.
 */

const OPEN_DROPDOWN = '.ant-select-dropdown:not(.ant-select-dropdown-hidden)';

/**
 * Clicks the option matching `text` in the open Ant Design select dropdown (a single select), then
 * waits until it has closed: a dropdown still fading out would otherwise answer the next pick.
 */
export async function pickOption(page: Page, text: RegExp): Promise<void> {
  await page.locator(`${OPEN_DROPDOWN} .ant-select-item-option`).filter({ hasText: text }).first().click();
  await expect.poll(() => page.locator(OPEN_DROPDOWN).count()).toBe(0);
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

/** A 15-digit IMEI with its Luhn check digit, numbered from `base`. */
export function imei(n: number, base = 35_209_000_000_000): string {
  const body = String(base + n).padStart(14, '0');
  let sum = 0;
  for (let i = 0; i < 14; i++) {
    let d = Number(body[i]);
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return body + String((10 - (sum % 10)) % 10);
}

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
