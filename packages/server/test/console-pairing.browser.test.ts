import { readFileSync } from 'node:fs';
import { quectelPayload, staticBindUrl } from '@bindery/protocol';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConsoleWorld, startConsoleWorld } from '../src/features/console/console.fixture.js';
import { SYSTEM_CLI } from '../src/shared/principal.js';
import { bearer } from '../src/testing/harness.js';
import { browserSkipReason, type ConsoleBrowser, launchConsoleBrowser, signIn } from './support/browser.js';

/**
 * The pairing station in a real browser (issue 13 item 6): 50 devices paired with typed "scanner"
 * input (keystrokes, then Enter) in both orders and all three label forms, a network drop in the
 * middle (the browser goes offline, pairs queue, then upload by themselves: nothing lost, nothing
 * twice), deliberate mistakes each refused with its reason, and the shift's relation file exported
 * and imported again with no errors. Shots in en and zh go to CONSOLE_SCREENSHOTS_DIR.
 */
if (browserSkipReason) console.warn(`[bindery tests] console browser tests skipped: ${browserSkipReason}`);

/** A 15-digit IMEI with its Luhn check digit. */
function imei(n: number): string {
  const body = String(35_209_000_000_000 + n).padStart(14, '0');
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

describe.skipIf(!!browserSkipReason)('pairing station in chromium', () => {
  let w: ConsoleWorld;
  let cb: ConsoleBrowser;
  let vendorId: string;
  let batchId: string;
  let devices: Array<{ sn: string; hw_code: string }>;
  let vendorKey: string;
  /** A production worker of the vendor (issue 13 item 1): batches, relations and the station only. */
  const WORKER = 'line.worker';
  const TAKEN_IMEI = imei(9000);
  const db = () => w.h.deps.db.kysely;

  beforeAll(async () => {
    cb = await launchConsoleBrowser();
    w = await startConsoleWorld();
    const s = w.h.services;
    const model = await db().selectFrom('models').selectAll().where('model_id', '=', w.models.pkLock!).executeTakeFirstOrThrow();
    vendorId = model.vendor_id;
    const worker = await s.accounts.createUser('test', { username: WORKER, password: w.password });
    const { token } = await s.vendorPeople.createInvite(SYSTEM_CLI, vendorId, { role: 'production' });
    await s.vendorPeople.acceptInvite(token, { kind: 'user', userId: worker.id, isOperator: false });
    vendorKey = (await s.accounts.createVendorKey(SYSTEM_CLI, vendorId, 'import')).token;
    batchId = (
      await s.production.createBatch(SYSTEM_CLI, model.model_id, {
        count: 60,
        pattern: { kind: 'counter', prefix: 'LINE', width: 4 },
      })
    ).id;
    devices = await db().selectFrom('devices').select(['sn', 'hw_code']).where('batch_id', '=', batchId).orderBy('sn').execute();
    // A module paired on another day: its IMEI is taken.
    await s.pairing.pair(SYSTEM_CLI, vendorId, {
      idempotency_key: 'earlier-shift-0001',
      shift_id: 'earlier',
      station: 'old',
      model_id: model.model_id,
      device_key: TAKEN_IMEI,
      label: 'CON0001',
    });
  }, 120_000);

  afterAll(async () => {
    await cb?.close();
    await w?.close();
  });

  /** What a USB scanner does: types the code into whatever has focus and presses Enter. */
  const scan = async (page: Page, code: string) => {
    await page.getByTestId('pairing-scan').focus();
    await page.keyboard.type(code);
    await page.keyboard.press('Enter');
  };
  const text = async (page: Page, id: string) => (await page.getByTestId(id).textContent())?.trim();
  const waitText = (page: Page, id: string, value: string) =>
    page.waitForFunction(([i, v]) => document.querySelector(`[data-testid="${i}"]`)?.textContent?.trim() === v, [
      id,
      value,
    ] as const);
  const waitReason = (page: Page, reason: string) =>
    page.locator(`[data-testid="pairing-result"][data-result="refused"][data-reason="${reason}"]`).waitFor();
  const labelOf = (i: number) => {
    const d = devices[i]!;
    // The three label forms a line meets: the static bind URL, Quectel content, a bare SN.
    if (i % 3 === 0) return staticBindUrl('http://127.0.0.1:8080', d.hw_code);
    if (i % 3 === 1) return quectelPayload('pkLock', d.sn);
    return d.sn;
  };

  const startShift = async (page: Page, station: string) => {
    await page.getByTestId('pairing-setup').waitFor();
    await page.locator('[data-testid="pairing-target"] option[value^="batch:"]').first().waitFor({ state: 'attached' });
    await page.getByTestId('pairing-target').selectOption(`batch:${batchId}`);
    await page.getByTestId('pairing-station-name').fill(station);
  };

  it('pairs 50 devices through a network drop, refuses mistakes with reasons, exports a file that imports', {
    timeout: 240_000,
  }, async () => {
    const page = await cb.newPage({ lang: 'en' });
    await signIn(page, w.baseUrl, WORKER, w.password, `/vendors/${vendorId}/pairing`);
    await startShift(page, 'line-7');
    await cb.shot(page, 'pairing-setup-en');
    await page.getByTestId('pairing-start').click();
    await page.getByTestId('pairing-scan').waitFor();
    await cb.shot(page, 'pairing-ready-en');

    let paired = 0;
    const pairOne = async (i: number) => {
      // Either order: the label first on every other device.
      if (i % 2 === 0) {
        await scan(page, imei(i));
        await scan(page, labelOf(i));
      } else {
        await scan(page, labelOf(i));
        await scan(page, imei(i));
      }
    };

    for (let i = 0; i < 20; i++) {
      await pairOne(i);
      paired++;
      await waitText(page, 'pairing-count', String(paired));
    }
    await page.locator('[data-testid="pairing-result"][data-result="paired"]').waitFor();
    await cb.shot(page, 'pairing-paired-en');

    // Mistakes, each refused with its reason; none pairs anything.
    await scan(page, imei(500));
    await scan(page, 'NOSUCH0001');
    await waitReason(page, 'unknown_sn');
    await cb.shot(page, 'pairing-refused-unknown-en');
    await scan(page, TAKEN_IMEI);
    await scan(page, labelOf(20));
    await waitReason(page, 'device_key_taken');
    expect(await text(page, 'pairing-result')).toContain('CON0001');
    await scan(page, imei(501));
    await scan(page, 'VER0001');
    await waitReason(page, 'other_model');
    await scan(page, labelOf(20));
    await scan(page, labelOf(20));
    await waitReason(page, 'duplicate_scan');
    await scan(page, '352090000000001');
    await waitReason(page, 'bad_check_digit');
    expect(await text(page, 'pairing-count')).toBe('20');
    // The duplicate scan kept the first label waiting: the next IMEI completes that pair.
    await scan(page, imei(20));
    paired++;
    await waitText(page, 'pairing-count', String(paired));

    // The network drops: pairs are saved in the browser and shown as such.
    await page.context().setOffline(true);
    for (let i = 21; i < 31; i++) {
      await pairOne(i);
      await waitText(page, 'pairing-queued', String(i - 20));
    }
    await page.locator('[data-testid="pairing-result"][data-result="queued"]').waitFor();
    await waitText(page, 'pairing-online', 'Offline: pairs are saved here');
    expect(await text(page, 'pairing-count')).toBe(String(paired));
    await cb.shot(page, 'pairing-offline-en');
    // A reload while offline keeps the queue (it lives in localStorage).
    expect(
      await page.evaluate((v) => JSON.parse(localStorage.getItem(`bindery.pairing.${v}`) ?? '{}').queue.length, vendorId),
    ).toBe(10);

    // Back online: the queue uploads by itself, each pair once.
    await page.context().setOffline(false);
    paired += 10;
    await waitText(page, 'pairing-queued', '0');
    await waitText(page, 'pairing-count', String(paired));
    for (let i = 31; i < 50; i++) {
      await pairOne(i);
      paired++;
      await waitText(page, 'pairing-count', String(paired));
    }
    expect(paired).toBe(50);
    await cb.shot(page, 'pairing-shift-en');

    const shiftId = (await text(page, 'pairing-shift-id'))!;
    const rows = await db()
      .selectFrom('pairings')
      .select(['outcome', 'sn', 'device_key', 'reason'])
      .where('shift_id', '=', shiftId)
      .execute();
    const ok = rows.filter((r) => r.outcome === 'paired');
    expect(ok).toHaveLength(50);
    expect(new Set(ok.map((r) => r.sn)).size).toBe(50);
    expect(
      rows
        .filter((r) => r.outcome === 'refused')
        .map((r) => r.reason)
        .sort(),
    ).toEqual(['device_key_taken', 'other_model', 'unknown_sn']);
    for (let i = 0; i < 50; i++) {
      const d = await db().selectFrom('devices').select('device_key').where('sn', '=', devices[i]!.sn).executeTakeFirstOrThrow();
      expect(d.device_key, devices[i]!.sn).toBe(imei(i));
    }

    // The shift's relation file: 50 rows in the import's format, imported again with 0 errors.
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('pairing-export').click()]);
    const file = readFileSync((await download.path())!);
    const lines = file
      .toString('utf8')
      .replace(/^\uFEFF/, '')
      .trim()
      .split(/\r?\n/);
    expect(lines[0]).toMatch(/^\*DeviceKey,\*ProductKey,Device SN/);
    expect(lines).toHaveLength(51);
    const imp = await w.h.app.inject({
      method: 'POST',
      url: `/api/v1/vendors/${vendorId}/relations/import?format=csv&filename=${encodeURIComponent(download.suggestedFilename())}`,
      headers: { ...bearer(vendorKey), 'content-type': 'text/csv' },
      payload: file,
    });
    expect(imp.statusCode, imp.body).toBe(200);
    expect(imp.json()).toMatchObject({ rows: 50, error_count: 0, imported: true, unchanged: 50 });
  });

  it('speaks Chinese, on a desktop and a phone', { timeout: 120_000 }, async () => {
    const page = await cb.newPage({ lang: 'zh' });
    await signIn(page, w.baseUrl, WORKER, w.password, `/vendors/${vendorId}/pairing`);
    await startShift(page, 'line-8');
    await cb.shot(page, 'pairing-setup-zh');
    await page.getByTestId('pairing-start').click();
    await scan(page, imei(55));
    await scan(page, labelOf(55));
    await waitText(page, 'pairing-count', '1');
    await cb.shot(page, 'pairing-paired-zh');
    await scan(page, imei(56));
    await scan(page, labelOf(55));
    await waitReason(page, 'duplicate_scan');
    await scan(page, labelOf(56));
    await waitText(page, 'pairing-count', '2');
    await scan(page, imei(57));
    await scan(page, 'NOSUCH0002');
    await waitReason(page, 'unknown_sn');
    expect(await text(page, 'pairing-result')).toContain('未知 SN');
    await cb.shot(page, 'pairing-refused-zh');
    const phone = await cb.newPage({ lang: 'zh', phone: true });
    await signIn(phone, w.baseUrl, WORKER, w.password, `/vendors/${vendorId}/pairing`);
    await startShift(phone, 'line-9');
    await phone.getByTestId('pairing-start').click();
    await phone.getByTestId('pairing-scan').waitFor();
    await cb.shot(phone, 'pairing-phone-zh');
  });
});
