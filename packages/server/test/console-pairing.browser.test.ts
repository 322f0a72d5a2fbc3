import { quectelPayload, staticBindUrl } from '@bindery/protocol';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConsoleWorld, startConsoleWorld } from '../src/features/console/console.fixture.js';
import { SYSTEM_CLI } from '../src/shared/principal.js';
import { browserSkipReason, type ConsoleBrowser, launchConsoleBrowser, signIn } from './support/browser.js';
import { imei, station } from './support/vendor-console.js';

/**
 * The pairing station in a real browser (issue 13 item 6), what the vendor journey
 * (console-vendor-journey.browser.test.ts: 50 pairs, the server taken away, the server's refusals, the
 * shift's file imported) does not: typed "scanner" input in both orders and all three label forms, a
 * wrong IMEI check digit refused by the station itself, and the browser itself going offline (pairs
 * queue in localStorage, then upload by themselves: nothing lost, nothing twice). Shots in en and zh
 * go to CONSOLE_SCREENSHOTS_DIR.
 */
if (browserSkipReason) console.warn(`[bindery tests] console browser tests skipped: ${browserSkipReason}`);

describe.skipIf(!!browserSkipReason)('pairing station in chromium', () => {
  let w: ConsoleWorld;
  let cb: ConsoleBrowser;
  let vendorId: string;
  let batchId: string;
  let devices: Array<{ sn: string; hw_code: string }>;
  /** A production worker of the vendor (issue 13 item 1): batches, relations and the station only. */
  const WORKER = 'line.worker';
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
    batchId = (
      await s.production.createBatch(SYSTEM_CLI, model.model_id, {
        count: 60,
        pattern: { kind: 'counter', prefix: 'LINE', width: 4 },
      })
    ).id;
    devices = await db().selectFrom('devices').select(['sn', 'hw_code']).where('batch_id', '=', batchId).orderBy('sn').execute();
  }, 120_000);

  afterAll(async () => {
    await cb?.close();
    await w?.close();
  });

  const { scan, text, waitText, waitReason } = station;
  const labelOf = (i: number) => {
    const d = devices[i]!;
    // The three label forms a line meets: the static bind URL, Quectel content, a bare SN.
    if (i % 3 === 0) return staticBindUrl('http://127.0.0.1:8080', d.hw_code);
    if (i % 3 === 1) return quectelPayload('pkLock', d.sn);
    return d.sn;
  };

  const startShift = (page: Page, name: string) => station.setup(page, batchId, name);

  it('pairs in both orders and all label forms, refuses a bad check digit, queues while the browser is offline', {
    timeout: 180_000,
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

    // Six devices: each label form in each order.
    for (let i = 0; i < 6; i++) {
      await pairOne(i);
      paired++;
      await waitText(page, 'pairing-count', String(paired));
    }
    await page.locator('[data-testid="pairing-result"][data-result="paired"]').waitFor();
    await cb.shot(page, 'pairing-paired-en');

    // A misread IMEI is refused by the station itself, before any request.
    await scan(page, '352090000000001');
    await waitReason(page, 'bad_check_digit');
    expect(await text(page, 'pairing-count')).toBe(String(paired));

    // The browser goes offline: pairs are saved in the browser and shown as such.
    await page.context().setOffline(true);
    for (let i = 6; i < 11; i++) {
      await pairOne(i);
      await waitText(page, 'pairing-queued', String(i - 5));
    }
    await page.locator('[data-testid="pairing-result"][data-result="queued"]').waitFor();
    await waitText(page, 'pairing-online', 'Offline: pairs are saved here');
    expect(await text(page, 'pairing-count')).toBe(String(paired));
    await cb.shot(page, 'pairing-offline-en');
    // A reload while offline keeps the queue (it lives in localStorage).
    expect(
      await page.evaluate((v) => JSON.parse(localStorage.getItem(`bindery.pairing.${v}`) ?? '{}').queue.length, vendorId),
    ).toBe(5);

    // Back online: the queue uploads by itself, each pair once.
    await page.context().setOffline(false);
    paired += 5;
    await waitText(page, 'pairing-queued', '0');
    await waitText(page, 'pairing-count', String(paired));
    for (let i = 11; i < 14; i++) {
      await pairOne(i);
      paired++;
      await waitText(page, 'pairing-count', String(paired));
    }
    await cb.shot(page, 'pairing-shift-en');

    const shiftId = (await text(page, 'pairing-shift-id'))!;
    const rows = await db()
      .selectFrom('pairings')
      .select(['outcome', 'sn', 'device_key', 'reason'])
      .where('shift_id', '=', shiftId)
      .execute();
    const ok = rows.filter((r) => r.outcome === 'paired');
    expect(ok).toHaveLength(paired);
    expect(new Set(ok.map((r) => r.sn)).size).toBe(paired);
    // The bad check digit never reached the server.
    expect(rows.filter((r) => r.outcome === 'refused')).toEqual([]);
    for (let i = 0; i < paired; i++) {
      const d = await db().selectFrom('devices').select('device_key').where('sn', '=', devices[i]!.sn).executeTakeFirstOrThrow();
      expect(d.device_key, devices[i]!.sn).toBe(imei(i));
    }
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
