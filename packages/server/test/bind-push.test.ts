import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WsErr } from '@bindery/protocol';
import { buildBindQrUrl, buildLoginQrUrl, Device, type DeviceEvents } from '@bindery/sdk';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisEventBus } from '../src/adapters/bus/redis-bus.js';
import { consoleShell } from '../src/features/landing/console-shell.js';
import { type Browser, login, PASSWORD } from '../src/features/people/people.fixture.js';
import { SYSTEM_CLI } from '../src/shared/principal.js';
import { redisUrl, skipReasonRedis, storageBackends } from '../src/testing/backends.js';
import { bearer, type Harness, startHarness } from '../src/testing/harness.js';

/** Every wait is bounded so a broken server fails the test instead of hanging it. */
const WAIT = 10_000;

/**
 * Issue 4, done when: "a device bound through the console receives push_bind_corp and its next
 * `active` returns a secret". An SDK device on a real listening server; a person signs in with a
 * session cookie, opens the device's dynamic QR and binds through the console API; then scans its
 * login QR, reboots it, fetches its logs and unbinds it — each reaching the device as its push.
 */
const backends = storageBackends().map(({ backend, skip }) => ({
  backend,
  skip: skip ?? (backend.name === 'postgres' ? skipReasonRedis() : undefined),
  redis: backend.name === 'postgres',
}));

