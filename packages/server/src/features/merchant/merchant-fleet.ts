import { type Kysely, sql } from 'kysely';
import type { Database } from '../../adapters/storage/schema.js';

/**
 * A merchant's fleet: the devices owned by the merchant organisation or by one of its
 * sub-merchants (child organisations with a sub_mchid). Each member carries the merchant's id and
 * a merchant_seq handed out in joining order, and merchant_fleet_blocks counts the members of
 * every run of FLEET_BLOCK consecutive seq values. A deep OFFSET then costs one walk over the
 * (cached) block counts plus a seek into one block: at most FLEET_BLOCK + limit index entries,
 * whatever the offset. Joining appends; leaving decrements one block; neither renumbers anyone.
 *
 * Whoever changes `devices.owner_type/owner_id` must call syncMerchantFleet in the same
 * transaction (the binding feature does); reconcileMerchantFleet repairs a fleet from scratch.
 */
export const FLEET_BLOCK = 1024;

type Db = Kysely<Database>;

/** The top-level merchant each organisation's devices belong to (null: none). */
export async function merchantOrgsOf(db: Db, orgIds: string[]): Promise<Map<string, string | null>> {
  const out = new Map<string, string | null>();
  if (orgIds.length === 0) return out;
  const rows = await db
    .selectFrom('organisations as o')
    .leftJoin('merchants as m', 'm.org_id', 'o.id')
    .leftJoin('merchants as pm', 'pm.org_id', 'o.parent_id')
    .select(['o.id', 'o.mchid', 'm.org_id as self_merchant', 'pm.org_id as parent_merchant'])
    .where('o.id', 'in', orgIds)
    .execute();
  for (const r of rows) {
    out.set(r.id, r.self_merchant ?? (r.mchid !== null && r.parent_merchant ? r.parent_merchant : null));
  }
  return out;
}

/**
 * Brings the fleet membership of these devices in line with their current owner. Call it inside
 * the transaction that changed the owner, with the ids of the devices it changed.
 */
export async function syncMerchantFleet(db: Db, deviceIds: number[], now: number): Promise<void> {
  if (deviceIds.length === 0) return;
  // A no-op write takes the rows' locks (there is no portable SELECT … FOR UPDATE), so two syncs
  // of one device run one after the other and the second reads what the first wrote.
  await db
    .updateTable('devices')
    .set((eb) => ({ merchant_seq: eb.ref('merchant_seq') }))
    .where('id', 'in', deviceIds)
    .execute();
  const rows = await db
    .selectFrom('devices')
    .select(['id', 'owner_type', 'owner_id', 'merchant_org_id', 'merchant_seq'])
    .where('id', 'in', deviceIds)
    .orderBy('id')
    .execute();
  const orgIds = [...new Set(rows.filter((r) => r.owner_type === 'org' && r.owner_id).map((r) => r.owner_id!))];
  const merchantOf = await merchantOrgsOf(db, orgIds);
  const expected = (r: (typeof rows)[number]) =>
    r.owner_type === 'org' && r.owner_id ? (merchantOf.get(r.owner_id) ?? null) : null;

  const moving = rows.filter((r) => r.merchant_org_id !== expected(r));
  if (moving.length === 0) return;

  // Leaving: free the position and take one off its block.
  for (const r of moving) {
    if (r.merchant_org_id === null || r.merchant_seq === null) continue;
    await db.updateTable('devices').set({ merchant_org_id: null, merchant_seq: null }).where('id', '=', r.id).execute();
    await bumpBlock(db, r.merchant_org_id, Math.floor(Number(r.merchant_seq) / FLEET_BLOCK), -1);
    await db
      .updateTable('merchants')
      .set((eb) => ({
        fleet_total: eb('fleet_total', '-', 1),
        fleet_version: eb('fleet_version', '+', 1),
        updated_at: now,
      }))
      .where('org_id', '=', r.merchant_org_id)
      .execute();
  }

  // Joining: append at the end of the new merchant's order.
  const joins = new Map<string, number[]>();
  for (const r of moving) {
    const m = expected(r);
    if (m !== null) joins.set(m, [...(joins.get(m) ?? []), r.id]);
  }
  for (const [merchantOrgId, ids] of joins) {
    const updated = await db
      .updateTable('merchants')
      .set((eb) => ({
        fleet_next_seq: eb('fleet_next_seq', '+', ids.length),
        fleet_total: eb('fleet_total', '+', ids.length),
        fleet_version: eb('fleet_version', '+', 1),
        updated_at: now,
      }))
      .where('org_id', '=', merchantOrgId)
      .returning('fleet_next_seq')
      .executeTakeFirstOrThrow();
    let seq = Number(updated.fleet_next_seq) - ids.length;
    for (const id of ids) {
      await db.updateTable('devices').set({ merchant_org_id: merchantOrgId, merchant_seq: seq }).where('id', '=', id).execute();
      await bumpBlock(db, merchantOrgId, Math.floor(seq / FLEET_BLOCK), 1);
      seq++;
    }
  }
}

