import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { type Harness, startHarness } from '../../testing/harness.js';
import { acmeOrg, asUser, type Browser, login, type OrgFixture, PASSWORD, vendorWithModels } from '../people/people.fixture.js';
import type { CampaignView } from './campaigns.service.js';
import { insideWindow, leftInWindow } from './campaigns.window.js';

const stages = { canary_count: 100, rate_per_minute: 60, factor: 2, stage_size: 10 };
const thresholds = { min_executions: 50, failure_pct: 50, timeout_pct: 50, did_not_come_back_pct: 50 };

/**
 * Issue 14: organisation campaigns (the model allows them; only the organisation's devices; super
 * admins), department targets (with sub-departments) and maintenance windows in the owner's time
 * zone, on a fixed clock.
 */
describe.each(storageBackends())('organisation campaigns, departments and windows on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let org: OrgFixture;
  let other: OrgFixture;
  let models: Record<string, string>;
  let vendorId: string;
  let fwA: string;
  let fwB: string;
  let boss: Browser;
  let alice: Browser;
  let otherBoss: Browser;

  const place = async (
    pk: string,
    sn: string,
    owner: { org: OrgFixture; dept: keyof OrgFixture['dept'] } | 'personal' | null,
  ) => {
    await h.services.devices.register(SYSTEM_CLI, models[pk]!, sn);
    if (owner === 'personal') await h.services.binding.bind(SYSTEM_CLI, sn, { type: 'user', id: org.users.carol });
    else if (owner)
      await h.services.binding.bind(
        SYSTEM_CLI,
        sn,
        { type: 'org', id: owner.org.orgId },
        { visibleTo: { departments: [owner.org.dept[owner.dept]] } },
      );
    await h.deps.db.kysely.updateTable('devices').set({ firmware_version: '1.0', online: 1 }).where('sn', '=', sn).execute();
  };
  const publish = async (pk: string, version: string) =>
    (
      await h.services.firmware.publishUrl(SYSTEM_CLI, models[pk]!, {
        version,
        download_url: `https://files.example.com/${pk}-${version}.bin`,
        md5sum: 'd41d8cd98f00b204e9800998ecf8427e',
        size: 1024,
        make_current: false,
      })
    ).id;
  const states = async (id: string) =>
    Object.fromEntries(
      (await h.services.campaigns.executions(SYSTEM_CLI, id, { limit: 500 })).executions.map((e) => [e.sn, e.state]),
    );

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    ({ vendorId, models } = await vendorWithModels(h, [
      { name: 'Gate', productKey: 'pkCGA' },
      { name: 'Lock', productKey: 'pkCGB' },
    ]));
    await h.services.models.update(SYSTEM_CLI, models.pkCGA!, { org_campaigns_allowed: true });
    org = await acmeOrg(h, 'cg');
    other = await acmeOrg(h, 'cg2');
    await place('pkCGA', 'CG001', { org, dept: 'salesEast' });
    await place('pkCGA', 'CG002', { org, dept: 'sales' });
    await place('pkCGA', 'CG003', { org, dept: 'eng' });
    await place('pkCGA', 'CG004', { org, dept: 'root' });
    await place('pkCGA', 'CG900', { org: other, dept: 'root' });
    await place('pkCGA', 'CG800', 'personal');
    await place('pkCGA', 'CG700', null);
    await place('pkCGB', 'CG005', { org, dept: 'root' });
    fwA = await publish('pkCGA', '2.0');
    fwB = await publish('pkCGB', '2.0');
    boss = await login(h.app, 'boss.cg', PASSWORD);
    alice = await login(h.app, 'alice.cg', PASSWORD);
    otherBoss = await login(h.app, 'boss.cg2', PASSWORD);
  });
  afterAll(async () => {
    await h?.close();
  });

  it.skipIf(skip)("lets an organisation's super admins run campaigns on its own devices where the model allows it", async () => {
    const options = await boss.req('GET', `/api/v1/orgs/${org.orgId}/campaign-models`);
    expect(options.statusCode).toBe(200);
    expect(options.json().models).toEqual([
      {
        model_id: models.pkCGA,
        name: 'Gate',
        vendor_name: expect.any(String),
        devices: 4,
        firmware: [{ id: fwA, version: '2.0', is_current: false }],
      },
    ]);
    const body = { name: 'Ours', model_id: models.pkCGA, firmware_id: fwA, stages, thresholds };
    // The other model's vendor does not allow it; a member is not an admin (device admins: campaigns.scope.test.ts).
    const refused = await boss.req('POST', `/api/v1/orgs/${org.orgId}/campaigns`, {
      ...body,
      model_id: models.pkCGB,
      firmware_id: fwB,
    });
    expect(refused.statusCode).toBe(403);
    expect(refused.json().error.code).toBe('CAMPAIGN_NOT_ALLOWED');
    expect((await alice.req('POST', `/api/v1/orgs/${org.orgId}/campaigns`, body)).statusCode).toBe(403);
    // Another organisation cannot be named, nor another model's image used.
    const foreign = await boss.req('POST', `/api/v1/orgs/${org.orgId}/campaigns`, { ...body, target: { org_id: other.orgId } });
    expect(foreign.statusCode).toBe(400);
    const wrongImage = await boss.req('POST', `/api/v1/orgs/${org.orgId}/campaigns`, { ...body, firmware_id: fwB });
    expect(wrongImage.json().error.code).toBe('FIRMWARE_NOT_FOUND');

    const created = await boss.req('POST', `/api/v1/orgs/${org.orgId}/campaigns`, body);
    expect(created.statusCode).toBe(201);
    const c = created.json().campaign as CampaignView;
    expect(c.org_id).toBe(org.orgId);
    expect(Object.keys(await states(c.id)).sort()).toEqual(['CG001', 'CG002', 'CG003', 'CG004']);
    // Theirs to read and steer; not another organisation's admin's; the vendor sees it too.
    expect(
      (await boss.req('GET', `/api/v1/orgs/${org.orgId}/campaigns`)).json().campaigns.map((x: CampaignView) => x.id),
    ).toEqual([c.id]);
    expect((await otherBoss.req('GET', `/api/v1/campaigns/${c.id}`)).statusCode).toBe(404);
    expect((await otherBoss.req('GET', `/api/v1/orgs/${org.orgId}/campaigns`)).statusCode).toBe(403);
    expect((await boss.req('POST', `/api/v1/campaigns/${c.id}/pause`, {})).json().campaign.status).toBe('paused');
    expect((await boss.req('GET', `/api/v1/campaigns/${c.id}/executions`)).statusCode).toBe(200);
    const vendorList = await h.services.campaigns.list(SYSTEM_CLI, vendorId);
    expect(vendorList.find((x) => x.id === c.id)?.org_id).toBe(org.orgId);
    expect((await boss.req('POST', `/api/v1/campaigns/${c.id}/cancel`, {})).json().campaign.status).toBe('cancelled');
  });

  it.skipIf(skip)('targets a department with its sub-departments', async () => {
    const c = await h.services.campaigns.createForOrg(asUser(org.users.boss), org.orgId, {
      name: 'Sales only',
      model_id: models.pkCGA!,
      firmware_id: fwA,
      target: { department_id: org.dept.sales },
      stages,
      thresholds,
    });
    expect(Object.keys(await states(c.id)).sort()).toEqual(['CG001', 'CG002']);
    await h.services.campaigns.cancel(SYSTEM_CLI, c.id);
    // A vendor's campaign names the organisation too; a department alone means nothing.
    const v = await h.services.campaigns.create(SYSTEM_CLI, vendorId, {
      name: 'Engineering',
      model_id: models.pkCGA!,
      firmware_id: fwA,
      target: { org_id: org.orgId, department_id: org.dept.eng },
      stages,
      thresholds,
    });
    expect(Object.keys(await states(v.id))).toEqual(['CG003']);
    await h.services.campaigns.cancel(SYSTEM_CLI, v.id);
    await expect(
      h.services.campaigns.create(SYSTEM_CLI, vendorId, {
        name: 'x',
        model_id: models.pkCGA!,
        firmware_id: fwA,
        target: { department_id: org.dept.eng },
        stages,
        thresholds,
      }),
    ).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    await expect(
      h.services.campaigns.createForOrg(asUser(org.users.boss), org.orgId, {
        name: 'x',
        model_id: models.pkCGA!,
        firmware_id: fwA,
        target: { department_id: other.dept.sales },
        stages,
        thresholds,
      }),
    ).rejects.toMatchObject({ code: 'DEPARTMENT_NOT_FOUND' });
  });

  it.skipIf(skip)("notifies devices only inside the maintenance window, in each owner's time zone", async () => {
    // Acme is in Shanghai (UTC+8); the other organisation, personal and unbound devices use the instance's (UTC).
    const bad = await boss.req('PATCH', `/api/v1/orgs/${org.orgId}/settings`, { time_zone: 'Mars/Olympus' });
    expect(bad.statusCode).toBe(400);
    const set = await boss.req('PATCH', `/api/v1/orgs/${org.orgId}/settings`, { time_zone: 'Asia/Shanghai' });
    expect(set.json().organisation.time_zone).toBe('Asia/Shanghai');
    const refused = await h.services.campaigns
      .create(SYSTEM_CLI, vendorId, {
        name: 'x',
        model_id: models.pkCGA!,
        firmware_id: fwA,
        stages,
        thresholds,
        maintenance_window: { start: '25:00', end: '04:00' },
      })
      .catch((e: { code: string }) => e.code);
    expect(refused).toBe('VALIDATION_FAILED');

    // Tuesday 2026-11-24 12:00 UTC = 20:00 in Shanghai: outside 02:00–04:00 everywhere.
    h.clock.set(Date.UTC(2026, 10, 24, 12, 0));
    const c = await h.services.campaigns.create(SYSTEM_CLI, vendorId, {
      name: 'Night',
      model_id: models.pkCGA!,
      firmware_id: fwA,
      stages,
      thresholds,
      maintenance_window: { start: '02:00', end: '04:00', days: [3, 2] },
    });
    expect(c.maintenance_window).toEqual({ start: '02:00', end: '04:00', days: [2, 3] });
    expect(c.total).toBe(7);
    const engine = h.services.campaigns.engine;
    const notified = async () =>
      Object.entries(await states(c.id))
        .filter(([, s]) => s !== 'queued')
        .map(([sn]) => sn)
        .sort();
    await engine.runOnce();
    expect(await notified()).toEqual([]);
    // 18:30 UTC = Wednesday 02:30 in Shanghai: Acme's devices only.
    h.clock.set(Date.UTC(2026, 10, 24, 18, 30));
    await engine.runOnce();
    expect(await notified()).toEqual(['CG001', 'CG002', 'CG003', 'CG004']);
    // 04:10 in Shanghai: closed again; nothing more even though the rest are due.
    h.clock.set(Date.UTC(2026, 10, 24, 20, 10));
    await engine.runOnce();
    expect(await notified()).toHaveLength(4);
    // Wednesday 02:30 UTC: the other organisation, the personal and the unbound device.
    h.clock.set(Date.UTC(2026, 10, 25, 2, 30));
    await engine.runOnce();
    expect(await notified()).toEqual(['CG001', 'CG002', 'CG003', 'CG004', 'CG700', 'CG800', 'CG900']);
    await h.services.campaigns.cancel(SYSTEM_CLI, c.id);
    await boss.req('PATCH', `/api/v1/orgs/${org.orgId}/settings`, { time_zone: null });
  });
});