describe.each(backends)('console bind reaches the device on $backend.name', ({ backend, skip, redis }) => {
  let h: Harness;
  let publicUrl: string;
  let dataDir: string;
  let prefix: string;
  let device: Device;
  let secretNo: string;
  let admin: Browser;
  let orgId: string;
  const sn = 'PUSH0001';

  beforeAll(async () => {
    if (skip) return;
    // The confirmation step looks at the server-rendered page, whether or not the console is built.
    consoleShell.file = null;
    dataDir = mkdtempSync(path.join(tmpdir(), 'bindery-bindpush-'));
    prefix = `bindery_t_${randomBytes(6).toString('hex')}`;
    const config: Record<string, string> = { BINDERY_DATA_DIR: dataDir, BINDERY_NODE_ID: `bp-${prefix}` };
    if (redis) Object.assign(config, { REDIS_URL: redisUrl!, BINDERY_REDIS_PREFIX: prefix });
    h = await startHarness(backend, { config, realClock: true, ...(redis ? { bus: new RedisEventBus(redisUrl!, prefix) } : {}) });
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    const port = (h.app.server.address() as AddressInfo).port;
    publicUrl = h.deps.config.publicUrl;
    const vendor = await h.services.vendors.create(SYSTEM_CLI, { name: 'Push Vendor' });
    const { model } = await h.services.models.create(SYSTEM_CLI, vendor.id, { name: 'Door Terminal' });
    secretNo = (await h.services.devices.register(SYSTEM_CLI, model.model_id, sn)).secret_no;
    device = new Device({
      url: `ws://127.0.0.1:${port}/`,
      credentials: { sn, secretNo },
      firmwareVersion: '1.0.0',
      backoff: { initialMs: 50, maxMs: 500 },
    });
    const org = await h.app.inject({
      method: 'POST',
      url: '/api/v1/orgs',
      headers: bearer(h.operatorToken),
      payload: { name: 'Push Corp', super_admin: { username: 'pushadmin', password: PASSWORD } },
    });
    orgId = org.json().organisation.id;
    admin = await login(h.app, 'pushadmin', PASSWORD);
  });

  afterAll(async () => {
    device?.stop();
    await h?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    if (redis && redisUrl) {
      const r = new Redis(redisUrl);
      const keys = await r.keys(`${prefix}:*`);
      if (keys.length) await r.del(...keys);
      await r.quit();
    }
  });

  const next = <K extends keyof DeviceEvents>(e: K, pred?: (p: DeviceEvents[K]) => boolean) => device.waitFor(e, pred, WAIT);
  const row = () =>
    h.deps.db.kysely.selectFrom('devices').selectAll().where('sn_key', '=', sn.toLowerCase()).executeTakeFirstOrThrow();

  it.skipIf(skip)(
    'bound through the console: push_bind_corp, then active returns the secret and the device subscribes',
    async () => {
      const waiting = next('waiting_for_binding');
      device.start();
      expect((await waiting).errcode).toBe(WsErr.NOT_YET_BOUND);

      // The person opens the code shown on the device's screen, sees the confirmation page, confirms.
      const qr = buildBindQrUrl({ publicUrl, sn, secretNo, timestampSec: Date.now() / 1000 });
      const pageRes = await h.app.inject({ method: 'GET', url: qr.slice(publicUrl.length), headers: { cookie: admin.cookie } });
      expect(pageRes.statusCode).toBe(200);
      expect(pageRes.body).toContain('Bind this device');

      const bindPush = next('push_bind_corp');
      const activated = next('activated');
      const subscribed = next('subscribed');
      const r = await admin.req('POST', '/api/v1/bind', { content: qr, owner: { type: 'org', id: orgId }, remark_name: 'Lobby' });
      expect(r.statusCode).toBe(201);
      await bindPush;
      const { secret } = await activated;
      await subscribed;
      const d = await row();
      expect(secret).toBe(h.deps.secrets.open(d.secret_enc!));
      expect(device.credentials.secret).toBe(secret);

      const inbox = (await admin.req('GET', '/api/v1/notifications')).json();
      expect(inbox.notifications[0]).toMatchObject({ kind: 'device.bound', link: `/devices/${sn}` });

      const replay = await admin.req('POST', '/api/v1/bind', { content: qr, owner: { type: 'org', id: orgId } });
      expect(replay.json().error.code).toBe('QR_USED');
    },
  );

  it.skipIf(skip)('scanning its login QR sends push_user_scan; reboot and log requests arrive as their pushes', async () => {
    const qr = buildLoginQrUrl({ publicUrl, sn, secretNo, timestampSec: Date.now() / 1000, state: 'qrcode_login' });
    const scanned = next('push_user_scan');
    const confirm = await admin.req('POST', '/api/v1/scan/login', { content: qr });
    expect(confirm.statusCode).toBe(200);
    expect(await scanned).toEqual({
      userid: admin.userId,
      op_type: 'scan_qrcode_login',
      oper_id: confirm.json().oper_id,
      state: 'qrcode_login',
      user_type: 1,
    });

    const reboot = next('push_restart_device');
    expect((await admin.req('POST', `/api/v1/devices/${sn}/actions/reboot`)).statusCode).toBe(202);
    await reboot;
    const fetchLog = next('push_fetch_log');
    expect((await admin.req('POST', `/api/v1/devices/${sn}/actions/fetch-log`, { hint: 'op_logs' })).statusCode).toBe(202);
    expect(await fetchLog).toEqual({ hint: 'op_logs' });

    // The gateway writes presence in batches; the device page shows it once written.
    const page = async () => (await admin.req('GET', `/api/v1/devices/${sn}/page`)).json();
    // Online and the firmware from subscribe_corp may land in two consecutive batches.
    await expect
      .poll(async () => [(await page()).device.online, (await page()).device.firmware_version], { timeout: WAIT })
      .toEqual([true, '1.0.0']);
    expect((await page()).device).toMatchObject({
      sn,
      firmware_version: '1.0.0',
      remark_name: 'Lobby',
      bound_by: { user_id: admin.userId },
    });
  });

  it.skipIf(skip)(
    'unbound through the console: push_unbind_corp, the secret dies, the device waits to be bound again',
    async () => {
      const unbindPush = next('push_unbind_corp');
      const waitingAgain = next('waiting_for_binding');
      expect((await admin.req('DELETE', `/api/v1/devices/${sn}/bind`)).statusCode).toBe(204);
      await unbindPush;
      await waitingAgain;
      expect((await row()).secret_enc).toBeNull();
    },
  );
});
