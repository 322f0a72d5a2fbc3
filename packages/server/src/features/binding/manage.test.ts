import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { type Harness, startHarness } from '../../testing/harness.js';
import { acmeOrg, type Browser, login, type OrgFixture, PASSWORD, vendorWithModels } from '../people/people.fixture.js';
import { verifCodeFor } from './scan.js';

describe.each(storageBackends())('device lists and the device page on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let org: OrgFixture;
  let models: Record<string, string>;
  let boss: Browser;
  let salesAdmin: Browser;
  let alice: Browser;
  let dataDir: string;

  const sns = (r: { json(): { devices: Array<{ sn: string }> } }) => r.json().devices.map((d) => d.sn);
  const list = (b: Browser, q = '') => b.req('GET', `/api/v1/orgs/${org.orgId}/devices${q}`);

  beforeAll(async () => {
    if (skip) return;
    dataDir = mkdtempSync(path.join(tmpdir(), 'bindery-manage-'));
    h = await startHarness(backend, { config: { BINDERY_DATA_DIR: dataDir } });
    ({ models } = await vendorWithModels(h, [
      { name: 'Gate', productKey: 'pkG' },
      { name: 'Printer', productKey: 'pkP' },
    ]));
    org = await acmeOrg(h, 'mg', { memberBinding: true });
    boss = await login(h.app, 'boss.mg', PASSWORD);
    salesAdmin = await login(h.app, 'salesadmin.mg', PASSWORD);
    alice = await login(h.app, 'alice.mg', PASSWORD);
    const place = async (
      pk: string,
      sn: string,
      dept: keyof OrgFixture['dept'],
      opts: { remark?: string; imei?: string; online?: boolean } = {},
    ) => {
      await h.services.devices.register(SYSTEM_CLI, models[pk]!, sn);
      await h.services.binding.bind(
        SYSTEM_CLI,
        sn,
        { type: 'org', id: org.orgId },
        { visibleTo: { departments: [org.dept[dept]] }, remarkName: opts.remark },
      );
      await h.deps.db.kysely
        .updateTable('devices')
        .set({ device_key: opts.imei ?? null, device_key_norm: opts.imei ?? null, online: opts.online ? 1 : 0 })
        .where('sn', '=', sn)
        .execute();
    };
    await place('pkG', 'GATE001', 'salesEast', { remark: 'North Entrance', imei: '860000000000011', online: true });
    await place('pkG', 'GATE002', 'sales', { remark: 'South entrance' });
    await place('pkG', 'GATE003', 'eng', { imei: '860000000000033' });
    await place('pkP', 'PRN001', 'salesEast', { remark: 'Copier', online: true });
    await place('pkP', 'PRN002', 'root');
    // Alice binds one herself (member binding is on).
    const gate4 = await h.services.devices.register(SYSTEM_CLI, models.pkG!, 'GATE004');
    const verif_code = verifCodeFor(gate4.secret_no, 'GATE004');
    expect(
      (await alice.req('POST', '/api/v1/bind', { sn: 'GATE004', verif_code, owner: { type: 'org', id: org.orgId } })).statusCode,
    ).toBe(201);
  });
  afterAll(async () => {
    await h?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it.skipIf(skip)(
    'searches SN and IMEI by prefix and remark name by part, and filters by model, online and department',
    async () => {
      expect(sns(await list(boss, '?q=gate00'))).toEqual(['GATE001', 'GATE002', 'GATE003', 'GATE004']);
      expect(sns(await list(boss, '?q=8600000000000'))).toEqual(['GATE001', 'GATE003']);
      expect(sns(await list(boss, '?q=ENTRANCE'))).toEqual(['GATE001', 'GATE002']);
      expect(sns(await list(boss, '?q=100%25'))).toEqual([]);
      expect(sns(await list(boss, `?model_id=${models.pkP}`))).toEqual(['PRN001', 'PRN002']);
      expect(sns(await list(boss, '?online=true'))).toEqual(['GATE001', 'PRN001']);
      expect(sns(await list(boss, `?department_id=${org.dept.sales}`))).toEqual(['GATE001', 'GATE002', 'PRN001', 'GATE004']);
      expect(sns(await list(boss, `?department_id=${org.dept.eng}`))).toEqual(['GATE003']);
      expect(sns(await list(alice, ''))).toEqual(['GATE004']);
      expect(sns(await list(salesAdmin, '?q=gate'))).toEqual(['GATE001', 'GATE002', 'GATE004']);
      expect(sns(await list(salesAdmin, '?bound_by_me=true'))).toEqual([]);
    },
  );

  it.skipIf(skip)('pages with a cursor; a bad cursor is refused', async () => {
    const p1 = await list(boss, '?limit=4');
    expect(sns(p1)).toEqual(['GATE001', 'GATE002', 'GATE003', 'PRN001']);
    const p2 = await list(boss, `?limit=4&cursor=${p1.json().next_cursor}`);
    expect(sns(p2)).toEqual(['PRN002', 'GATE004']);
    expect(p2.json().next_cursor).toBeNull();
    expect((await list(boss, '?cursor=bm90LWEtbnVtYmVy')).statusCode).toBe(400);
    const card = p1.json().devices[0];
    expect(card).toMatchObject({
      sn: 'GATE001',
      model_name: 'Gate',
      remark_name: 'North Entrance',
      default_name: 'Gate GATE001',
      online: true,
      owner: { type: 'org', id: org.orgId, name: 'Acme mg' },
      bound_by: null,
      my_actions: ['view', 'rename', 'firmware_upgrade', 'unbind', 'reboot', 'fetch_log'],
    });
    // Alice (Sales East) sees what she bound, and read-only what her range holds: devices visible to
    // Sales East, to Sales above it and to the whole organisation; not Engineering's (issue 12).
    const mine = await alice.req('GET', '/api/v1/me/devices');
    expect(sns(mine)).toEqual(['GATE001', 'GATE002', 'PRN001', 'PRN002', 'GATE004']);
    const actions = Object.fromEntries(
      mine.json().devices.map((d: { sn: string; my_actions: string[] }) => [d.sn, d.my_actions]),
    );
    expect(actions).toEqual({
      GATE001: ['view'],
      GATE002: ['view'],
      PRN001: ['view'],
      PRN002: ['view'],
      GATE004: ['view', 'rename', 'firmware_upgrade', 'unbind'],
    });
    expect(mine.json().devices.find((d: { sn: string }) => d.sn === 'GATE004')).toMatchObject({
      bound_by: { user_id: alice.userId, display_name: 'alice' },
      owner: { type: 'org', id: org.orgId, name: 'Acme mg' },
    });
    // Her page of a device in range is read-only: she may look, not rename.
    const seen = await alice.req('GET', '/api/v1/devices/GATE001/page');
    expect(seen.statusCode).toBe(200);
    expect(seen.json().my_actions).toEqual(['view']);
    expect((await alice.req('PUT', '/api/v1/devices/GATE001/remark-name', { remark_name: 'mine now' })).statusCode).toBe(403);
    // Outside her range: not even its page.
    expect((await alice.req('GET', '/api/v1/devices/GATE003/page')).statusCode).toBe(404);
  });

  it.skipIf(skip)('the device page: firmware, admins, range, error reports; logs only for those who may fetch them', async () => {
    await h.services.firmware.publishUrl(SYSTEM_CLI, models.pkG!, {
      version: '3.1.0',
      download_url: 'https://files.example/gate-3.1.0.bin',
      md5sum: 'a'.repeat(32),
      size: 10,
      make_current: true,
    });
    const d = await h.deps.db.kysely.selectFrom('devices').select('id').where('sn', '=', 'GATE004').executeTakeFirstOrThrow();
    await h.deps.db.kysely.updateTable('devices').set({ firmware_version: '3.0.0' }).where('id', '=', d.id).execute();
    await h.services.deviceLogs.recordError(SYSTEM_CLI, { id: d.id, sn: 'GATE004' }, -1, 'connect timeout');
    const log = await h.services.deviceLogs.storeLog(
      SYSTEM_CLI,
      { id: d.id, sn: 'GATE004' },
      'req-1',
      Buffer.from('log line\n'),
      10,
    );

    const admin = (await salesAdmin.req('GET', '/api/v1/devices/GATE004/page')).json();
    expect(admin.firmware).toEqual({
      current: '3.0.0',
      latest: expect.objectContaining({ version: '3.1.0' }),
      upgrade_available: true,
    });
    expect(admin.admins.map((a: { user_id: string }) => a.user_id).sort()).toEqual([org.users.boss, org.users.salesAdmin].sort());
    expect(admin.visible_to.departments).toEqual([{ id: org.dept.salesEast, name: 'Sales East' }]);
    expect(admin.error_reports).toEqual([expect.objectContaining({ errcode: -1, errmsg: 'connect timeout' })]);
    expect(admin.logs).toEqual([
      expect.objectContaining({ id: log.id, download: `/api/v1/devices/GATE004/page/logs/${log.id}` }),
    ]);
    expect(admin.user_type).toBe(1);
    const file = await salesAdmin.req('GET', admin.logs[0].download);
    expect(file.statusCode).toBe(200);
    expect(file.body).toBe('log line\n');

    const member = (await alice.req('GET', '/api/v1/devices/GATE004/page')).json();
    expect(member.user_type).toBe(0);
    expect(member.logs).toEqual([]);
    expect(member.error_reports).toHaveLength(1);
    expect(member.admins).toHaveLength(2);
    expect((await alice.req('GET', admin.logs[0].download)).statusCode).toBe(403);

    const renamed = await alice.req('PUT', '/api/v1/devices/GATE004/remark-name', { remark_name: '  Side door  ' });
    expect(renamed.json().device.remark_name).toBe('Side door');
    const cleared = await alice.req('PUT', '/api/v1/devices/GATE004/remark-name', { remark_name: null });
    expect(cleared.json().device.remark_name).toBeNull();
    const long = await alice.req('PUT', '/api/v1/devices/GATE004/remark-name', { remark_name: 'x'.repeat(65) });
    expect(long.statusCode).toBe(400);
    const noFw = await boss.req('POST', '/api/v1/devices/PRN001/actions/upgrade-firmware');
    expect(noFw.statusCode).toBe(404);
    expect(noFw.json().error.message).toMatch(/no published firmware/);
  });
});
