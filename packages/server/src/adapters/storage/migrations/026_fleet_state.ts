import { type Kysely, sql } from 'kysely';
import type { StorageCapabilities } from '../capabilities.js';

/**
 * The device's state as its vendor sees it (issue 13 item 3; features/devices/device-state.ts) as a
 * real column, so the fleet list's state filter is an index range instead of a filter over every
 * row of the SN range. The database computes it from the columns each step writes (owner, activation,
 * connection), so no transition can forget it and a raw update keeps it right too. The legacy `state`
 * column of 001 says "registered" forever and stays unread.
 *
 * (vendor_id, [model_id,] fleet_state, sn_key): a page of one state, with or without an SN prefix,
 * reads its 51 entries and no more — a state with no devices in the range costs one seek, where it
 * cost a scan of the whole range before (bench/vendor-devices.ts, docs/benchmarks.md). The model's
 * index leads with the vendor, like the query: PostgreSQL prices an index by its first column's
 * correlation with the table's order, and a (model_id, …) index lost to (vendor_id, fleet_state, …)
 * and its filter on the model (575 ms for an empty page of 1 M devices).
 */
export async function up(db: Kysely<unknown>, caps: StorageCapabilities): Promise<void> {
  const state = sql`CASE
    WHEN owner_id IS NOT NULL THEN (CASE WHEN online = 1 THEN 'online' ELSE 'bound' END)
    WHEN activated_at IS NOT NULL THEN 'activated'
    ELSE 'registered' END`;
  await db.schema
    .alterTable('devices')
    .addColumn('fleet_state', 'text', (c) => caps.generatedColumn(c.generatedAlwaysAs(state)))
    .execute();
  await db.schema.createIndex('devices_vendor_state_sn').on('devices').columns(['vendor_id', 'fleet_state', 'sn_key']).execute();
  await db.schema
    .createIndex('devices_vendor_model_state_sn')
    .on('devices')
    .columns(['vendor_id', 'model_id', 'fleet_state', 'sn_key'])
    .execute();
}
