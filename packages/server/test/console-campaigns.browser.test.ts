import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IN_FLIGHT } from '../src/features/campaigns/campaigns.model.js';
import type { ConsoleWorld } from '../src/features/console/console.fixture.js';
import { SYSTEM_CLI } from '../src/shared/principal.js';
import { browserSkipReason, type ConsoleBrowser, signIn } from './support/browser.js';
import { type CampaignConsole, closeCampaignConsole, selectIn, startCampaignConsole } from './support/campaign-console.js';

/**
 * Firmware campaigns in a real browser (issue 14 item 3): an engineer creates a campaign from the form,
 * watches its chart move as devices report, sees it pause itself and reads why (en, zh; desktop and
 * phone), then resumes and cancels it. Devices are moved by the engine directly (no sockets here).
 */
if (browserSkipReason) console.warn(`[bindery tests] console browser tests skipped: ${browserSkipReason}`);

describe.skipIf(!!browserSkipReason)('firmware campaigns in chromium', { timeout: 180_000 }, () => {
  let c: CampaignConsole;
  let w: ConsoleWorld;
  let cb: ConsoleBrowser;
  let vendorId: string;
  const ENGINEER = 'ota.engineer';
  const shot = (page: Page, name: string) => c.shot(page, name);
  const pick = selectIn;

  beforeAll(async () => {
    c = await startCampaignConsole({ from: '2.3.0', engineer: ENGINEER });
    ({ w, cb, vendorId } = c);
  }, 120_000);

  afterAll(() => closeCampaignConsole(c));

  it('creates a campaign, watches it move, sees it pause itself and why, resumes and cancels it', async () => {
    const page = await cb.newPage({ lang: 'en' });
    await signIn(page, w.baseUrl, ENGINEER, w.password, `/vendors/${vendorId}/campaigns`);
    await page.getByTestId('campaign-new').click();
    await page.getByTestId('campaign-name').fill('Lock 2.6.0 rollout');
    await pick(page, 'campaign-model', /Smart Door Lock S2/);
    await pick(page, 'campaign-image', /2\.6\.0/);
    // The target is an uploaded SN file: one too large is refused first, then a CSV's first column is read.
    const fileInput = page.locator('.ant-modal input[type=file]');
    await fileInput.setInputFiles({ name: 'big.txt', mimeType: 'text/plain', buffer: Buffer.alloc(1024 * 1024 + 1, 0x41) });
    await page.getByTestId('campaign-sn-file-error').filter({ hasText: 'larger than 1 MB' }).waitFor();
    const listed = ['CON0001', 'CON0002', 'CON0003', 'CON0004', 'CON0005', 'CON0006'];
    const csv = `SN,site\r\n${listed.map((sn, i) => `${sn},room ${i}`).join('\r\n')}\r\n"CON0002",again\r\n`;
    await fileInput.setInputFiles({ name: 'sns.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    await page.getByTestId('campaign-sn-file-count').filter({ hasText: '6 SNs read from sns.csv' }).waitFor();
    expect(await page.getByTestId('campaign-sn-file-error').count()).toBe(0);
    // The canary as a percentage of the target: half of six devices.
    await page.getByTestId('campaign-canary-mode').getByText('Percentage').click();
    await page.locator('#canary_percent').fill('50');
    await page.locator('#min_executions').fill('2');
    await page.locator('#failure_pct').fill('20');
    await page.locator('#error_report_threshold').fill('2');
    await shot(page, 'vendor-campaign-new-en');
    await page.getByTestId('campaign-start').click();
    await page.getByTestId('campaign-status').filter({ hasText: 'Running' }).waitFor();
    const c = (await w.h.services.campaigns.list(SYSTEM_CLI, vendorId))[0]!;
    expect(c.name).toBe('Lock 2.6.0 rollout');
    // What the form sent, as the service stored it.
    expect(c.stages).toEqual({ canary_percent: 50, rate_per_minute: 100, factor: 2, stage_size: 500 });
    expect([...(c.target.sns ?? [])].sort()).toEqual(listed);
    expect(c.total).toBe(6);
    expect(c.error_report_threshold).toBe(2);
    await page.getByTestId('campaign-error-report-threshold').filter({ hasText: '2' }).waitFor();

    // The scheduler tells the canary; two devices report: one comes back upgraded, one on its old version.
    const engine = w.h.services.campaigns.engine;
    await engine.runOnce();
    const told = (await w.h.services.campaigns.executions(SYSTEM_CLI, c.id)).executions.filter((e) =>
      (IN_FLIGHT as string[]).includes(e.state),
    );
    // The canary: 50 % of six.
    expect(told.length).toBe(3);
    const key = (sn: string) => sn.toLowerCase();
    let at = Date.now();
    const step = async (
      sn: string,
      from: 'notified' | 'downloading',
      to: 'downloading' | 'succeeded' | 'failed',
      detail: string | null,
    ) => {
      // Real time, after the scheduler's own samples, so the chart's points stay in order.
      await new Promise((r) => setTimeout(r, 300));
      at = Math.max(Date.now(), at + 1);
      await engine.move(c.id, key(sn), sn, [from], to, detail, at);
      await engine.sample(c.id, at, await engine.counts(c.id));
    };
    await step(told[0]!.sn, 'notified', 'downloading', null);
    await step(told[1]!.sn, 'notified', 'downloading', null);
    await step(told[0]!.sn, 'downloading', 'succeeded', null);
    await page.getByTestId('campaign-count-succeeded').filter({ hasText: ': 1' }).waitFor();
    await step(told[1]!.sn, 'downloading', 'failed', 'came_back_old_version');
    await engine.runOnce();

    await page.getByTestId('campaign-status').filter({ hasText: 'Paused' }).waitFor();
    const reason = page.getByTestId('campaign-pause-reason');
    await reason.waitFor();
    expect(await reason.innerText()).toContain('too many devices failed');
    expect(await reason.innerText()).toContain('2 devices finished: 1 succeeded, 1 failed');
    expect(await page.getByTestId('campaign-chart').locator('canvas').count()).toBe(1);
    await shot(page, 'vendor-campaign-paused-en');

    for (const [lang, phone, name] of [
      ['zh', false, 'vendor-campaign-paused-zh'],
      ['zh', true, 'vendor-campaign-paused-zh-phone'],
      ['en', true, 'vendor-campaign-paused-en-phone'],
    ] as const) {
      const p = await cb.newPage({ lang, phone });
      await signIn(p, w.baseUrl, ENGINEER, w.password, `/vendors/${vendorId}/campaigns/${c.id}`);
      await p.getByTestId('campaign-pause-reason').waitFor();
      if (lang === 'zh') expect(await p.getByTestId('campaign-pause-reason').innerText()).toContain('已自动暂停');
      await shot(p, name);
      await p.close();
    }
    const list = await cb.newPage({ lang: 'zh' });
    await signIn(list, w.baseUrl, ENGINEER, w.password, `/vendors/${vendorId}/campaigns`);
    await list.getByTestId('campaign-list').locator('tr', { hasText: 'Lock 2.6.0 rollout' }).waitFor();
    await shot(list, 'vendor-campaigns-zh');
    await list.close();

    // The device page shows the device's execution.
    const dev = await cb.newPage({ lang: 'en' });
    await signIn(dev, w.baseUrl, ENGINEER, w.password, `/vendors/${vendorId}/devices/${told[1]!.sn}`);
    await dev.getByTestId('device-campaigns').locator('tr', { hasText: 'Came back with the old version' }).waitFor();
    await shot(dev, 'vendor-device-campaigns-en');
    await dev.close();

    await page.getByTestId('campaign-resume').click();
    await page.getByTestId('campaign-status').filter({ hasText: 'Running' }).waitFor();
    expect((await w.h.services.campaigns.get(SYSTEM_CLI, c.id)).status).toBe('running');
    // Asked again when a click missed: a confirmation still opening, or the buttons drawn anew by a
    // refresh between the two clicks (CI once waited 30 s for a cancel that never went out).
    const status = async () => (await w.h.services.campaigns.get(SYSTEM_CLI, c.id)).status;
    for (let i = 0; i < 3 && (await status()) !== 'cancelled'; i++) {
      await page
        .getByTestId('campaign-cancel')
        .click({ timeout: 5000 })
        .catch(() => {});
      await page
        .locator('.ant-popconfirm:not(.ant-popover-hidden) .ant-btn-primary')
        .click({ timeout: 5000 })
        .catch(() => {});
      await expect
        .poll(status, { timeout: 5000 })
        .toBe('cancelled')
        .catch(() => {});
    }
    await page.getByTestId('campaign-status').filter({ hasText: 'Cancelled' }).waitFor();
    expect((await w.h.services.campaigns.get(SYSTEM_CLI, c.id)).status).toBe('cancelled');
  });
});
