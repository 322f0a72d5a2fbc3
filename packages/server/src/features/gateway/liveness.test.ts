import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { bearer } from '../../testing/harness.js';
import { type GatewayHarness, startGatewayHarness } from './gateway.testkit.js';
import { subscribeDevice, WireDevice } from './wire-device.js';

/**
 * Durable commands for offline devices (P-PUSH-5), the offline timeout (P-LIVE-1/2) and batched
 * state writes (P-LIVE-3), with the injected clock moved by hand and the sweeper run on demand.
 */
describe.each(storageBackends())('gateway liveness and durable commands on $backend.name', ({ backend, skip }) => {
  let g: GatewayHarness;
  const open: WireDevice[] = [];
  const connect = async () => {
    const d = await WireDevice.connect(g.url);
    open.push(d);
    return d;
  };
  const api = (method: 'GET' | 'POST', url: string, payload?: object) =>
    g.h.app.inject({ method, url, headers: bearer(g.h.operatorToken), ...(payload ? { payload } : {}) });
  const row = (sn: string) =>
    g.h.deps.db.kysely.selectFrom('devices').selectAll().where('sn_key', '=', sn.toLowerCase()).executeTakeFirstOrThrow();
  const statuses = async (sn: string) =>
    (await api('GET', `/api/v1/devices/${sn}/commands`))
      .json()
      .commands.map((c: { cmd: string; status: string }) => [c.cmd, c.status]);

  beforeAll(async () => {
    if (skip) return;
    g = await startGatewayHarness(backend);
  });
  afterAll(async () => {
    await Promise.all(open.map((d) => d.close()));
    await g?.close();
  });

  it.skipIf(skip)('stores commands for an offline device and delivers them once, in order, on its next subscribe', async () => {
    const sn = 'DUR00001';
    const secretNo = await g.addDevice(sn);
    await g.bind(sn);
    await g.h.services.firmware.publishUrl(SYSTEM_CLI, g.modelId, {
      version: '3.0.0',
      download_url: 'https://cdn.example.com/3.bin',
      md5sum: 'a'.repeat(32),
      size: 1,
    });

    const queued: string[] = [];
    for (const body of [{ cmd: 'update_firmware' }, { cmd: 'fetch_log', hint: 'op_logs' }, { cmd: 'restart' }]) {
      const r = await api('POST', `/api/v1/devices/${sn}/commands`, body);
      expect(r.json().outcome).toBe('queued');
      queued.push(r.json().command_id);
    }
    // A non-durable push to an offline device is dropped, and says so.
    const scan = await g.h.services.pushes.userScan(sn, { userid: 'u', op_type: 'o', oper_id: '1', state: 's', user_type: 0 });
    expect(scan.outcome).toBe('offline');
    // The bind happened while the device was away: its push_bind_corp waits too (finding 8).
    expect(await statuses(sn)).toEqual([
      ['push_restart_device', 'pending'],
      ['push_fetch_log', 'pending'],
      ['push_update_firmware', 'pending'],
      ['push_bind_corp', 'pending'],
    ]);

    // Registered but not logged in: still queued (P-PUSH-3).
    const d = await connect();
    const { secret } = await subscribeDevice(d, sn, secretNo, g.nowSec());
    const all = await Promise.all([d.push('push_update_firmware'), d.push('push_fetch_log'), d.push('push_restart_device')]);
    expect(d.pushes.map((p) => p.cmd)).toEqual([
      'push_bind_corp',
      'push_update_firmware',
      'push_fetch_log',
      'push_restart_device',
    ]);
    expect(all.map((p) => (p.headers as { req_id: string }).req_id)).toEqual(queued);
    expect(all[1]!.body).toEqual({ hint: 'op_logs' });
    expect(await statuses(sn)).toEqual([
      ['push_restart_device', 'delivered'],
      ['push_fetch_log', 'delivered'],
      ['push_update_firmware', 'delivered'],
      ['push_bind_corp', 'delivered'],
    ]);

    // Once: a second subscribe, and a new connection, get nothing again.
    expect((await d.request('subscribe_corp', { secret, firmware_version: '1' })).errcode).toBe(0);
    await d.close();
    const e = await connect();
    await subscribeDevice(e, sn, secretNo, g.nowSec());
    expect((await e.request('ping')).errcode).toBe(0);
    expect(e.pushes).toEqual([]);
  });

  it.skipIf(skip)('drops a durable command that expired before the device came back', async () => {
    const sn = 'DUR00002';
    const secretNo = await g.addDevice(sn);
    await g.bind(sn);
    const r = await api('POST', `/api/v1/devices/${sn}/commands`, { cmd: 'restart', ttl_sec: 60 });
    expect(r.json().outcome).toBe('queued');
    const kept = await api('POST', `/api/v1/devices/${sn}/commands`, { cmd: 'fetch_log', ttl_sec: 3600 });
    g.h.clock.advance(61_000);
    expect(await statuses(sn)).toEqual([
      ['push_fetch_log', 'pending'],
      ['push_restart_device', 'expired'],
      ['push_bind_corp', 'pending'],
    ]);
    const d = await connect();
    await subscribeDevice(d, sn, secretNo, g.nowSec());
    const p = await d.push('push_fetch_log');
    expect((p.headers as { req_id: string }).req_id).toBe(kept.json().command_id);
    expect((await d.request('ping')).errcode).toBe(0);
    expect(d.pushes.map((x) => x.cmd)).toEqual(['push_bind_corp', 'push_fetch_log']);
  });

  it.skipIf(skip)(
    'closes a device after 90 s without a frame and records it offline; frames keep it online (P-LIVE-1/2)',
    async () => {
      const sn = 'LIVE0001';
      const secretNo = await g.addDevice(sn);
      await g.bind(sn);
      const d = await connect();
      await subscribeDevice(d, sn, secretNo, g.nowSec());
      const gw = g.h.app.gateway;
      await gw.flush();
      expect((await row(sn)).online).toBe(1);

      // 60 s, a ping, 60 s more: 120 s connected but never 90 s silent.
      g.h.clock.advance(60_000);
      expect((await d.request('ping')).errcode).toBe(0);
      g.h.clock.advance(60_000);
      await gw.sweep();
      expect(d.isOpen).toBe(true);
      expect((await row(sn)).online).toBe(1);

      g.h.clock.advance(90_000);
      await gw.sweep();
      await d.closed;
      expect(gw.connectionOf(sn.toLowerCase())).toBeUndefined();
      const r = await row(sn);
      expect(r.online).toBe(0);
      expect(r.node_id).toBeNull();
      // last_seen_at is the last frame, not the sweep.
      expect(r.last_seen_at).toBe(g.h.clock.now() - 150_000);
      // Offline now: a push that is not durable is dropped.
      expect((await g.h.services.pushes.push(sn, 'push_restart_device')).outcome).toBe('offline');
    },
  );

  it.skipIf(skip)('batches last-seen writes: pings within the resolution write nothing (P-LIVE-3)', async () => {
    const sn = 'LIVE0002';
    const secretNo = await g.addDevice(sn);
    await g.bind(sn);
    const d = await connect();
    await subscribeDevice(d, sn, secretNo, g.nowSec());
    const gw = g.h.app.gateway;
    await gw.flush();
    const t0 = (await row(sn)).last_seen_at!;
    // Ten pings over 20 s, a flush after each: the stored value does not move.
    for (let i = 0; i < 10; i++) {
      g.h.clock.advance(2_000);
      expect((await d.request('ping')).errcode).toBe(0);
      await gw.flush();
      expect((await row(sn)).last_seen_at).toBe(t0);
    }
    // Past the 30 s resolution, the next flush writes the latest frame time.
    g.h.clock.advance(11_000);
    expect((await d.request('ping')).errcode).toBe(0);
    const lastPing = g.h.clock.now();
    await gw.flush();
    expect((await row(sn)).last_seen_at).toBe(lastPing);
  });

  it.skipIf(skip)('marks devices left online by a dead node offline once their last_seen is stale (P-LIVE-4)', async () => {
    const sn = 'LIVE0003';
    await g.addDevice(sn);
    const now = g.h.clock.now();
    await g.h.deps.db.kysely
      .updateTable('devices')
      .set({ online: 1, node_id: 'crashed-node', last_seen_at: now - 10 * 60_000 })
      .where('sn_key', '=', sn.toLowerCase())
      .execute();
    const fresh = 'LIVE0004';
    await g.addDevice(fresh);
    await g.h.deps.db.kysely
      .updateTable('devices')
      .set({ online: 1, node_id: 'other-node', last_seen_at: now - 60_000 })
      .where('sn_key', '=', fresh.toLowerCase())
      .execute();
    await g.h.app.gateway.maintain();
    expect((await row(sn)).online).toBe(0);
    expect((await row(fresh)).online).toBe(1);
  });
});
