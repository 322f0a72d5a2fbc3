import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Principal, SYSTEM_CLI, type VendorRole } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { bearer, type Harness, startHarness } from '../../testing/harness.js';
import { subscribeDevice, WireDevice } from './wire-device.js';

/**
 * Issue 13 item 9: a device's command history (GET /api/v1/devices/{sn}/commands) for its vendor and
 * for the organisation admins who manage it; members who only see the device, admins of other
 * departments and strangers are refused. Outcomes: pending (queued), delivered, expired, and failed
 * when the device answers a command with an error (P-PUSH-7).
 */
describe.each(storageBackends())('a device command history on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let sn: string;
  let personalSn: string;
  let model: string;
  let lab: string;
  let orgId: string;
  const sockets: WireDevice[] = [];
  const tokens: Record<string, string> = {};

  const user = async (name: string): Promise<Principal> => {
    const u = await h.services.accounts.createUser(SYSTEM_CLI, { username: `${name}.hist`, password: 'a long password here' });
    const p: Principal = { kind: 'user', userId: u.id, isOperator: false };
    tokens[name] = (await h.services.people.createToken(p, 't')).token;
    return p;
  };

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    const s = h.services;
    const vendor = await s.vendors.create(SYSTEM_CLI, { name: 'Hist Vendor' });
    model = (await s.models.create(SYSTEM_CLI, vendor.id, { name: 'Hist Lock', product_key: 'pkHist' })).model.model_id;
    sn = 'HIST0001';
    personalSn = 'HIST0002';
    await s.devices.register(SYSTEM_CLI, model, sn);
    await s.devices.register(SYSTEM_CLI, model, personalSn);

    const boss = await user('boss');
    const { organisation: org } = await s.organisations.create(SYSTEM_CLI, {
      name: 'Hist Org',
      superAdmin: { userId: (boss as { userId: string }).userId },
    });
    orgId = org.id;
    lab = (await s.organisations.createDepartment(boss, org.id, { name: 'Lab' })).id;
    const shop = (await s.organisations.createDepartment(boss, org.id, { name: 'Shop' })).id;
    const add = async (name: string, role: 'device_admin' | 'member', dept: string) => {
      const p = (await user(name)) as { userId: string };
      await s.organisations.addMember(SYSTEM_CLI, org.id, {
        userId: p.userId,
        role,
        departmentId: dept,
        ...(role === 'device_admin' ? { scope: [dept] } : {}),
      });
    };
    await add('labAdmin', 'device_admin', lab);
    await add('shopAdmin', 'device_admin', shop);
    await add('labMember', 'member', lab);
    await user('stranger');
    const owner = (await user('owner')) as { userId: string };
    for (const [name, role] of [
      ['engineer', 'engineer'],
      ['production', 'production'],
    ] as Array<[string, VendorRole]>) {
      const p = await user(name);
      await s.vendorPeople.acceptInvite((await s.vendorPeople.createInvite(SYSTEM_CLI, vendor.id, { role })).token, p);
      tokens[name] = (await s.people.createToken(p, 'again')).token;
    }
    await s.binding.bind(SYSTEM_CLI, sn, { type: 'org', id: org.id }, { visibleTo: { departments: [lab] } });
    await s.binding.bind(SYSTEM_CLI, personalSn, { type: 'user', id: owner.userId });

    // The device is offline: both commands wait (queued); the first expires after its minute.
    await s.pushes.sendCommand(SYSTEM_CLI, sn, 'restart', { ttlSec: 60 });
    h.clock.advance(61_000);
    await s.pushes.sendCommand(SYSTEM_CLI, sn, 'fetch_log', { hint: 'boot' });
    await s.pushes.sendCommand(SYSTEM_CLI, personalSn, 'restart');
  });
  afterAll(async () => {
    await Promise.all(sockets.map((d) => d.close()));
    await h?.close();
  });

  const history = (who: string, device = sn) =>
    h.app.inject({ method: 'GET', url: `/api/v1/devices/${device}/commands`, headers: bearer(tokens[who] ?? who) });

  it.skipIf(skip)("shows the same history to the vendor's people and to the admins who manage the device", async () => {
    // The bind's own push waits for the device too (durable), before the two commands.
    const want = [
      ['push_fetch_log', 'pending'],
      ['push_restart_device', 'expired'],
      ['push_bind_corp', 'pending'],
    ];
    for (const who of ['boss', 'labAdmin', 'engineer', 'production', h.operatorToken]) {
      const r = await history(who);
      expect(r.statusCode, who).toBe(200);
      const cmds = r.json().commands as Array<{ cmd: string; status: string; created_at: string; expires_at: string }>;
      expect(cmds.map((c) => [c.cmd, c.status])).toEqual(want);
      expect(Date.parse(cmds[1]!.expires_at)).toBeLessThan(Date.parse(cmds[0]!.created_at));
      expect((cmds[0] as { body?: unknown }).body).toEqual({ hint: 'boot' });
    }
    // A personal device: its owner manages it.
    const own = await history('owner', personalSn);
    expect(own.statusCode).toBe(200);
    expect((own.json().commands as Array<{ cmd: string }>).map((c) => c.cmd)).toEqual(['push_restart_device', 'push_bind_corp']);
  });

  it.skipIf(skip)('refuses a member who only sees the device, an admin of another department and strangers', async () => {
    const member = await history('labMember');
    expect(member.statusCode).toBe(403);
    expect(member.json().error.code).toBe('FORBIDDEN');
    for (const who of ['shopAdmin', 'stranger', 'owner']) {
      const r = await history(who);
      expect(r.statusCode, who).toBe(404);
      expect(r.json().error.code).toBe('DEVICE_NOT_FOUND');
    }
    expect((await history('boss', personalSn)).statusCode).toBe(404);
    // Another vendor's key: the vendor's refusal stands (it is nobody's admin).
    const other = await h.services.vendors.create(SYSTEM_CLI, { name: 'Other' });
    const key = (await h.services.accounts.createVendorKey(SYSTEM_CLI, other.id, 'k')).token;
    expect((await history(key)).statusCode).toBe(403);
  });

  it.skipIf(skip)(
    'shows a command the device answered with an error as failed, with its errcode and reason, to the vendor and the org admins (P-PUSH-7)',
    async () => {
      const s = h.services;
      const failSn = 'HIST0003';
      const secretNo = (await s.devices.register(SYSTEM_CLI, model, failSn)).secret_no;
      await s.binding.bind(SYSTEM_CLI, failSn, { type: 'org', id: orgId }, { visibleTo: { departments: [lab] } });
      // Queued while the device is offline, then delivered right after its subscribe (P-PUSH-5).
      const queued = await s.pushes.sendCommand(SYSTEM_CLI, failSn, 'restart');
      expect(queued.outcome).toBe('queued');

      // A real device socket: the gateway on a real port.
      await h.app.listen({ port: 0, host: '127.0.0.1' });
      const d = await WireDevice.connect(`ws://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`);
      sockets.push(d);
      await subscribeDevice(d, failSn, secretNo, Math.floor(h.clock.now() / 1000));
      const bindPush = await d.push('push_bind_corp');
      const reboot = await d.push('push_restart_device');
      const rebootId = (reboot.headers as { req_id: string }).req_id;
      expect(rebootId).toBe(queued.command_id);

      // The device takes the binding (errcode 0) and refuses the reboot; neither answer is answered.
      d.sendJson({ headers: (bindPush as { headers: unknown }).headers, errcode: 0, errmsg: 'ok' });
      d.sendJson({ headers: { req_id: rebootId }, errcode: 600201, errmsg: 'battery too low to reboot' });
      expect(await d.request('ping', undefined, 'lb_ping')).toEqual({ headers: { req_id: 'lb_ping' }, errcode: 0, errmsg: 'ok' });

      // A live command (the device is online now) refused with a digit-string errcode and a long errmsg.
      const live = await s.pushes.sendCommand(SYSTEM_CLI, failSn, 'fetch_log', { hint: 'main' });
      expect(live.outcome).toBe('delivered');
      const fetch = await d.push('push_fetch_log');
      expect((fetch.headers as { req_id: string }).req_id).toBe(live.command_id);
      d.sendJson({ headers: { req_id: live.command_id }, errcode: '17', errmsg: `disk full ${'x'.repeat(400)}` });
      // Only the first failure counts: a second answer changes nothing.
      d.sendJson({ headers: { req_id: rebootId }, errcode: 1, errmsg: 'second thoughts' });
      expect((await d.request('ping', undefined, 'lb_ping')).errcode).toBe(0);

      type Cmd = {
        id: string;
        cmd: string;
        status: string;
        failed_at: string | null;
        fail_code: number | null;
        fail_reason: string | null;
      };
      await expect
        .poll(async () => ((await history('engineer', failSn)).json().commands as Cmd[]).map((c) => c.status))
        .toEqual(['failed', 'failed', 'delivered']);
      for (const who of ['engineer', 'production', 'boss', 'labAdmin', h.operatorToken]) {
        const r = await history(who, failSn);
        expect(r.statusCode, who).toBe(200);
        const [fetchLog, restart, bind] = r.json().commands as Cmd[];
        expect(restart, who).toMatchObject({
          id: rebootId,
          cmd: 'push_restart_device',
          status: 'failed',
          fail_code: 600201,
          fail_reason: 'battery too low to reboot',
        });
        expect(Date.parse(restart!.failed_at!)).toBe(h.clock.now());
        expect(fetchLog, who).toMatchObject({ cmd: 'push_fetch_log', status: 'failed', fail_code: 17 });
        expect(fetchLog!.fail_reason).toBe(`disk full ${'x'.repeat(246)}`);
        expect(bind, who).toMatchObject({
          cmd: 'push_bind_corp',
          status: 'delivered',
          failed_at: null,
          fail_code: null,
          fail_reason: null,
        });
      }
      // A member who only sees the device still reads nothing of it.
      expect((await history('labMember', failSn)).statusCode).toBe(403);
    },
  );
});
