import type { Kysely } from 'kysely';
import type { StorageCapabilities } from '../capabilities.js';

/**
 * History of SN↔DeviceKey relation-file imports (issue 2 §8). The pairing itself lives in the
 * device columns of 001 (device_key, device_key_norm UNIQUE, device_name, cert_fingerprint, paired_at).
 */
export async function up(db: Kysely<unknown>, _caps: StorageCapabilities): Promise<void> {
  await db.schema
    .createTable('relation_imports')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('vendor_id', 'text', (c) => c.notNull().references('vendors.id'))
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('file_name', 'text')
    .addColumn('format', 'text', (c) => c.notNull())
    /** imported | rejected (dry runs write nothing, so they leave no history). */
    .addColumn('result', 'text', (c) => c.notNull())
    .addColumn('rows', 'integer', (c) => c.notNull())
    .addColumn('paired', 'integer', (c) => c.notNull())
    .addColumn('updated', 'integer', (c) => c.notNull())
    .addColumn('unchanged', 'integer', (c) => c.notNull())
    .addColumn('error_count', 'integer', (c) => c.notNull())
    /** The first errors as JSON, so a rejected import can be read again later. */
    .addColumn('errors', 'text')
    .addColumn('started_at', 'bigint', (c) => c.notNull())
    .addColumn('finished_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('relation_imports_vendor')
    .on('relation_imports')
    .columns(['vendor_id', 'started_at', 'id'])
    .execute();
}
