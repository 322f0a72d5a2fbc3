import type { Kysely } from 'kysely';
import type { StorageCapabilities } from '../capabilities.js';

/**
 * The vendor's fleet page (issue 13, items 2–3). Models may be archived (listed apart, refusing new
 * registrations and batches) and carry a default seed-002 app scene for the devices registered
 * under them. The fleet list is ordered by SN and paged by its key, so an SN prefix is an index range
 * scan: (vendor_id, sn_key) for the whole fleet, (model_id, sn_key) for one model; a page of 50 stops
 * after 51 matches at 1 M devices (bench/vendor-devices.ts, docs/benchmarks.md).
 */
export async function up(db: Kysely<unknown>, _caps: StorageCapabilities): Promise<void> {
  await db.schema.alterTable('models').addColumn('archived_at', 'bigint').execute();
  await db.schema.alterTable('models').addColumn('app_scene_code', 'text').execute();
  await db.schema.createIndex('devices_vendor_sn').on('devices').columns(['vendor_id', 'sn_key']).execute();
  await db.schema.createIndex('devices_model_sn').on('devices').columns(['model_id', 'sn_key']).execute();
}
