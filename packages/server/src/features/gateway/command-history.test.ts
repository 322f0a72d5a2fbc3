import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Principal, SYSTEM_CLI, type VendorRole } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { bearer, type Harness, startHarness } from '../../testing/harness.js';

/**
 * Issue 13 item 9: a device's command history (GET /api/v1/devices/{sn}/commands) for its vendor and
 * for the organisation admins who manage it; members who only see the device, admins of other
 * departments and strangers are refused.
 */
describe.each(storageBackends())('a device command history on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let sn: string;
  let personalSn: string;
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
    const model = (await s.models.create(SYSTEM_CLI, vendor.id, { name: 'Hist Lock', product_key: 'pkHist' })).model.model_id;
    sn = 'HIST0001';
    personalSn = 'HIST0002';
    await s.devices.register(SYSTEM_CLI, model, sn);
    await s.devices.register(SYSTEM_CLI, model, personalSn);

    const boss = await user('boss');
    const { organisation: org } = await s.organisations.create(SYSTEM_CLI, {
      name: 'Hist Org',
      superAdmin: { userId: (boss as { userId: string }).userId },
    });
    const lab = (await s.organisations.createDepartment(boss, org.id, { name: 'Lab' })).id;
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
});
