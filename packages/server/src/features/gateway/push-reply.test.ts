import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { type GatewayHarness, startGatewayHarness } from './gateway.testkit.js';
import { registerBody, subscribeDevice, WireDevice } from './wire-device.js';

/** A device's answers to pushes and failed durable commands, over real sockets (docs/protocol.md P-PUSH-7). */
describe.each(storageBackends())('answers to pushes on $backend.name', ({ backend, skip }) => {
  let g: GatewayHarness;
  const open: WireDevice[] = [];
  const connect = async () => {
    const d = await WireDevice.connect(g.url);
    open.push(d);
    return d;
  };
  const commands = (sn: string) => g.h.services.pushes.listCommands(SYSTEM_CLI, sn);
  const pong = async (d: WireDevice) =>
    expect(await d.request('ping', undefined, 'lb_ping')).toEqual({ headers: { req_id: 'lb_ping' }, errcode: 0, errmsg: 'ok' });

  beforeAll(async () => {
    if (skip) return;
    g = await startGatewayHarness(backend);
  });
  afterAll(async () => {
    await Promise.all(open.map((d) => d.close()));
    await g?.close();
  });

  it.skipIf(skip)('never answers a reply-shaped frame; other cmd-less frames still get MALFORMED_FRAME (P-F-5)', async () => {
    const d = await connect();
    // Anonymous: nothing to fail, nothing answered.
    d.sendJson({ headers: { req_id: 'cmd_nothing' }, errcode: 5, errmsg: 'no' });
    d.sendJson({ headers: { req_id: 'push_x' }, errcode: '0' });
    await pong(d);
    // Not a reply: no integer errcode, or no req_id.
    d.sendJson({ headers: { req_id: 'r1' }, errcode: 'five' });
    expect((await d.nextReply())!.json).toMatchObject({ errcode: 600105, headers: { req_id: 'r1' } });
    d.sendJson({ headers: { req_id: 'r2' }, errcode: 1.5 });
    expect((await d.nextReply())!.json).toMatchObject({ errcode: 600105, headers: { req_id: 'r2' } });
    d.sendJson({ errcode: 7 });
    const bare = (await d.nextReply())!.json!;
    expect(bare.errcode).toBe(600105);
    expect(bare).not.toHaveProperty('headers');
    expect(d.isOpen).toBe(true);
  });

  it.skipIf(skip)(
    "fails only the answering device's own delivered command: not another device's, not a live push, not errcode 0",
    async () => {
      const [a, b] = ['ACKA0001', 'ACKB0001'];
      const secretA = await g.addDevice(a);
      const secretB = await g.addDevice(b);
      // B waits registered; its binding reaches it live, as a push_… push that nothing stores.
      const db = await connect();
      expect((await db.request('register', registerBody(b, secretB, g.nowSec()))).errcode).toBe(0);
      const bindB = db.push('push_bind_corp');
      await g.bind(b);
      const livePushId = ((await bindB).headers as { req_id: string }).req_id;
      expect(livePushId).toMatch(/^push_/);
      db.sendJson({ headers: { req_id: livePushId }, errcode: 9, errmsg: 'refused' });
      await pong(db);

      await g.bind(a);
      const da = await connect();
      await subscribeDevice(da, a, secretA, g.nowSec());
      const sent = await g.h.services.pushes.sendCommand(SYSTEM_CLI, a, 'restart');
      expect(sent.outcome).toBe('delivered');
      const id = sent.command_id!;
      expect(((await da.push('push_restart_device')).headers as { req_id: string }).req_id).toBe(id);

      // B names A's command: nothing changes. A says 0: still delivered.
      db.sendJson({ headers: { req_id: id }, errcode: 3, errmsg: 'not mine' });
      await pong(db);
      da.sendJson({ headers: { req_id: id }, errcode: 0, errmsg: 'ok' });
      await pong(da);
      const before = (await commands(a)).find((c) => c.id === id)!;
      expect(before).toMatchObject({ status: 'delivered', failed_at: null, fail_code: null });

      // A refuses it: failed, with no errmsg read as its code.
      da.sendJson({ headers: { req_id: id }, errcode: -2 });
      await expect.poll(async () => (await commands(a)).find((c) => c.id === id)?.status).toBe('failed');
      expect((await commands(a)).find((c) => c.id === id)).toMatchObject({ fail_code: -2, fail_reason: 'errcode -2' });
      const pushes = await g.h.deps.metrics.registry.getSingleMetricAsString('bindery_gateway_pushes_total');
      expect(pushes).toMatch(/bindery_gateway_pushes_total\{cmd="push_restart_device",outcome="failed"\} 1/);
      // B's live bind push left no command behind to fail.
      expect((await commands(b)).every((c) => c.status !== 'failed')).toBe(true);
    },
  );

  it.skipIf(skip)(
    'ends a command claimed for a socket that closed before it was written as failed, without an errcode',
    async () => {
      const sn = 'ACKC0001';
      const secretNo = await g.addDevice(sn);
      await g.bind(sn);
      const d = await connect();
      await subscribeDevice(d, sn, secretNo, g.nowSec());
      const gw = g.h.app.gateway;
      const conn = gw.connectionOf(sn.toLowerCase())!;
      // A command waiting for the device, then its socket starts closing just as pending commands go out.
      await g.h.services.pushes.commands.insert({
        id: 'cmd_0000unsent0001',
        device_id: conn.device!.id,
        cmd: 'push_restart_device',
        body: null,
        created_by: 'test',
        created_at: g.h.clock.now(),
        expires_at: g.h.clock.now() + 60_000,
        delivered_at: null,
        delivered_node: null,
        failed_at: null,
        fail_code: null,
        fail_reason: null,
      });
      conn.ws.close(1000, 'test: closing');
      await gw.deliverPending(conn);
      const row = (await commands(sn)).find((c) => c.id === 'cmd_0000unsent0001')!;
      expect(row).toMatchObject({
        status: 'failed',
        fail_code: null,
        fail_reason: 'the connection closed before the command was written',
      });
      expect(row.delivered_at).not.toBeNull();
    },
  );
});