describe('maintenance windows (local time by Intl)', () => {
  // Friday 2026-11-27.
  const fri = (hh: number, mm = 0) => Date.UTC(2026, 10, 27, hh, mm);

  it('follows the time zone, the days and windows past midnight', () => {
    const w = { start: '22:00', end: '02:00', days: [5] };
    expect(insideWindow(w, fri(23), 'UTC')).toBe(true);
    expect(insideWindow(w, fri(24 + 1, 30), 'UTC')).toBe(true); // Saturday 01:30 belongs to Friday's window
    expect(insideWindow(w, fri(24 + 23), 'UTC')).toBe(false); // Saturday's own evening: not a window day
    expect(insideWindow(w, fri(1), 'UTC')).toBe(false); // Friday 01:30 belongs to Thursday's window
    expect(insideWindow(w, fri(14, 30), 'Asia/Shanghai')).toBe(true); // 22:30 in Shanghai
    expect(insideWindow({ start: '09:00', end: '17:00' }, fri(16, 59), 'UTC')).toBe(true);
    expect(insideWindow({ start: '09:00', end: '17:00' }, fri(17), 'UTC')).toBe(false);
    expect(leftInWindow({ start: '09:00', end: '17:00' }, fri(16, 30), 'UTC')).toBe(30 * 60_000);
    expect(leftInWindow({ start: '09:00', end: '17:00' }, fri(18), 'UTC')).toBe(0);
    expect(leftInWindow(w, fri(23, 30) + 15_000, 'UTC')).toBe(150 * 60_000 - 15_000);
    expect(leftInWindow(w, fri(14, 30), 'Asia/Shanghai')).toBe(210 * 60_000);
  });

  it('follows daylight saving', () => {
    const w = { start: '02:30', end: '03:30' };
    // New York: 07:00 UTC is 03:00 EDT on 1 July, 02:00 EST on 1 December.
    expect(insideWindow(w, Date.UTC(2026, 6, 1, 7), 'America/New_York')).toBe(true);
    expect(insideWindow(w, Date.UTC(2026, 11, 1, 7), 'America/New_York')).toBe(false);
  });
});
