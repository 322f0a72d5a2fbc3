import type { Page } from 'playwright-core';
import { expect } from 'vitest';
import { type ConsoleWorld, startConsoleWorld } from '../../src/features/console/console.fixture.js';
import { SYSTEM_CLI } from '../../src/shared/principal.js';
import { type ConsoleBrowser, launchConsoleBrowser } from './browser.js';
import { pickOption } from './vendor-console.js';

/**
 * What the campaign browser tests share (issue 14): a console world whose lock model runs firmware
 * `from` on every device (all online) with 2.6.0 published but not current, optionally an engineer
 * of the lock's vendor, organisation campaigns allowed, and devices bound into departments first.
 */
export interface CampaignConsole {
  cb: ConsoleBrowser;
  w: ConsoleWorld;
  /** The lock model's vendor. */
  vendorId: string;
  /** A screenshot once no spinner is left (and the chart has drawn). */
  shot: (page: Page, name: string) => Promise<void>;
}

export async function startCampaignConsole(opts: {
  from: string;
  engineer?: string;
  orgCampaigns?: boolean;
  /** [sn, organisation, department] binds made before the firmware is set, from the new world. */
  place?: (w: ConsoleWorld) => Array<[string, string, string]>;
}): Promise<CampaignConsole> {
  const cb = await launchConsoleBrowser();
  let w: ConsoleWorld | undefined;
  try {
    w = await startConsoleWorld();
    const s = w.h.services;
    const db = w.h.deps.db.kysely;
    const lock = w.models.pkLock!;
    const { vendor_id: vendorId } = await db
      .selectFrom('models')
      .select('vendor_id')
      .where('model_id', '=', lock)
      .executeTakeFirstOrThrow();
    if (opts.engineer) {
      const u = await s.accounts.createUser('test', { username: opts.engineer, password: w.password });
      const { token } = await s.vendorPeople.createInvite(SYSTEM_CLI, vendorId, { role: 'engineer' });
      await s.vendorPeople.acceptInvite(token, { kind: 'user', userId: u.id, isOperator: false });
    }
    if (opts.orgCampaigns) await s.models.update(SYSTEM_CLI, lock, { org_campaigns_allowed: true });
    for (const [sn, orgId, dept] of opts.place?.(w) ?? []) {
      await s.binding.bind(SYSTEM_CLI, sn, { type: 'org', id: orgId }, { visibleTo: { departments: [dept] } });
    }
    await db.updateTable('devices').set({ firmware_version: opts.from, online: 1 }).where('model_id', '=', lock).execute();
    await s.firmware.publishUrl(SYSTEM_CLI, lock, {
      version: '2.6.0',
      download_url: 'https://firmware.example/lock-2.6.0.bin',
      md5sum: 'fedcba9876543210fedcba9876543210',
      size: 1_048_576,
      make_current: false,
    });
    const shot = async (page: Page, name: string) => {
      await expect.poll(() => page.locator('.ant-spin-blur, .ant-spin-spinning').count(), { timeout: 20_000 }).toBe(0);
      await page.waitForTimeout(600);
      await cb.shot(page, name);
    };
    return { cb, w, vendorId, shot };
  } catch (e) {
    await cb.close();
    await w?.close();
    throw e;
  }
}

export async function closeCampaignConsole(c: CampaignConsole | undefined): Promise<void> {
  await c?.cb.close();
  await c?.w.close();
}

/** Opens the Select with test id `testId` and picks the option matching `text`. */
export async function selectIn(page: Page, testId: string, text: RegExp): Promise<void> {
  await page.getByTestId(testId).click();
  await pickOption(page, text);
}