async function bumpBlock(db: Db, merchantOrgId: string, blockNo: number, delta: number): Promise<void> {
  await db
    .insertInto('merchant_fleet_blocks')
    .values({ merchant_org_id: merchantOrgId, block_no: blockNo, count: delta })
    .onConflict((oc) =>
      oc.columns(['merchant_org_id', 'block_no']).doUpdateSet((eb) => ({ count: eb('merchant_fleet_blocks.count', '+', delta) })),
    )
    .execute();
  if (delta < 0) {
    await db
      .deleteFrom('merchant_fleet_blocks')
      .where('merchant_org_id', '=', merchantOrgId)
      .where('block_no', '=', blockNo)
      .where('count', '<=', 0)
      .execute();
  }
}

/** The organisations whose devices make up a merchant's fleet: itself and its sub-merchants. */
export async function fleetOrgIds(db: Db, merchantOrgId: string): Promise<string[]> {
  const subs = await db
    .selectFrom('organisations')
    .select('id')
    .where('parent_id', '=', merchantOrgId)
    .where('mchid', 'is not', null)
    .execute();
  return [merchantOrgId, ...subs.map((s) => s.id)];
}

/**
 * Rebuilds one merchant's fleet from the owner columns: members that left are dropped, devices
 * that should be members are appended (in device id order), block counts and the total are
 * recounted. Existing members keep their position, so a merchant paging through its list
 * during a repair sees no reshuffle. Run it in a transaction.
 */
export async function reconcileMerchantFleet(
  db: Db,
  merchantOrgId: string,
  now: number,
): Promise<{ removed: number; added: number; total: number }> {
  // Lock the merchant row first so concurrent syncs wait for the repair.
  const locked = await db
    .updateTable('merchants')
    .set({ updated_at: now })
    .where('org_id', '=', merchantOrgId)
    .returning('fleet_next_seq')
    .executeTakeFirst();
  if (!locked) throw new Error(`organisation ${merchantOrgId} is not a merchant`);
  const orgs = await fleetOrgIds(db, merchantOrgId);
  const owned = (qb: ReturnType<typeof devicesOf>) => qb.where('owner_type', '=', 'org').where('owner_id', 'in', orgs);
  function devicesOf() {
    return db.selectFrom('devices');
  }

  const removed = await db
    .updateTable('devices')
    .set({ merchant_org_id: null, merchant_seq: null })
    .where('merchant_org_id', '=', merchantOrgId)
    // Spelled out rather than NOT(a AND b): a NULL owner must count as "not owned".
    .where((eb) =>
      eb.or([
        eb('owner_type', 'is', null),
        eb('owner_id', 'is', null),
        eb('owner_type', '<>', 'org'),
        eb('owner_id', 'not in', orgs),
      ]),
    )
    .executeTakeFirst();

  const others = await owned(devicesOf())
    .select('merchant_org_id')
    .distinct()
    .where('merchant_org_id', 'is not', null)
    .where('merchant_org_id', '<>', merchantOrgId)
    .execute();

  const missing = owned(devicesOf()).where((eb) =>
    eb.or([eb('merchant_org_id', 'is', null), eb('merchant_org_id', '<>', merchantOrgId)]),
  );
  const base = Number(locked.fleet_next_seq);
  const added = await db
    .updateTable('devices')
    .from(missing.select((eb) => ['id', sql<number>`row_number() over (order by ${eb.ref('id')})`.as('rn')]).as('joining'))
    .set((eb) => ({
      merchant_org_id: merchantOrgId,
      merchant_seq: sql<number>`${base} + ${eb.ref('joining.rn')} - 1`,
    }))
    .whereRef('devices.id', '=', 'joining.id')
    .executeTakeFirst();
  const n = Number(added.numUpdatedRows);
  await db
    .updateTable('merchants')
    .set({ fleet_next_seq: base + n })
    .where('org_id', '=', merchantOrgId)
    .execute();

  let total = 0;
  for (const m of [merchantOrgId, ...others.map((o) => o.merchant_org_id!)]) {
    const t = await recountBlocks(db, m, now);
    if (m === merchantOrgId) total = t;
  }
  return { removed: Number(removed.numUpdatedRows), added: n, total };
}

