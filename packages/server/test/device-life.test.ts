import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseScan, WsErr } from '@bindery/protocol';
import { Device, type DeviceCredentials, type DeviceEvents, type DeviceOptions } from '@bindery/sdk';
import { FleetCluster } from '@bindery/sdk/sim/cluster.js';
import { Fleet, type FleetCounts, type FleetDeviceSpec } from '@bindery/sdk/sim/fleet.js';
import { Redis } from 'ioredis';
import jsqrModule from 'jsqr';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisEventBus } from '../src/adapters/bus/redis-bus.js';
import { type Principal, SYSTEM_CLI } from '../src/shared/principal.js';
import { redisUrl, skipReasonRedis, storageBackends } from '../src/testing/backends.js';
import { type Harness, startHarness } from '../src/testing/harness.js';

// jsqr is CommonJS with an ES-style default in its types; at runtime the default import is the function.
const jsQR = ((jsqrModule as unknown as { default?: unknown }).default ?? jsqrModule) as unknown as (
  data: Uint8ClampedArray,
  width: number,
  height: number,
) => { data: string } | null;

/** Every wait is bounded so a broken server fails the test instead of hanging it. */
const WAIT = 10_000;

/**
 * SDK devices against the real server: a real app on 127.0.0.1 with its gateway, on SQLite with
 * the in-process bus, and on PostgreSQL with the Redis bus and presence. Nothing is scripted on
 * the device side: the SDK follows the firmware flow by itself and the test only watches it and
 * acts as the people (binding, scanning, unbinding) through the services.
 */
const backends = storageBackends().map(({ backend, skip }) => ({
  backend,
  skip: skip ?? (backend.name === 'postgres' ? skipReasonRedis() : undefined),
  redis: backend.name === 'postgres',
}));

