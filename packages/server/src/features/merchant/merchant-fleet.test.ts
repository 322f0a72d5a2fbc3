import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageBackends } from '../../testing/backends.js';
import { type Harness, startHarness } from '../../testing/harness.js';
import { OPERATOR } from './merchant.fixtures.js';
import type { MerchantCaller } from './merchant.service.js';
import { FLEET_BLOCK } from './merchant-fleet.js';

/**
 * The fleet order behind deep offsets: after any mix of binds, unbinds, transfers and
 * sub-merchant changes, every page equals the naive ORDER BY merchant_seq OFFSET page, the
 * membership equals what the owner columns say, and the block counts add up.
 */
describe.each(storageBackends())('merchant fleet order on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  const M = '1300000001';
  const N = '1300000002';
  let mOrg: string;
  let sOrg: string;
  let nOrg: string;
  let ids: number[] = [];
  let seed = 42;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    const s = h.services;
    const vendor = await s.vendors.create(OPERATOR, { name: 'Fleet vendor' });
    const model = await s.models.create(OPERATOR, vendor.id, { name: 'Kiosk', category_code: '7', class_code: '106' });
    mOrg = (await s.merchant.createMerchant(OPERATOR, { name: 'M', mchid: M, merchant_shortname: 'M' })).org_id;
    const withSub = await s.merchant.addSubMerchant(OPERATOR, M, {
      name: 'S',
      sub_mchid: '1300000011',
      sub_merchant_shortname: 'S',
    });
    sOrg = withSub.sub_merchants[0]!.org_id;
    nOrg = (await s.merchant.createMerchant(OPERATOR, { name: 'N', mchid: N, merchant_shortname: 'N' })).org_id;
    // 3 000 devices, owners set directly (as a bulk import of existing ownership would).
    const owners = [mOrg, sOrg, nOrg, null];
    const rows = Array.from({ length: 3000 }, (_, i) => {
      const r = s.devices.newDeviceRow(model.model, `FLEET${String(i).padStart(5, '0')}`, 1);
      const o = owners[i % 7 < 3 ? 0 : i % 7 < 5 ? 1 : i % 7 === 5 ? 2 : 3];
      return { ...r, owner_type: o ? 'org' : null, owner_id: o ?? null };
    });
    await h.deps.db.kysely.transaction().execute((trx) => s.devices.repo.with(trx).insertMany(rows));
    ids = (await h.deps.db.kysely.selectFrom('devices').select('id').orderBy('id').execute()).map((r) => r.id);
    const ownedByM = rows.filter((r) => r.owner_id === mOrg || r.owner_id === sOrg).length;
    expect(await s.merchant.reindexFleet(OPERATOR, M)).toEqual({ removed: 0, added: ownedByM, total: ownedByM });
    await s.merchant.reindexFleet(OPERATOR, N);
  });
  afterAll(async () => {
    await h?.close();
  });

  async function caller(mchid: string, orgId: string): Promise<MerchantCaller> {
    const m = await h.deps.db.kysely.selectFrom('merchants').selectAll().where('org_id', '=', orgId).executeTakeFirstOrThrow();
    return {
      kind: 'merchant',
      orgId,
      mchid,
      shortname: mchid,
      serialKey: 'TEST',
      keyMode: 'public_key',
      fleetVersion: Number(m.fleet_version),
    };
  }

  /** Every invariant, checked against plain queries. */
  async function checkInvariants(mchid: string, orgId: string, fleetOrgs: string[]) {
    const db = h.deps.db.kysely;
    const members = await db
      .selectFrom('devices')
      .select(['sn', 'merchant_seq'])
      .where('merchant_org_id', '=', orgId)
      .orderBy('merchant_seq')
      .execute();
    const owned = await db
      .selectFrom('devices')
      .select('sn')
      .where('owner_type', '=', 'org')
      .where('owner_id', 'in', fleetOrgs)
      .execute();
    expect(new Set(members.map((m) => m.sn))).toEqual(new Set(owned.map((o) => o.sn)));
    const blocks = await db.selectFrom('merchant_fleet_blocks').selectAll().where('merchant_org_id', '=', orgId).execute();
    const counted = new Map<number, number>();
    for (const m of members) {
      const b = Math.floor(Number(m.merchant_seq) / FLEET_BLOCK);
      counted.set(b, (counted.get(b) ?? 0) + 1);
    }
    expect(new Map(blocks.filter((b) => Number(b.count) > 0).map((b) => [Number(b.block_no), Number(b.count)]))).toEqual(counted);
    const row = await db.selectFrom('merchants').selectAll().where('org_id', '=', orgId).executeTakeFirstOrThrow();
    expect(Number(row.fleet_total)).toBe(members.length);

    const c = await caller(mchid, orgId);
    const offsets = [
      0,
      1,
      FLEET_BLOCK - 1,
      FLEET_BLOCK,
      FLEET_BLOCK + 1,
      members.length - 1,
      members.length,
      rand(members.length),
    ];
    for (const offset of offsets) {
      const limit = 1 + rand(100);
      const page = await h.services.merchant.listDevices(c, offset, limit);
      expect(page.total_count).toBe(members.length);
      expect(
        page.data.map((d) => d.device_sn),
        `offset ${offset} limit ${limit}`,
      ).toEqual(members.slice(offset, offset + limit).map((m) => m.sn));
    }
  }

  it.skipIf(skip)('pages equal the naive ordered query at every offset, across block edges', async () => {
    await checkInvariants(M, mOrg, [mOrg, sOrg]);
    await checkInvariants(N, nOrg, [nOrg]);
  });

  it.skipIf(skip)('stays exact through random binds, unbinds and transfers', async () => {
    const targets: Array<{ type: string; id: string } | null> = [
      { type: 'org', id: mOrg },
      { type: 'org', id: sOrg },
      { type: 'org', id: nOrg },
      { type: 'user', id: 'usr_someone' },
      null,
    ];
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 60; i++) {
        const id = ids[rand(ids.length)]!;
        const t = targets[rand(targets.length)]!;
        const d = await h.deps.db.kysely
          .updateTable('devices')
          .set({ owner_type: t?.type ?? null, owner_id: t?.id ?? null })
          .where('id', '=', id)
          .returning('sn')
          .executeTakeFirstOrThrow();
        await h.services.merchant.syncDevice(d.sn);
      }
      await checkInvariants(M, mOrg, [mOrg, sOrg]);
      await checkInvariants(N, nOrg, [nOrg]);
    }
  });

  it.skipIf(skip)('a joining device goes to the end; the others keep their positions', async () => {
    const c0 = await caller(M, mOrg);
    const before = await h.services.merchant.listDevices(c0, 0, 100);
    const outsider = await h.deps.db.kysely
      .selectFrom('devices')
      .select('sn')
      .where('owner_id', 'is', null)
      .orderBy('id')
      .executeTakeFirstOrThrow();
    await h.deps.db.kysely
      .updateTable('devices')
      .set({ owner_type: 'org', owner_id: sOrg })
      .where('sn', '=', outsider.sn)
      .execute();
    await h.services.merchant.syncDevice(outsider.sn);
    const c1 = await caller(M, mOrg);
    const after = await h.services.merchant.listDevices(c1, 0, 100);
    expect(after.data).toEqual(before.data);
    const last = await h.services.merchant.listDevices(c1, after.total_count - 1, 1);
    expect(last.data[0]!.device_sn).toBe(outsider.sn);
    expect(after.total_count).toBe(before.total_count + 1);
  });

  it.skipIf(skip)('follows the binding service: a bind appends, an unbind removes', async () => {
    const free = await h.deps.db.kysely
      .selectFrom('devices')
      .select('sn')
      .where('owner_id', 'is', null)
      .orderBy('id', 'desc')
      .executeTakeFirstOrThrow();
    await h.services.binding.bind(OPERATOR, free.sn, { type: 'org', id: sOrg });
    const c = await caller(M, mOrg);
    const last = await h.services.merchant.listDevices(c, (await h.services.merchant.listDevices(c, 0, 1)).total_count - 1, 1);
    expect(last.data[0]).toMatchObject({ device_sn: free.sn, sub_mchid: '1300000011' });
    await h.services.binding.unbind(OPERATOR, free.sn);
    const after = await h.services.merchant.listDevices(await caller(M, mOrg), 0, 1);
    expect(after.total_count).toBe(last.total_count - 1);
    await checkInvariants(M, mOrg, [mOrg, sOrg]);
  });

  it.skipIf(skip)('detaching and re-attaching a sub-merchant moves its devices out and back in', async () => {
    const s = h.services.merchant;
    await s.removeSubMerchant(OPERATOR, M, '1300000011');
    await checkInvariants(M, mOrg, [mOrg]);
    const onlyOwn = (await caller(M, mOrg)).fleetVersion;
    expect(onlyOwn).toBeGreaterThan(0);
    await s.addSubMerchant(OPERATOR, M, { org_id: sOrg, sub_mchid: '1300000011', sub_merchant_shortname: 'S again' });
    await checkInvariants(M, mOrg, [mOrg, sOrg]);
    // They rejoin after the merchant's own devices, which kept the front of the list.
    const c = await caller(M, mOrg);
    const first = await s.listDevices(c, 0, 100);
    expect(first.data.every((d) => d.sub_mchid === undefined)).toBe(true);
    const last = await s.listDevices(c, first.total_count - 100, 100);
    expect(last.data.every((d) => d.sub_mchid === '1300000011' && d.sub_merchant_shortname === 'S again')).toBe(true);
  });

  it.skipIf(skip)('reindex repairs drift left by owner changes that bypassed the fleet', async () => {
    // Ownership written with no event and no sync: the fleet no longer matches.
    const victims = await h.deps.db.kysely
      .selectFrom('devices')
      .select('id')
      .where('merchant_org_id', '=', mOrg)
      .orderBy('id')
      .limit(5)
      .execute();
    await h.deps.db.kysely
      .updateTable('devices')
      .set({ owner_type: null, owner_id: null })
      .where(
        'id',
        'in',
        victims.map((v) => v.id),
      )
      .execute();
    await h.deps.db.kysely
      .updateTable('devices')
      .set({ owner_type: 'org', owner_id: mOrg })
      .where('owner_id', 'is', null)
      .where(
        'id',
        'not in',
        victims.map((v) => v.id),
      )
      .where(sql<boolean>`id % 97 = 0`)
      .execute();
    const r = await h.services.merchant.reindexFleet(OPERATOR, M);
    expect(r.removed).toBe(5);
    expect(r.added).toBeGreaterThan(0);
    await checkInvariants(M, mOrg, [mOrg, sOrg]);
    expect(await h.services.merchant.reindexFleet(OPERATOR, M)).toMatchObject({ removed: 0, added: 0 });
  });
});
