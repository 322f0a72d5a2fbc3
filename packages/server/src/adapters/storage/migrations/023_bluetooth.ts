import type { Kysely } from 'kysely';
import type { StorageCapabilities } from '../capabilities.js';

/**
 * Bluetooth discovery (issue 15, docs/protocol.md BT): the last identity-proof nonce the server
 * accepted per device (BT-11: a proof must carry a greater one), and the tickets an accepted proof
 * gives its reader — stored as SHA-256, bound to the account, valid 5 minutes; a bind spends one
 * through used_qr_codes, so the database is the one place every process sees.
 */
export async function up(db: Kysely<unknown>, _caps: StorageCapabilities): Promise<void> {
  await db.schema
    .createTable('bluetooth_nonces')
    .addColumn('device_id', 'integer', (c) => c.primaryKey().references('devices.id').onDelete('cascade'))
    .addColumn('last_nonce', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('bluetooth_tickets')
    .addColumn('ticket_hash', 'text', (c) => c.primaryKey())
    .addColumn('device_id', 'integer', (c) => c.notNull().references('devices.id').onDelete('cascade'))
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('nonce', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('bluetooth_tickets_expiry').on('bluetooth_tickets').column('expires_at').execute();
}
