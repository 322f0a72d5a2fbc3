import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { bearer, type Harness, startHarness } from '../../testing/harness.js';
import { acmeOrg, type OrgFixture, vendorWithModels } from '../people/people.fixture.js';

const SNS = ['FLT0001', 'FLT0002', 'FLT0003', 'FLT0004'];

/** Issue 14 item 6: rollups counted from events and samples, read by vendors and organisation admins. */
describe.each(storageBackends())('fleet stats on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let org: OrgFixture;
  let vendorId: string;
  let modelId: string;
  let otherModelId: string;
  let vendorKey: string;
  let otherKey: string;
  const user = (userId: string) => ({ kind: 'user' as const, userId, isOperator: false });
  const vendorStats = (qs = '', token = vendorKey) =>
    h.app.inject({ method: 'GET', url: `/api/v1/vendors/${vendorId}/fleet-stats${qs}`, headers: bearer(token) });
  const db = () => h.deps.db.kysely;

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    const v = await vendorWithModels(h, [
      { name: 'Door', productKey: 'pkFltA' },
      { name: 'Screen', productKey: 'pkFltB' },
    ]);
    vendorId = v.vendorId;
    modelId = v.models.pkFltA!;
    otherModelId = v.models.pkFltB!;
    vendorKey = (await h.services.accounts.createVendorKey(SYSTEM_CLI, vendorId, 'dash')).token;
    const other = await h.services.vendors.create(SYSTEM_CLI, { name: 'Other' });
    otherKey = (await h.services.accounts.createVendorKey(SYSTEM_CLI, other.id, 'x')).token;
    org = await acmeOrg(h, 'flt');
    for (const sn of SNS) await h.services.devices.register(SYSTEM_CLI, sn === 'FLT0004' ? otherModelId : modelId, sn);
  });
  afterAll(async () => {
    await h?.close();
  });

  it.skipIf(skip)('counts binds, unbinds and error reports per day and samples online devices and versions', async () => {
    for (const sn of SNS) await h.services.binding.bind(SYSTEM_CLI, sn, { type: 'org', id: org.orgId });
    await h.services.binding.unbind(SYSTEM_CLI, 'FLT0001');
    const dev = async (sn: string) =>
      (await db().selectFrom('devices').select('id').where('sn', '=', sn).executeTakeFirstOrThrow()).id;
    for (const [sn, code] of [
      ['FLT0002', 600010],
      ['FLT0002', 600010],
      ['FLT0003', 600020],
    ] as const) {
      await h.services.deviceLogs.recordError(SYSTEM_CLI, { id: Number(await dev(sn)), sn }, code, 'x');
    }
    // Error reports are announced without waiting for listeners.
    await expect.poll(async () => (await vendorStats()).json().daily.at(-1).errors).toBe(3);

    await db()
      .updateTable('devices')
      .set({ online: 1, firmware_version: '1.2.0' })
      .where('sn', 'in', ['FLT0002', 'FLT0003'])
      .execute();
    await db().updateTable('devices').set({ firmware_version: '1.1.0' }).where('sn', '=', 'FLT0001').execute();
    expect(await h.services.fleetStats.sample()).toBe(true);

    const r = await vendorStats('?days=7');
    expect(r.statusCode, r.body).toBe(200);
    const s = r.json();
    expect(s.daily).toHaveLength(7);
    expect(s.daily.at(-1)).toMatchObject({ binds: 4, unbinds: 1, errors: 3 });
    expect(s.error_codes).toEqual([
      { code: 600010, total: 2, per_day: [0, 0, 0, 0, 0, 0, 2] },
      { code: 600020, total: 1, per_day: [0, 0, 0, 0, 0, 0, 1] },
    ]);
    expect(s.online).toEqual([{ at: expect.any(String), devices: 4, online: 2 }]);
    expect(s.versions).toEqual([
      { version: '1.2.0', devices: 2, online: 2 },
      { version: '1.1.0', devices: 1, online: 0 },
      { version: null, devices: 1, online: 0 },
    ]);
    expect(s.sampled_at).not.toBeNull();

    // One model only.
    const one = (await vendorStats(`?days=7&model_id=${otherModelId}`)).json();
    expect(one.daily.at(-1)).toMatchObject({ binds: 1, unbinds: 0, errors: 0 });
    expect(one.online[0]).toMatchObject({ devices: 1, online: 0 });

    // The organisation sees the devices it owns (FLT0001 was unbound).
    const o = await h.services.fleetStats.orgStats(user(org.users.boss), org.orgId, { days: 7 });
    expect(o.daily.at(-1)).toMatchObject({ binds: 4, unbinds: 1, errors: 3 });
    expect(o.online).toEqual([{ at: expect.any(String), devices: 3, online: 2 }]);
    expect(o.versions.map((v) => v.version)).toEqual(['1.2.0', null]);

    // A second sample within the hour replaces the hour's point; the next hour adds one.
    await db().updateTable('devices').set({ online: 0 }).where('sn', '=', 'FLT0003').execute();
    await h.services.fleetStats.sample();
    expect((await vendorStats('?days=7')).json().online).toEqual([{ at: expect.any(String), devices: 4, online: 1 }]);
    h.clock.advance(3_600_000);
    await h.services.fleetStats.sample();
    expect((await vendorStats('?days=7')).json().online).toHaveLength(2);
    // Another process sampled a minute ago: this one skips.
    expect(await h.services.fleetStats.sample(5 * 60_000)).toBe(false);

    // Past 14 days, one point per day.
    h.clock.advance(86_400_000);
    await h.services.fleetStats.sample();
    const long = (await vendorStats('?days=30')).json();
    expect(long.online.length).toBeLessThanOrEqual(3);
    expect(long.daily.at(-1)).toMatchObject({ binds: 0, unbinds: 0, errors: 0 });
    expect(long.daily.at(-2)?.binds ?? long.daily.at(-3)?.binds).toBeGreaterThanOrEqual(0);
    expect(long.daily.reduce((n: number, d: { binds: number }) => n + d.binds, 0)).toBe(4);
  });

  it.skipIf(skip)("charts long ranges from the sampler's daily fold: each day's highest hourly row", async () => {
    // Samples over two days, some hours sampled twice (the later, lower sample replaces the hour's).
    const plan = [
      [1, 0],
      [1, 1],
      [0, 1],
      [3, 0],
      [2, 1],
      [0, 0],
    ] as const;
    for (const [online, nextHour] of plan) {
      await db().updateTable('devices').set({ online: 0 }).where('sn', 'in', SNS).execute();
      if (online > 0) await db().updateTable('devices').set({ online: 1 }).where('sn', 'in', SNS.slice(0, online)).execute();
      await h.services.fleetStats.sample();
      if (nextHour) h.clock.advance(11 * 3_600_000);
    }
    const hourly = await db()
      .selectFrom('fleet_online')
      .select(['at', 'devices', 'online'])
      .where('scope', '=', `v:${vendorId}`)
      .where('model_id', '=', '*')
      .orderBy('at')
      .execute();
    // What the route answered before 027: the hourly rows folded per UTC day.
    const folded = new Map<number, { devices: number; online: number }>();
    for (const r of hourly) {
      const d = Math.floor(Number(r.at) / 86_400_000);
      const f = folded.get(d) ?? { devices: 0, online: 0 };
      folded.set(d, { devices: Math.max(f.devices, Number(r.devices)), online: Math.max(f.online, Number(r.online)) });
    }
    const want = [...folded].map(([d, f]) => ({ at: new Date(d * 86_400_000).toISOString(), ...f }));
    expect(want.length).toBeGreaterThanOrEqual(2);
    const got = (await vendorStats('?days=30')).json().online;
    // A monotone max would keep the replaced 3; the fold of the hourly rows says 2.
    expect(got).toEqual(want);
    expect(Math.max(...got.map((p: { online: number }) => p.online))).toBe(2);
  });

  it.skipIf(skip)('ranks error codes per day as the raw rows say: the top 8 and the rest summed', async () => {
    const today = Math.floor(h.clock.now() / 86_400_000);
    for (let c = 0; c < 11; c++) {
      for (const back of [0, 3, 9, 29, 30]) {
        // Codes 0–10 over five days (day 30 is outside a 30-day range), counts that tie and differ.
        for (let k = 0; k < ((c * 7 + back) % 4) + 1; k++) {
          await h.services.fleetStats.recordError([`o:${org.orgId}`], modelId, (today - back) * 86_400_000 + 1000, 601000 + c);
        }
      }
    }
    const raw = await db()
      .selectFrom('fleet_daily_errors')
      .select(['day', 'code', 'n'])
      .where('scope', '=', `o:${org.orgId}`)
      .where('model_id', '=', '*')
      .where('day', '>', today - 30)
      .execute();
    // The ranking as the service computed it from one row per (day, code) before 027.
    const per = new Map<number, number[]>();
    for (const r of raw) {
      const arr = per.get(Number(r.code)) ?? new Array<number>(30).fill(0);
      arr[Number(r.day) - (today - 29)] = Number(r.n);
      per.set(Number(r.code), arr);
    }
    const ranked = [...per]
      .map(([code, per_day]) => ({ code: code as number | null, total: per_day.reduce((a, b) => a + b, 0), per_day }))
      .sort((a, b) => b.total - a.total || Number(a.code) - Number(b.code));
    const rest = ranked.slice(8).reduce((o, c) => o.map((n, i) => n + c.per_day[i]!), new Array<number>(30).fill(0));
    const want = [...ranked.slice(0, 8), { code: null, total: rest.reduce((a, b) => a + b, 0), per_day: rest }];
    expect(ranked.length).toBeGreaterThan(8);
    const got = (await h.services.fleetStats.orgStats(user(org.users.boss), org.orgId, { days: 30 })).error_codes;
    expect(got).toEqual(want);
  });

  it.skipIf(skip)('lets only the vendor (read) and the organisation super admins read', async () => {
    expect((await vendorStats('', otherKey)).statusCode).toBe(403);
    expect((await vendorStats('?days=400')).statusCode).toBe(400);
    await expect(h.services.fleetStats.orgStats(user(org.users.salesAdmin), org.orgId, {})).rejects.toMatchObject({
      code: 'FORBIDDEN',
    });
    await expect(h.services.fleetStats.orgStats(user(org.users.outsider), org.orgId, {})).rejects.toMatchObject({
      code: 'FORBIDDEN',
    });
    await expect(h.services.fleetStats.orgStats(user(org.users.boss), 'org_none', {})).rejects.toMatchObject({
      code: 'ORG_NOT_FOUND',
    });
  });
});