/** Recounts a merchant's blocks and total from its members; returns the total. */
async function recountBlocks(db: Db, merchantOrgId: string, now: number): Promise<number> {
  await db.deleteFrom('merchant_fleet_blocks').where('merchant_org_id', '=', merchantOrgId).execute();
  await db
    .insertInto('merchant_fleet_blocks')
    .columns(['merchant_org_id', 'block_no', 'count'])
    .expression(
      db
        .selectFrom('devices')
        .select((eb) => [
          'merchant_org_id',
          sql<number>`${eb.ref('merchant_seq')} / ${sql.lit(FLEET_BLOCK)}`.as('block_no'),
          eb.fn.countAll<number>().as('count'),
        ])
        .where('merchant_org_id', '=', merchantOrgId)
        .groupBy(['merchant_org_id', sql`${sql.ref('merchant_seq')} / ${sql.lit(FLEET_BLOCK)}`]),
    )
    .execute();
  const sum = await db
    .selectFrom('merchant_fleet_blocks')
    .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('count'), sql<number>`0`).as('total'))
    .where('merchant_org_id', '=', merchantOrgId)
    .executeTakeFirstOrThrow();
  const total = Number(sum.total);
  await db
    .updateTable('merchants')
    .set((eb) => ({ fleet_total: total, fleet_version: eb('fleet_version', '+', 1), updated_at: now }))
    .where('org_id', '=', merchantOrgId)
    .execute();
  return total;
}

/** Cumulative block counts: where each block starts in the merchant's order. */
export interface FleetIndex {
  version: number;
  blocks: number[];
  starts: number[];
  total: number;
}

export async function loadFleetIndex(db: Db, merchantOrgId: string, version: number): Promise<FleetIndex> {
  const rows = await db
    .selectFrom('merchant_fleet_blocks')
    .select(['block_no', 'count'])
    .where('merchant_org_id', '=', merchantOrgId)
    .where('count', '>', 0)
    .orderBy('block_no')
    .execute();
  const blocks: number[] = [];
  const starts: number[] = [];
  let total = 0;
  for (const r of rows) {
    blocks.push(Number(r.block_no));
    starts.push(total);
    total += Number(r.count);
  }
  return { version, blocks, starts, total };
}

/** Where offset `o` falls: the first seq of its block and how many members to skip inside it. */
export function locate(index: FleetIndex, o: number): { fromSeq: number; skip: number } | null {
  if (o < 0 || o >= index.total) return null;
  let lo = 0;
  let hi = index.starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (index.starts[mid]! <= o) lo = mid;
    else hi = mid - 1;
  }
  return { fromSeq: index.blocks[lo]! * FLEET_BLOCK, skip: o - index.starts[lo]! };
}
