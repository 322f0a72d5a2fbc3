import type { Kysely } from 'kysely';
import type { StorageCapabilities } from '../capabilities.js';

/**
 * Firmware files' SHA-256 (issue 13 item 7: shown beside the MD5 devices check; null for versions
 * published before, or by URL without one).
 *
 * The pairing station's log (issue 13 item 6): one row per pair a station sent, paired or refused,
 * keyed by the station's idempotency key so a pair uploaded twice (a retry after a network drop)
 * is answered from here and written once. The pairing itself is the device columns of 001.
 */
export async function up(db: Kysely<unknown>, _caps: StorageCapabilities): Promise<void> {
  await db.schema
    .createTable('pairings')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('vendor_id', 'text', (c) => c.notNull().references('vendors.id'))
    .addColumn('idem_key', 'text', (c) => c.notNull())
    .addColumn('shift_id', 'text', (c) => c.notNull())
    .addColumn('station', 'text', (c) => c.notNull())
    .addColumn('model_id', 'text')
    .addColumn('batch_id', 'text')
    /** As scanned (a refused key may break the DeviceKey rule; kept for the record, at most 64 characters). */
    .addColumn('device_key', 'text', (c) => c.notNull())
    .addColumn('label', 'text', (c) => c.notNull())
    .addColumn('device_id', 'integer')
    .addColumn('sn', 'text')
    .addColumn('product_key', 'text')
    /** paired | refused */
    .addColumn('outcome', 'text', (c) => c.notNull())
    /** Why a pair was refused (a reason code, pairing.service.ts), the sentence, and the SN or key it collided with. */
    .addColumn('reason', 'text')
    .addColumn('message', 'text')
    .addColumn('conflict', 'text')
    .addColumn('actor', 'text', (c) => c.notNull())
    /** The station's clock when the second code was scanned (a queued pair arrives later). */
    .addColumn('scanned_at', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('pairings_idem').on('pairings').columns(['vendor_id', 'idem_key']).unique().execute();
  await db.schema.alterTable('firmware').addColumn('sha256', 'text').execute();
  await db.schema.createIndex('pairings_shift').on('pairings').columns(['vendor_id', 'shift_id', 'created_at']).execute();
}
