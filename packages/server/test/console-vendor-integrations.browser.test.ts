import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OutboundPolicy, parseCidr } from '../src/adapters/outbound/policy.js';
import { VendorServer } from '../src/features/callbacks/vendor-server.testkit.js';
import type { ConsoleWorld } from '../src/features/console/console.fixture.js';
import { SYSTEM_CLI } from '../src/shared/principal.js';
import { browserSkipReason, type ConsoleBrowser, ROOT, signIn } from './support/browser.js';
import { closeVendorConsole, startVendorConsole } from './support/vendor-console.js';

const VENDOR_EN = path.join(ROOT, 'packages/console/src/i18n/locales/en/vendor.json');

/**
 * The vendor's integrations and one device's detail in a real browser (issue 13, items 8 and 9): an
 * operator acting as the vendor's admin sets the provider URL (server-generated Token and key) and a
 * model's callback URL with a pair from "Generate", adds a webhook (its secret once) and sees a delivery,
 * sends test events to a webhook and a callback URL (local receivers) and sees their outcome, opens a device
 * from the fleet, sends it a reboot and sees it in the history. en and zh, desktop and phone.
 */
if (browserSkipReason) console.warn(`[bindery tests] console browser tests skipped: ${browserSkipReason}`);

describe.skipIf(!!browserSkipReason)('vendor integrations and device detail in chromium', { timeout: 180_000 }, () => {
  let w: ConsoleWorld;
  let cb: ConsoleBrowser;
  let vendorId: string;
  const poll = <T>(fn: () => T | Promise<T>) => expect.poll(fn, { timeout: 15_000 });
  const shot = async (page: Page, name: string) => {
    await poll(() => page.locator('.ant-spin-blur, .ant-spin-spinning').count()).toBe(0);
    await page.waitForTimeout(400);
    await cb.shot(page, name);
  };
  const db = () => w.h.deps.db.kysely;
  const open = async (opts: { lang: 'en' | 'zh'; phone?: boolean }, next: string) => {
    const page = await cb.newPage(opts);
    page.setDefaultTimeout(60_000);
    await signIn(page, w.baseUrl, 'op.integr', w.password, next);
    return page;
  };
  /** No i18n key of these pages shows raw (event names like `device.bound` are real words here). */
  const KEYS = Object.keys(JSON.parse(readFileSync(VENDOR_EN, 'utf8')) as Record<string, string>).filter((k) =>
    /^(integrations|device)\./.test(k),
  );
  const noRawKeys = async (page: Page) => {
    const text = await page.locator('body').innerText();
    expect(KEYS.filter((k) => text.includes(k))).toEqual([]);
  };

  beforeAll(async () => {
    // Until vendor accounts land everywhere, an operator acts for every vendor as its admin.
    ({ cb, w, vendorId } = await startVendorConsole('pkLock', 'op.integr'));
  }, 120_000);

  afterAll(() => closeVendorConsole({ cb, w }));

  it('sets callback URLs with generated Token and key, adds a webhook and sees a delivery', async () => {
    const page = await open({ lang: 'en' }, `/vendors/${vendorId}/integrations`);

    // Provider URL, Token and key left empty: the server generates them and the form shows them.
    await page.getByTestId('callback-url-vendor').fill('https://93.184.215.14/wecom');
    await page.getByTestId('callback-verify').click();
    await page.getByTestId('callback-save-vendor').click();
    await poll(() => page.getByTestId('callback-token-vendor').inputValue()).toMatch(/^[A-Za-z0-9]{1,32}$/);
    const vendorRow = await db()
      .selectFrom('callback_endpoints')
      .selectAll()
      .where('id', '=', `vendor:${vendorId}`)
      .executeTakeFirst();
    expect(vendorRow?.url).toBe('https://93.184.215.14/wecom');
    expect(vendorRow?.verify_device).toBe(1);

    // The model's callback with a pair from "Generate": what is saved is what the form showed.
    await page.getByTestId('callback-url-model').fill('https://93.184.215.14/model-cb');
    await page.getByTestId('callback-generate-model').click();
    const token = await page.getByTestId('callback-token-model').inputValue();
    const key = await page.getByTestId('callback-key-model').inputValue();
    expect(token).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(key).toMatch(/^[A-Za-z0-9+/]{43}$/);
    await page.getByTestId('callback-save-model').click();
    await page.getByText('Callback saved').first().waitFor();
    const row = await db()
      .selectFrom('callback_endpoints')
      .select('model_id')
      .where('kind', '=', 'model')
      .executeTakeFirstOrThrow();
    const modelCb = await w.h.services.callbacks.getModelCallback(SYSTEM_CLI, row.model_id!);
    expect(modelCb.url).toBe('https://93.184.215.14/model-cb');
    expect(modelCb.token).toBe(token);
    expect(modelCb.encoding_aes_key).toBe(key);

    // A webhook: its secret once, then gone from the page.
    await page.getByTestId('webhook-add').click();
    await page.getByTestId('webhook-url').fill('https://93.184.215.14/hooks');
    await page.getByTestId('webhook-save').click();
    const secret = (await page.getByTestId('webhook-secret').innerText()).trim();
    expect(secret).toMatch(/^whsec_/);
    await shot(page, 'vendor-integrations-secret-en');
    await page.getByTestId('webhook-secret-done').click();
    await page.getByTestId('webhooks-table').getByText('https://93.184.215.14/hooks').waitFor();
    expect(await page.getByText(secret).count()).toBe(0);
    const hooks = await db()
      .selectFrom('webhooks')
      .select(['owner_type', 'owner_id'])
      .where('url', '=', 'https://93.184.215.14/hooks')
      .execute();
    expect(hooks).toEqual([{ owner_type: 'vendor', owner_id: vendorId }]);

    // An error report of one of the vendor's devices is delivered (or attempted) to the webhook.
    const con2 = await db().selectFrom('devices').select('id').where('sn', '=', 'CON0002').executeTakeFirstOrThrow();
    await w.h.services.deviceLogs.recordError(SYSTEM_CLI, { id: Number(con2.id), sn: 'CON0002' }, 600011, 'lock jammed');
    await w.h.services.callbacks.outbox.runOnce();
    await page.reload();
    const log = page.getByTestId('deliveries-table');
    await log.getByText('device.error_report').first().waitFor();
    await shot(page, 'vendor-integrations-en');
    await noRawKeys(page);
    await page.close();
  });

  it('sends test events: a webhook answering 204 is delivered, a callback URL answering 500 failed', async () => {
    // The receivers listen on 127.0.0.1, which the outbound policy refuses unless allowed (BINDERY_OUTBOUND_ALLOW).
    const callbacks = w.h.services.callbacks;
    const policy = callbacks.outbound;
    callbacks.outbound = new OutboundPolicy({ allow: [parseCidr('127.0.0.1/32')!] });
    const got: string[] = [];
    const rx = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString('utf8');
      });
      req.on('end', () => {
        got.push(body);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => rx.listen(0, '127.0.0.1', r));
    const hookUrl = `http://127.0.0.1:${(rx.address() as AddressInfo).port}/test-hook`;
    const modelId = (
      await db().selectFrom('callback_endpoints').select('model_id').where('kind', '=', 'model').executeTakeFirstOrThrow()
    ).model_id!;
    const cbNow = await callbacks.getModelCallback(SYSTEM_CLI, modelId);
    const vs = await new VendorServer(cbNow.token, cbNow.encoding_aes_key).start();
    const seen: string[] = [];
    vs.behave = (m) => {
      seen.push((m.message.event as { event_type?: string } | undefined)?.event_type ?? '');
      return { kind: 'http-error', status: 500 };
    };
    try {
      await callbacks.createWebhook(SYSTEM_CLI, { type: 'vendor', id: vendorId }, { url: hookUrl });
      await callbacks.putModelCallback(SYSTEM_CLI, modelId, { url: vs.url });
      const page = await open({ lang: 'en' }, `/vendors/${vendorId}/integrations`);
      const result = (id: string, status: string) => page.locator(`[data-testid="${id}-result"][data-status="${status}"]`);

      // The webhook's button: queued at once (nobody delivers until the outbox runs), then delivered.
      await page.getByTestId('webhooks-table').locator('tr', { hasText: hookUrl }).getByTestId('webhook-test').click();
      await result('webhook-test', 'pending').waitFor();
      await callbacks.outbox.runOnce();
      await result('webhook-test', 'delivered').getByText('Test event delivered (HTTP 204)').waitFor();
      expect(got.map((b) => (JSON.parse(b) as { type: string }).type)).toEqual(['webhook.test']);

      // The model's callback URL: a sealed bindery_test, which the vendor answers with HTTP 500.
      await page.getByTestId('callback-test-model').click();
      await result('callback-test-model', 'pending').waitFor();
      await callbacks.outbox.runOnce();
      await result('callback-test-model', 'failed').getByText('Test event failed: HTTP 500').waitFor();
      expect(seen).toContain('bindery_test');

      // Both attempts are in the delivery log.
      const log = page.getByTestId('deliveries-table');
      await log.getByText('webhook.test').first().waitFor();
      await log.getByText('bindery_test').first().waitFor();
      await shot(page, 'vendor-integrations-test-event-en');
      await noRawKeys(page);
      await page.close();
    } finally {
      callbacks.outbound = policy;
      await vs.stop();
      await new Promise<void>((r) => rx.close(() => r()));
    }
  });

  it('opens a device from the fleet, sends a reboot and sees it in the history', async () => {
    const page = await open({ lang: 'en' }, `/vendors/${vendorId}/devices`);
    await page.getByTestId('device-link').filter({ hasText: 'CON0003' }).click();
    await page.waitForURL(/\/devices\/CON0003$/);
    await page.getByTestId('device-title').getByText('CON0003').waitFor();
    // The fixture's error report of CON0003 is listed.
    await page.getByTestId('device-errors').getByText('door motor stalled').waitFor();
    await page.getByTestId('device-commands').getByText('No commands sent yet').waitFor();

    await page.getByTestId('device-cmd-send').click(); // reboot is the default command
    await page.getByTestId('device-commands').getByText('push_restart_device').waitFor();
    const cmds = await w.h.services.pushes.listCommands(SYSTEM_CLI, 'CON0003');
    expect(cmds.map((c) => c.cmd)).toEqual(['push_restart_device']);

    // The verification code only on the click (each look is audited).
    const audited = () =>
      db().selectFrom('audit_log').select('action').where('action', '=', 'device.reveal_verif_code').execute();
    expect(await audited()).toHaveLength(0);
    await page.getByTestId('device-verif-show').click();
    expect((await page.getByTestId('device-verif-code').innerText()).trim()).toMatch(/^\S+$/);
    expect(await audited()).toHaveLength(1);
    await shot(page, 'vendor-device-en');
    await noRawKeys(page);
    await page.close();
  });

  for (const lang of ['zh', 'en'] as const)
    for (const phone of [false, true]) {
      const tag = `${lang}${phone ? '-phone' : ''}`;
      it(`shows both pages in ${tag}`, async () => {
        const page = await open({ lang, phone }, `/vendors/${vendorId}/integrations`);
        await page.getByTestId('deliveries-table').waitFor();
        await page.getByTestId('callback-form-vendor').waitFor();
        await shot(page, `vendor-integrations-${tag}`);
        await noRawKeys(page);
        await page.goto(`${w.baseUrl}/vendors/${vendorId}/devices/CON0003`);
        await page.getByTestId('device-commands').waitFor();
        await shot(page, `vendor-device-${tag}`);
        await noRawKeys(page);
        await page.close();
      });
    }
});
