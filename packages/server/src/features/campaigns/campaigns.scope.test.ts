import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { type Harness, startHarness } from '../../testing/harness.js';
import { acmeOrg, asUser, type Browser, login, type OrgFixture, PASSWORD, vendorWithModels } from '../people/people.fixture.js';
import type { CampaignView, ExecutionView } from './campaigns.service.js';

const stages = { canary_count: 100, rate_per_minute: 60, factor: 2, stage_size: 10 };
const thresholds = { min_executions: 50, failure_pct: 50, timeout_pct: 50, did_not_come_back_pct: 50 };

/**
 * Issue 14 item 1, "organisation admins for their own devices": device admins run campaigns over
 * the devices their range holds (as the organisation's device list shows them), see only the
 * campaigns they started and only their range's devices in them; members are refused. And the
 * vendor's owner targets: organisations owning its devices, and their departments.
 */
describe.each(storageBackends())('campaigns within a device admin range on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let org: OrgFixture;
  let other: OrgFixture;
  let bare: OrgFixture;
  let models: Record<string, string>;
  let vendorId: string;
  let otherVendorId: string;
  let fw: string;
  let boss: Browser;
  let salesAdmin: Browser;
  let engAdmin: Browser;
  let alice: Browser;

  const place = async (modelId: string, sn: string, owner: OrgFixture, dept: keyof OrgFixture['dept']) => {
    await h.services.devices.register(SYSTEM_CLI, modelId, sn);
    await h.services.binding.bind(
      SYSTEM_CLI,
      sn,
      { type: 'org', id: owner.orgId },
      { visibleTo: { departments: [owner.dept[dept]] } },
    );
    await h.deps.db.kysely.updateTable('devices').set({ firmware_version: '1.0', online: 1 }).where('sn', '=', sn).execute();
  };
  const body = (name: string, target?: Record<string, unknown>) => ({
    name,
    model_id: models.pkSCA!,
    firmware_id: fw,
    stages,
    thresholds,
    ...(target ? { target } : {}),
  });
  const snsOf = async (who: Browser, id: string) => {
    const r = await who.req('GET', `/api/v1/campaigns/${id}/executions?limit=500`);
    expect(r.statusCode).toBe(200);
    return (r.json().executions as ExecutionView[]).map((e) => e.sn).sort();
  };

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    ({ vendorId, models } = await vendorWithModels(h, [{ name: 'Gate', productKey: 'pkSCA' }]));
    const second = await vendorWithModels(h, [{ name: 'Other gate', productKey: 'pkSCB' }]);
    otherVendorId = second.vendorId;
    await h.services.models.update(SYSTEM_CLI, models.pkSCA!, { org_campaigns_allowed: true });
    org = await acmeOrg(h, 'sc');
    other = await acmeOrg(h, 'sc2');
    bare = await acmeOrg(h, 'sc3');
    await place(models.pkSCA!, 'SC001', org, 'salesEast');
    await place(models.pkSCA!, 'SC002', org, 'sales');
    await place(models.pkSCA!, 'SC003', org, 'eng');
    await place(models.pkSCA!, 'SC004', org, 'root');
    await place(models.pkSCA!, 'SC900', other, 'sales');
    // The bare organisation owns only another vendor's device.
    await place(second.models.pkSCB!, 'SC800', bare, 'root');
    fw = (
      await h.services.firmware.publishUrl(SYSTEM_CLI, models.pkSCA!, {
        version: '2.0',
        download_url: 'https://files.example.com/sc-2.0.bin',
        md5sum: 'd41d8cd98f00b204e9800998ecf8427e',
        size: 1024,
        make_current: false,
      })
    ).id;
    boss = await login(h.app, 'boss.sc', PASSWORD);
    salesAdmin = await login(h.app, 'salesadmin.sc', PASSWORD);
    engAdmin = await login(h.app, 'engadmin.sc', PASSWORD);
    alice = await login(h.app, 'alice.sc', PASSWORD);
  });
  afterAll(async () => {
    await h?.close();
  });

  it.skipIf(skip)("covers only the device admin's range, and they alone (and super admins) see it", async () => {
    const options = await salesAdmin.req('GET', `/api/v1/orgs/${org.orgId}/campaign-models`);
    expect(options.statusCode).toBe(200);
    // Their range's count (Sales and Sales East), not the organisation's four.
    expect(options.json().models.map((m: { model_id: string; devices: number }) => [m.model_id, m.devices])).toEqual([
      [models.pkSCA, 2],
    ]);

    const created = await salesAdmin.req('POST', `/api/v1/orgs/${org.orgId}/campaigns`, body('Sales gates'));
    expect(created.statusCode).toBe(201);
    const c = created.json().campaign as CampaignView;
    expect(c.total).toBe(2);
    expect(await snsOf(salesAdmin, c.id)).toEqual(['SC001', 'SC002']);
    // A department outside their scope is refused; a sub-department inside it narrows.
    const outside = await salesAdmin.req(
      'POST',
      `/api/v1/orgs/${org.orgId}/campaigns`,
      body('x', { department_id: org.dept.eng }),
    );
    expect(outside.statusCode).toBe(403);
    expect(outside.json().error.code).toBe('OUTSIDE_SCOPE');

    const eng = await engAdmin.req('POST', `/api/v1/orgs/${org.orgId}/campaigns`, body('Engineering gates'));
    expect(eng.statusCode).toBe(201);
    const e = eng.json().campaign as CampaignView;
    expect(await snsOf(engAdmin, e.id)).toEqual(['SC003']);

    // Each device admin lists and reads only their own; another's does not exist for them.
    const ids = async (who: Browser) =>
      (await who.req('GET', `/api/v1/orgs/${org.orgId}/campaigns`)).json().campaigns.map((x: CampaignView) => x.id);
    expect(await ids(salesAdmin)).toEqual([c.id]);
    expect(await ids(engAdmin)).toEqual([e.id]);
    expect((await ids(boss)).sort()).toEqual([c.id, e.id].sort());
    for (const [path, method] of [
      ['', 'GET'],
      ['/executions', 'GET'],
      ['/samples', 'GET'],
      ['/pause', 'POST'],
      ['/cancel', 'POST'],
    ] as const) {
      const r = await salesAdmin.req(method, `/api/v1/campaigns/${e.id}${path}`, method === 'POST' ? {} : undefined);
      expect([path, r.statusCode]).toEqual([path, 404]);
    }
    expect(await snsOf(boss, e.id)).toEqual(['SC003']);

    // They steer their own.
    expect((await salesAdmin.req('POST', `/api/v1/campaigns/${c.id}/pause`, {})).json().campaign.status).toBe('paused');
    expect((await salesAdmin.req('POST', `/api/v1/campaigns/${c.id}/resume`, {})).json().campaign.status).toBe('running');

    // When it pauses itself, the device admin who started it is told (and the super admin); the other one is not.
    const row = await h.deps.db.kysely.selectFrom('campaigns').selectAll().where('id', '=', c.id).executeTakeFirstOrThrow();
    expect(await h.services.campaigns.engine.pause(row, 'Failure rate 60 % ≥ 50 %', 'failure', 'system')).toBe(true);
    const told = async (userId: string) =>
      (await h.services.notifications.list(asUser(userId))).notifications
        .filter((n) => n.kind === 'campaign.paused')
        .map((n) => n.link);
    expect(await told(org.users.salesAdmin)).toEqual([`/orgs/${org.orgId}/campaigns/${c.id}`]);
    expect(await told(org.users.boss)).toEqual([`/orgs/${org.orgId}/campaigns/${c.id}`]);
    expect(await told(org.users.engAdmin)).toEqual([]);
    expect((await salesAdmin.req('POST', `/api/v1/campaigns/${c.id}/resume`, {})).json().campaign.status).toBe('running');

    // A device moved out of their range leaves their view of the campaign; the super admin still sees it.
    await h.services.binding.setRange(asUser(org.users.boss), 'SC002', { departments: [org.dept.eng] });
    expect(await snsOf(salesAdmin, c.id)).toEqual(['SC001']);
    expect(await snsOf(boss, c.id)).toEqual(['SC001', 'SC002']);
    // Paging over the filtered list: one at a time, then nothing more.
    const first = (await salesAdmin.req('GET', `/api/v1/campaigns/${c.id}/executions?limit=1`)).json();
    expect(first.executions.map((x: ExecutionView) => x.sn)).toEqual(['SC001']);
    expect(first.next_after).toBeNull();
    await h.services.binding.setRange(asUser(org.users.boss), 'SC002', { departments: [org.dept.sales] });

    expect((await salesAdmin.req('POST', `/api/v1/campaigns/${c.id}/cancel`, {})).json().campaign.status).toBe('cancelled');
    expect((await engAdmin.req('POST', `/api/v1/campaigns/${e.id}/cancel`, {})).json().campaign.status).toBe('cancelled');
  });

  it.skipIf(skip)('refuses members and other organisations', async () => {
    const refusedCreate = await alice.req('POST', `/api/v1/orgs/${org.orgId}/campaigns`, body('Mine'));
    expect(refusedCreate.statusCode).toBe(403);
    expect((await alice.req('GET', `/api/v1/orgs/${org.orgId}/campaigns`)).statusCode).toBe(403);
    expect((await alice.req('GET', `/api/v1/orgs/${org.orgId}/campaign-models`)).statusCode).toBe(403);
    const c = await h.services.campaigns.createForOrg(asUser(org.users.salesAdmin), org.orgId, body('Sales again'));
    expect((await alice.req('GET', `/api/v1/campaigns/${c.id}`)).statusCode).toBe(404);
    expect((await alice.req('GET', `/api/v1/campaigns/${c.id}/executions`)).statusCode).toBe(404);
    // A device admin of another organisation: not theirs to run or read.
    const otherAdmin = await login(h.app, 'salesadmin.sc2', PASSWORD);
    expect((await otherAdmin.req('POST', `/api/v1/orgs/${org.orgId}/campaigns`, body('x'))).statusCode).toBe(403);
    expect((await otherAdmin.req('GET', `/api/v1/campaigns/${c.id}/executions`)).statusCode).toBe(404);
    await h.services.campaigns.cancel(SYSTEM_CLI, c.id);
  });

  it.skipIf(skip)(
    "offers a vendor the organisations owning its devices and their departments, and targets one's department",
    async () => {
      const t = h.services.campaigns.targets;
      const orgs = await t.orgs(SYSTEM_CLI, vendorId);
      expect(orgs.map((o) => [o.id, o.devices]).sort()).toEqual(
        [
          [org.orgId, 4],
          [other.orgId, 1],
        ].sort(),
      );
      expect((await t.orgs(SYSTEM_CLI, otherVendorId)).map((o) => o.id)).toEqual([bare.orgId]);
      expect(await t.orgs(SYSTEM_CLI, vendorId, models.pkSCA)).toHaveLength(2);
      expect(await t.orgs(SYSTEM_CLI, vendorId, 'no-such-model')).toEqual([]);
      const depts = await t.departments(SYSTEM_CLI, vendorId, org.orgId);
      expect(depts.map((d) => d.id).sort()).toEqual(Object.values(org.dept).sort());
      expect(depts.find((d) => d.id === org.dept.salesEast)?.parent_id).toBe(org.dept.sales);
      // An organisation owning none of the vendor's devices is as unknown as one that does not exist.
      await expect(t.departments(SYSTEM_CLI, vendorId, bare.orgId)).rejects.toMatchObject({ code: 'ORG_NOT_FOUND' });
      await expect(t.departments(SYSTEM_CLI, vendorId, 'org_nope')).rejects.toMatchObject({ code: 'ORG_NOT_FOUND' });
      // An organisation's people are not the vendor's.
      expect((await boss.req('GET', `/api/v1/vendors/${vendorId}/campaign-orgs`)).statusCode).toBe(403);

      const v = await h.services.campaigns.create(SYSTEM_CLI, vendorId, {
        ...body('Acme sales'),
        target: { org_id: org.orgId, department_id: org.dept.sales },
      });
      const sns = (await h.services.campaigns.executions(SYSTEM_CLI, v.id)).executions.map((x) => x.sn).sort();
      expect(sns).toEqual(['SC001', 'SC002']);
      await h.services.campaigns.cancel(SYSTEM_CLI, v.id);
    },
  );
});
