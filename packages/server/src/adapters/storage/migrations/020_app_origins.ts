import type { Kysely } from 'kysely';
import type { StorageCapabilities } from '../capabilities.js';

/**
 * Third-party entry (issue 15, item 3): the origins an organisation's application may send people back
 * to after the add-device flow or a device's page (`redirect_uri`). Exact origins (scheme, host, port).
 */
export async function up(db: Kysely<unknown>, _caps: StorageCapabilities): Promise<void> {
  await db.schema
    .createTable('application_origins')
    .addColumn('app_id', 'text', (c) => c.notNull().references('applications.id').onDelete('cascade'))
    .addColumn('origin', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('application_origins_pk', ['app_id', 'origin'])
    .execute();
}