describe.each(backends)('device life through the SDK on $backend.name', ({ backend, skip, redis }) => {
  let h: Harness;
  let url: string;
  let dataDir: string;
  let prefix: string;
  let modelId: string;
  let seedModelId: string;
  let seedSecretNo: string;
  let alice: Principal & { kind: 'user' };
  const devices: Device[] = [];

  beforeAll(async () => {
    if (skip) return;
    dataDir = mkdtempSync(path.join(tmpdir(), 'bindery-life-'));
    prefix = `bindery_t_${randomBytes(6).toString('hex')}`;
    const config: Record<string, string> = { BINDERY_DATA_DIR: dataDir, BINDERY_NODE_ID: `life-${prefix}` };
    if (redis) Object.assign(config, { REDIS_URL: redisUrl!, BINDERY_REDIS_PREFIX: prefix });
    h = await startHarness(backend, {
      config,
      realClock: true,
      ...(redis ? { bus: new RedisEventBus(redisUrl!, prefix) } : {}),
    });
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    url = `ws://127.0.0.1:${(h.app.server.address() as AddressInfo).port}/`;
    const s = h.services;
    const vendor = await s.vendors.create(SYSTEM_CLI, { name: 'Life Vendor' });
    modelId = (await s.models.create(SYSTEM_CLI, vendor.id, { name: 'Door Terminal' })).model.model_id;
    const seeded = await s.models.create(SYSTEM_CLI, vendor.id, { name: 'Seeded Terminal', shared_seed: true });
    seedModelId = seeded.model.model_id;
    seedSecretNo = seeded.seed_secret_no!;
    const user = await s.accounts.createUser(SYSTEM_CLI, { username: 'alice', password: 'alice password 1' });
    alice = { kind: 'user', userId: user.id, isOperator: false };
    await h.deps.db.kysely
      .insertInto('organisations')
      .values({ id: 'org_life', name: 'Life Corp', parent_id: null, mchid: null, merchant_shortname: null, created_at: 0 })
      .execute();
  });

  afterAll(async () => {
    for (const d of devices) d.stop();
    await h?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    if (redis && redisUrl) {
      const r = new Redis(redisUrl);
      const keys = await r.keys(`${prefix}:*`);
      if (keys.length) await r.del(...keys);
      await r.quit();
    }
  });

  async function newDevice(sn: string, opts: Partial<DeviceOptions> = {}, seed = false): Promise<Device> {
    const r = await h.services.devices.register(SYSTEM_CLI, seed ? seedModelId : modelId, sn);
    const d = new Device({
      url,
      credentials: seed ? { sn, seedSecretNo } : { sn, secretNo: r.secret_no },
      firmwareVersion: '1.0.0',
      backoff: { initialMs: 50, maxMs: 500 },
      ...opts,
    });
    devices.push(d);
    return d;
  }

  const next = <K extends keyof DeviceEvents>(d: Device, e: K, pred?: (p: DeviceEvents[K]) => boolean) =>
    d.waitFor(e, pred, WAIT);

  const row = (sn: string) =>
    h.deps.db.kysely.selectFrom('devices').selectAll().where('sn_key', '=', sn.toLowerCase()).executeTakeFirstOrThrow();

  /** Decodes the PNG the gateway sends for gen_login_qrcode. */
  function decodePng(png: Buffer): string | null {
    const img = PNG.sync.read(png);
    return (
      jsQR(new Uint8ClampedArray(img.data.buffer, img.data.byteOffset, img.data.byteLength), img.width, img.height)?.data ?? null
    );
  }

  it.skipIf(skip)(
    'register → wait → bound → subscribed → firmware info → login QR → unbound → waiting again → bound anew',
    async () => {
      const sn = 'LIFE0001';
      const d = await newDevice(sn);
      const persisted: string[] = [];
      d.on('persist', (c) => persisted.push(c.secret ?? '-'));

      // Powered on, unbound: registers and polls active, which answers "not yet bound".
      const waiting = next(d, 'waiting_for_binding');
      d.start();
      expect((await waiting).errcode).toBe(WsErr.NOT_YET_BOUND);
      expect(d.credentials.activeCode).toMatch(/^[A-Za-z0-9_-]{64}$/);
      expect(d.state).toBe('active');

      // A person binds it into their personal space: push_bind_corp, active at once, subscribe.
      const bindPush = next(d, 'push_bind_corp');
      const subscribed = next(d, 'subscribed');
      // By typed SN with the label's verification code (people's door, issue 11).
      const verifCode = await h.services.binding.verifCode(SYSTEM_CLI, sn);
      await h.services.binding.bindDevice(alice, { sn, verifCode, owner: { type: 'user', id: alice.userId } });
      await bindPush;
      await subscribed;
      expect(d.state).toBe('ready');
      const firstSecret = d.credentials.secret!;
      expect(firstSecret).toBeTruthy();
      expect(h.deps.secrets.open((await row(sn)).secret_enc!)).toBe(firstSecret);
      await h.app.gateway.flush();
      expect(await row(sn)).toMatchObject({ online: 1, firmware_version: '1.0.0', owner_id: alice.userId });

      // Firmware: published for the model, read back by the device; an upgrade request pushes to it.
      await h.services.firmware.publishUrl(SYSTEM_CLI, modelId, {
        version: '1.1.0',
        download_url: 'https://fw.example.com/door-1.1.0.bin',
        md5sum: 'd41d8cd98f00b204e9800998ecf8427e',
        size: 1048576,
      });
      expect(await d.getFirmwareInfo()).toMatchObject({
        firmware_version: '1.1.0',
        md5sum: 'd41d8cd98f00b204e9800998ecf8427e',
        size: 1048576,
      });
      const upgrade = next(d, 'push_update_firmware');
      await h.services.firmware.requestUpgrade(SYSTEM_CLI, sn);
      expect(await upgrade).toEqual({});

      // Dynamic login QR on the screen: the owner scans it, the device learns who and the state.
      const loginUrl = d.loginQrUrl('qrcode_login');
      expect(parseScan(loginUrl)).toMatchObject({ kind: 'dynamic_login', sn, state: 'qrcode_login' });
      const scanned = next(d, 'push_user_scan');
      const confirm = await h.services.management.confirmLoginScan(alice, loginUrl);
      const scan = await scanned;
      expect(scan).toMatchObject({ userid: alice.userId, state: 'qrcode_login', oper_id: confirm.oper_id });

      // Static login QR from the cloud (binary reply): it decodes to a static_login URL that works too.
      const png = await d.genLoginQrcode('menu');
      const staticUrl = decodePng(png);
      expect(parseScan(staticUrl ?? '')).toMatchObject({ kind: 'static_login', state: 'menu' });
      const scanned2 = next(d, 'push_user_scan', (p) => p.state === 'menu');
      await h.services.management.confirmLoginScan(alice, staticUrl!);
      expect((await scanned2).userid).toBe(alice.userId);

      // Unbound: the secret dies, the device drops it and is back to polling active.
      const unbindPush = next(d, 'push_unbind_corp');
      const waitingAgain = next(d, 'waiting_for_binding');
      await h.services.binding.unbind(alice, sn);
      await unbindPush;
      expect((await waitingAgain).errcode).toBe(WsErr.NOT_YET_BOUND);
      expect(d.credentials.secret).toBeUndefined();
      expect(d.waiting).toBe(true);
      // A request that needs a login is refused now; the SDK restarts its flow on that code.
      await expect(d.getCorpInfo()).rejects.toMatchObject({ errcode: expect.any(Number) });
      await next(d, 'waiting_for_binding');

      // Bound again, by an operator to an organisation: a new secret, subscribed again.
      const subscribedAgain = next(d, 'subscribed');
      await h.services.binding.bind(SYSTEM_CLI, sn, { type: 'org', id: 'org_life' });
      await subscribedAgain;
      expect(d.credentials.secret).toBeTruthy();
      expect(d.credentials.secret).not.toBe(firstSecret);
      expect(await d.getCorpInfo()).toEqual({ corp_name: 'Life Corp' });
      // What went to flash: the active_code (no secret yet), the secret, its wipe, the new one.
      expect(persisted).toEqual(['-', firstSecret, '-', d.credentials.secret]);
      d.stop();
    },
  );

  it.skipIf(skip)('after a lost connection it comes back with backoff and subscribes with its kept secret', async () => {
    const sn = 'LIFE0002';
    const d = await newDevice(sn);
    await h.services.binding.bind(SYSTEM_CLI, sn, { type: 'org', id: 'org_life' });
    const first = next(d, 'subscribed');
    d.start();
    await first;
    const steps: string[] = [];
    d.on('state', (s) => steps.push(s.to));
    const lost = next(d, 'disconnected');
    const back = next(d, 'subscribed');
    d.dropConnection();
    expect((await lost).reconnectInMs).toBeLessThanOrEqual(50);
    await back;
    // It kept its secret in flash: no active step on the way back (§A2).
    expect(steps).toEqual(['backoff', 'connecting', 'sync', 'register', 'subscribe', 'ready']);
    // The gateway serves it on the new connection.
    expect(await d.getCorpInfo()).toEqual({ corp_name: 'Life Corp' });
    d.stop();
  });

  it.skipIf(skip)('a device unbound while it was off wipes its stale secret on 600004 and waits for a binding', async () => {
    const sn = 'LIFE0003';
    const d = await newDevice(sn);
    await h.services.binding.bind(SYSTEM_CLI, sn, { type: 'org', id: 'org_life' });
    const sub = next(d, 'subscribed');
    d.start();
    await sub;
    const stale = d.credentials;
    d.stop();
    await h.services.binding.unbind(SYSTEM_CLI, sn);

    // Power on again with the old secret still in flash.
    const again = await newDeviceFrom(stale);
    const restart = next(again, 'restart');
    const waiting = next(again, 'waiting_for_binding');
    again.start();
    expect(await restart).toEqual({ errcode: WsErr.NOT_AUTHORIZED, cmd: 'subscribe_corp', wiped: true });
    await waiting;
    expect(again.credentials.secret).toBeUndefined();
    again.stop();
  });

  async function newDeviceFrom(creds: DeviceCredentials): Promise<Device> {
    const d = new Device({ url, credentials: creds, backoff: { initialMs: 50, maxMs: 500 } });
    devices.push(d);
    return d;
  }

  it.skipIf(skip)('speaks like Lombo firmware: seed exchange, fixed req_ids, numbers as JSON numbers', async () => {
    const sn = 'LIFE0004';
    const d = await newDevice(sn, { reqIds: 'fixed', numbers: 'number' }, true);
    const persisted = next(d, 'persist', (c) => !!c.secretNo);
    const waiting = next(d, 'waiting_for_binding');
    d.start();
    const c = await persisted;
    // The seed was exchanged for this device's own SecretNo, the one the server holds for it.
    expect(c.secretNo).not.toBe(seedSecretNo);
    expect(c.secretNo).toBe(h.deps.secrets.open((await row(sn)).secret_no_enc));
    await waiting;
    const sub = next(d, 'subscribed');
    await h.services.binding.bind(SYSTEM_CLI, sn, { type: 'org', id: 'org_life' });
    await sub;
    // Pings every 30 s are not waited for here; a repeated fixed req_id works for any command.
    expect(await d.getCorpInfo()).toEqual({ corp_name: 'Life Corp' });
    expect(await d.getCorpInfo()).toEqual({ corp_name: 'Life Corp' });
    d.stop();
  });

  it.skipIf(skip)(
    "follows §A2's official order on its own clock; a clock an hour off is set right by one get_timestamp",
    async () => {
      const onTime = await newDevice('LIFE0010', { timeSync: 'on-demand' });
      const late = await newDevice('LIFE0011', { timeSync: 'on-demand', clock: { now: () => Date.now() - 3600_000 } });
      const synced: Record<string, number> = { LIFE0010: 0, LIFE0011: 0 };
      for (const d of [onTime, late]) d.on('time_synced', () => synced[d.sn]!++);
      const waiting = [onTime, late].map((d) => next(d, 'waiting_for_binding'));
      onTime.start();
      late.start();
      await Promise.all(waiting);
      // The device with a good clock never asked; the late one was refused once (600101) and asked once.
      expect(synced).toEqual({ LIFE0010: 0, LIFE0011: 1 });
      expect(Math.abs(late.serverNowSec() - Date.now() / 1000)).toBeLessThan(5);
      const sub = next(onTime, 'subscribed');
      await h.services.binding.bind(SYSTEM_CLI, 'LIFE0010', { type: 'org', id: 'org_life' });
      await sub;
      expect(synced.LIFE0010).toBe(0);
      onTime.stop();
      late.stop();
    },
  );

  it.skipIf(skip)('gets every push of §A6 the server can send, as typed events', async () => {
    const sn = 'LIFE0005';
    const d = await newDevice(sn);
    await h.services.binding.bind(SYSTEM_CLI, sn, { type: 'org', id: 'org_life' });
    const sub = next(d, 'subscribed');
    d.start();
    await sub;
    const restart = next(d, 'push_restart_device');
    await h.services.pushes.sendCommand(SYSTEM_CLI, sn, 'restart');
    expect(await restart).toEqual({});
    const fetch = next(d, 'push_fetch_log');
    await h.services.pushes.sendCommand(SYSTEM_CLI, sn, 'fetch_log', { hint: 'op_logs' });
    expect(await fetch).toEqual({ hint: 'op_logs' });
    // The device answers a log request with the binary upload_log; the server stores it.
    const reply = await d.uploadLog(Buffer.from('2026-11-21 12:00:00 main boot ok\n'));
    expect(reply.errcode).toBe(0);
    const notify = next(d, 'push_selfhelp_notify');
    await d.selfhelpNotify('{"hello":"world"}');
    expect(await notify).toEqual({ data: '{"hello":"world"}' });
    await d.errorReport(-1, 'connect timeout');
    d.stop();
  });

  async function registerMany(prefixSn: string, n: number): Promise<FleetDeviceSpec[]> {
    const out: FleetDeviceSpec[] = [];
    for (let i = 0; i < n; i++) {
      const sn = `${prefixSn}${String(i).padStart(4, '0')}`;
      out.push({ sn, secretNo: (await h.services.devices.register(SYSTEM_CLI, modelId, sn)).secret_no });
    }
    return out;
  }

  /** Polls `counts` until `pred` holds; bounded. */
  async function until(counts: () => FleetCounts, pred: (c: FleetCounts) => boolean): Promise<FleetCounts> {
    const t0 = Date.now();
    for (;;) {
      const c = counts();
      if (pred(c)) return c;
      if (Date.now() - t0 > WAIT) throw new Error(`fleet never got there: ${JSON.stringify(c)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it.skipIf(skip)('the fleet simulator counts devices waiting and subscribed as people bind them', async () => {
    const specs = await registerMany('FLEETA', 30);
    const fleet = new Fleet({ url, devices: specs, maxInFlight: 8, device: { backoff: { initialMs: 50, maxMs: 500 } } });
    const settled: string[] = [];
    fleet.on('settled', (e) => settled.push(e.state));
    fleet.start();
    try {
      const c = await until(
        () => fleet.counts(),
        (x) => x.waiting === 30,
      );
      expect(c).toMatchObject({ total: 30, started: 30, connected: 30, subscribed: 0, errors: 0 });
      expect(settled).toEqual(Array(30).fill('waiting'));
      for (const s of specs.slice(0, 10)) await h.services.binding.bind(SYSTEM_CLI, s.sn, { type: 'org', id: 'org_life' });
      const after = await until(
        () => fleet.counts(),
        (x) => x.subscribed === 10,
      );
      expect(after).toMatchObject({ waiting: 20, subscribed: 10, connected: 30, pushes: 10, errors: 0 });
    } finally {
      fleet.stop();
    }
  });

  it.skipIf(skip)('the simulator spreads devices over worker processes and loopback source addresses', async () => {
    const specs = await registerMany('FLEETB', 20);
    const cluster = await FleetCluster.start({
      url,
      devices: specs,
      processes: 2,
      localAddresses: ['127.0.0.2', '127.0.0.3'],
      maxInFlight: 5,
      reportMs: 50,
    });
    const pushes: Array<{ sn: string; cmd: string; worker: number }> = [];
    cluster.on('push', (p) => pushes.push(p));
    try {
      expect(cluster.pids).toHaveLength(2);
      cluster.startDevices();
      await cluster.waitUntil((c) => c.waiting === 20, WAIT);
      // One device of each worker gets bound: both processes see their push.
      await h.services.binding.bind(SYSTEM_CLI, specs[0]!.sn, { type: 'org', id: 'org_life' });
      await h.services.binding.bind(SYSTEM_CLI, specs[19]!.sn, { type: 'org', id: 'org_life' });
      const c = await cluster.waitUntil((x) => x.subscribed === 2, WAIT);
      expect(c).toMatchObject({ total: 20, connected: 20, waiting: 18, errors: 0 });
      expect(pushes.map((p) => [p.sn, p.cmd, p.worker]).sort()).toEqual([
        [specs[0]!.sn, 'push_bind_corp', 0],
        [specs[19]!.sn, 'push_bind_corp', 1],
      ]);
      await h.app.gateway.flush();
      const addrs = await h.deps.db.kysely
        .selectFrom('devices')
        .select('remote_addr')
        .distinct()
        .where('sn_key', 'like', 'fleetb%')
        .execute();
      expect(addrs.map((a) => a.remote_addr).sort()).toEqual(['127.0.0.2', '127.0.0.3']);
    } finally {
      await cluster.stop();
    }
  });

  it.skipIf(skip)(
    'a simulator warm-up takes other devices through their flow and closes them before the fleet is ready',
    async () => {
      const warm = await registerMany('FLEETW', 6);
      const specs = await registerMany('FLEETM', 4);
      const cluster = await FleetCluster.start({
        url,
        devices: specs,
        processes: 2,
        maxInFlight: 5,
        reportMs: 50,
        warmup: { url, devices: warm },
      });
      const settled: number[] = [];
      cluster.on('settled', (e) => settled.push(e.records.length));
      try {
        // Every warm-up device registered (the flow ran) and none is still connected.
        await h.app.gateway.flush();
        const rows = await h.deps.db.kysely
          .selectFrom('devices')
          .select(['sn', 'registered_net_at'])
          .where('sn_key', 'like', 'fleetw%')
          .execute();
        expect(rows).toHaveLength(6);
        for (const r of rows) expect(r.registered_net_at).not.toBeNull();
        await until(
          () => ({ ...cluster.counts(), connected: h.app.gateway.stats.connections }),
          (x) => x.connected === 0,
        );
        expect(cluster.counts().started).toBe(0);
        cluster.startDevices();
        const c = await cluster.waitUntil((x) => x.waiting === 4, WAIT);
        expect(c).toMatchObject({ total: 4, started: 4, connected: 4, errors: 0 });
        expect(h.app.gateway.stats.connections).toBe(4);
        await cluster.waitUntil(() => settled.reduce((a, b) => a + b, 0) === 4, WAIT);
      } finally {
        await cluster.stop();
      }
    },
  );

  it.skipIf(skip)('`bindery sim` runs a batch manifest, draws a bind QR the server accepts, and reports counts', async () => {
    const specs = await registerMany('FLEETC', 6);
    const manifest = path.join(dataDir, 'secrets.csv');
    writeFileSync(manifest, `SN,SecretNo\r\n${specs.map((s) => `${s.sn},${s.secretNo}`).join('\r\n')}\r\n`);
    const cli = path.resolve(import.meta.dirname, '../../cli/bin/bindery.js');
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      [cli, 'sim', '--json', '--manifest', manifest, '--url', url, '--until', 'settled', '--qr', 'first', '--duration', '20'],
      { env: { ...process.env, BINDERY_DATA_DIR: dataDir }, timeout: 30_000 },
    );
    const doc = JSON.parse(stdout) as { counts: FleetCounts; devices: string[] };
    expect(doc.counts).toMatchObject({ total: 6, waiting: 6, errors: 0 });
    expect(doc.devices).toEqual(specs.map((s) => s.sn));
    // The QR drawn for the first device carries a URL the server accepts as that device's bind code.
    const qrUrl = /(http:\/\/\S+type=qrcode)/.exec(stderr)?.[1];
    expect(qrUrl).toBeDefined();
    const resolved = await h.services.binding.scans.resolve(qrUrl!);
    expect(resolved).toMatchObject({ kind: 'dynamic_bind', validity: 'ok' });
    expect(resolved.device?.sn).toBe(specs[0]!.sn);
  });
});
