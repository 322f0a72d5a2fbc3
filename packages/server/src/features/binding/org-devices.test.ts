import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { type Harness, startHarness } from '../../testing/harness.js';
import { acmeOrg, type Browser, login, type OrgFixture, PASSWORD, vendorWithModels } from '../people/people.fixture.js';

/** Issue 12: an organisation's device list with its filters, csv, bulk unbind and bulk move. */
describe.each(storageBackends())('organisation devices on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let org: OrgFixture;
  let other: OrgFixture;
  let models: Record<string, string>;
  let boss: Browser;
  let salesAdmin: Browser;
  let alice: Browser;

  const sns = (r: { json(): { devices: Array<{ sn: string }> } }) => r.json().devices.map((d) => d.sn);
  const list = (b: Browser, q = '') => b.req('GET', `/api/v1/orgs/${org.orgId}/devices${q}`);
  const results = (r: { json(): { results: unknown[] } }) => r.json().results;
  const place = async (
    o: OrgFixture,
    pk: string,
    sn: string,
    dept: keyof OrgFixture['dept'],
    set: { firmware_version?: string; online?: number; bound_by?: string; remark_name?: string } = {},
  ) => {
    await h.services.devices.register(SYSTEM_CLI, models[pk]!, sn);
    await h.services.binding.bind(SYSTEM_CLI, sn, { type: 'org', id: o.orgId }, { visibleTo: { departments: [o.dept[dept]] } });
    if (Object.keys(set).length) await h.deps.db.kysely.updateTable('devices').set(set).where('sn', '=', sn).execute();
  };

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    ({ models } = await vendorWithModels(h, [
      { name: 'Gate', productKey: 'pkOG' },
      { name: 'Printer', productKey: 'pkOP' },
    ]));
    org = await acmeOrg(h, 'od');
    other = await acmeOrg(h, 'od2');
    boss = await login(h.app, 'boss.od', PASSWORD, '10.20.30.40');
    salesAdmin = await login(h.app, 'salesadmin.od', PASSWORD);
    alice = await login(h.app, 'alice.od', PASSWORD);
    await place(org, 'pkOG', 'OD001', 'salesEast', { firmware_version: '1.0', online: 1, bound_by: `user:${org.users.alice}` });
    await place(org, 'pkOG', 'OD002', 'sales', { firmware_version: '1.1', remark_name: '=HYPERLINK("x")' });
    await place(org, 'pkOP', 'OD003', 'eng', { firmware_version: '1.0', online: 1 });
    await place(org, 'pkOP', 'OD004', 'root');
    await place(other, 'pkOG', 'OD900', 'root');
  });
  afterAll(async () => {
    await h?.close();
  });

  it.skipIf(skip)(
    'filters by department (with sub-departments), model, online, firmware and binder; shows departments',
    async () => {
      expect(sns(await list(boss, `?department_id=${org.dept.sales}`))).toEqual(['OD001', 'OD002']);
      expect(sns(await list(boss, `?model_id=${models.pkOP}&online=true`))).toEqual(['OD003']);
      expect(sns(await list(boss, '?firmware_version=1.0'))).toEqual(['OD001', 'OD003']);
      expect(sns(await list(boss, `?bound_by=${org.users.alice}`))).toEqual(['OD001']);
      expect(sns(await list(boss, '?online=false'))).toEqual(['OD002', 'OD004']);
      expect((await list(boss, '?nonsense=1')).statusCode).toBe(400);
      const first = (await list(boss, '?limit=1')).json().devices[0];
      expect(first).toMatchObject({ sn: 'OD001', departments: [{ id: org.dept.salesEast, name: 'Sales East' }] });
      expect(first.my_actions).toContain('reboot');
      // Another organisation's devices never show, whatever the filter.
      expect(sns(await list(boss, '?q=OD9'))).toEqual([]);
    },
  );

  it.skipIf(skip)('exports the filtered list as csv, formula cells neutralised, for those who may list', async () => {
    const r = await boss.req('GET', `/api/v1/orgs/${org.orgId}/devices.csv?department_id=${org.dept.sales}`);
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/csv/);
    const lines = r.body
      .replace(/^\uFEFF/, '')
      .trim()
      .split('\r\n');
    expect(lines[0]).toBe('sn,name,model,online,firmware_version,departments,bound_by,bound_at,last_seen_at');
    expect(lines.slice(1).map((l) => l.split(',')[0])).toEqual(['OD001', 'OD002']);
    expect(lines[1]).toContain('online,1.0,Sales East,alice');
    expect(lines[2]).toContain(`"'=HYPERLINK(""x"")"`);
    expect((await boss.req('GET', `/api/v1/orgs/${other.orgId}/devices.csv`)).statusCode).toBe(403);
  });

  it.skipIf(skip)(
    'bulk move: each device its own outcome; another organisation’s SN is not found; audited per device',
    async () => {
      const r = await boss.req('POST', `/api/v1/orgs/${org.orgId}/devices/bulk-move`, {
        sns: ['OD001', 'OD004', 'OD900', 'NOPE1'],
        department_id: org.dept.eng,
      });
      expect(r.statusCode).toBe(200);
      expect(results(r)).toEqual([
        { sn: 'OD001', ok: true },
        { sn: 'OD004', ok: true },
        { sn: 'OD900', ok: false, error: { code: 'DEVICE_NOT_FOUND', message: expect.any(String) } },
        { sn: 'NOPE1', ok: false, error: { code: 'DEVICE_NOT_FOUND', message: expect.any(String) } },
      ]);
      expect(sns(await list(boss, `?department_id=${org.dept.eng}`))).toEqual(['OD001', 'OD003', 'OD004']);
      const moved = await h.deps.db.kysely
        .selectFrom('audit_log')
        .selectAll()
        .where('action', '=', 'device.move')
        .orderBy('id')
        .execute();
      expect(moved.map((a) => [a.subject, a.org_id, a.ip])).toEqual([
        ['device:OD001', org.orgId, '10.20.30.40'],
        ['device:OD004', org.orgId, '10.20.30.40'],
      ]);
      expect(JSON.parse(moved[0]!.data!)).toEqual({
        from: { departments: [org.dept.salesEast], users: [] },
        visible_to: { departments: [org.dept.eng], users: [] },
      });
      // Unknown department, or outside a device admin's scope: refused as a whole.
      const bad = await boss.req('POST', `/api/v1/orgs/${org.orgId}/devices/bulk-move`, {
        sns: ['OD002'],
        department_id: 'nope',
      });
      expect(bad.json().error.code).toBe('DEPARTMENT_NOT_FOUND');
      const out = await salesAdmin.req('POST', `/api/v1/orgs/${org.orgId}/devices/bulk-move`, {
        sns: ['OD002'],
        department_id: org.dept.eng,
      });
      expect(out.json().error.code).toBe('OUTSIDE_SCOPE');
    },
  );

  it.skipIf(skip)('bulk move by a device admin: only devices inside the scope', async () => {
    const r = await salesAdmin.req('POST', `/api/v1/orgs/${org.orgId}/devices/bulk-move`, {
      sns: ['OD002', 'OD003'],
      department_id: org.dept.salesEast,
    });
    expect(results(r)).toEqual([
      { sn: 'OD002', ok: true },
      { sn: 'OD003', ok: false, error: expect.objectContaining({ code: 'DEVICE_NOT_FOUND' }) },
    ]);
    expect((await list(boss, `?department_id=${org.dept.salesEast}`)).json().devices[0].departments).toEqual([
      { id: org.dept.salesEast, name: 'Sales East' },
    ]);
  });

  it.skipIf(skip)('bulk unbind: admins only, per device, at most 500', async () => {
    const member = await alice.req('POST', `/api/v1/orgs/${org.orgId}/devices/bulk-unbind`, { sns: ['OD001'] });
    expect(member.statusCode).toBe(403);
    const tooMany = await boss.req('POST', `/api/v1/orgs/${org.orgId}/devices/bulk-unbind`, {
      sns: Array.from({ length: 501 }, (_, i) => `X${i}`),
    });
    expect(tooMany.statusCode).toBe(400);
    // The device admin manages OD002 (Sales East now), not OD001 (Engineering now).
    const scoped = await salesAdmin.req('POST', `/api/v1/orgs/${org.orgId}/devices/bulk-unbind`, { sns: ['OD001', 'OD002'] });
    expect(results(scoped)).toEqual([
      { sn: 'OD001', ok: false, error: expect.objectContaining({ code: 'DEVICE_NOT_FOUND' }) },
      { sn: 'OD002', ok: true },
    ]);
    const r = await boss.req('POST', `/api/v1/orgs/${org.orgId}/devices/bulk-unbind`, { sns: ['OD001', 'OD002'] });
    expect(results(r)).toEqual([
      { sn: 'OD001', ok: true },
      { sn: 'OD002', ok: false, error: expect.objectContaining({ code: 'DEVICE_NOT_FOUND' }) },
    ]);
    expect(sns(await list(boss))).toEqual(['OD003', 'OD004']);
    const unbinds = await h.deps.db.kysely
      .selectFrom('audit_log')
      .select(['subject', 'org_id'])
      .where('action', '=', 'device.unbind')
      .orderBy('id')
      .execute();
    expect(unbinds).toEqual([
      { subject: 'device:OD002', org_id: org.orgId },
      { subject: 'device:OD001', org_id: org.orgId },
    ]);
  });
});
