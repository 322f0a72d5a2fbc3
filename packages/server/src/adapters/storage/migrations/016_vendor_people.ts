import type { Kysely } from 'kysely';
import type { StorageCapabilities } from '../capabilities.js';

/**
 * Vendor people (issue 13): people sign in as members of a vendor with a role (vendor_admin,
 * engineer, production), and invitations bring them in as organisations' do: the link's token is
 * stored as its SHA-256, works once, for seven days.
 */
export async function up(db: Kysely<unknown>, _caps: StorageCapabilities): Promise<void> {
  await db.schema
    .createTable('vendor_members')
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('vendor_id', 'text', (c) => c.notNull().references('vendors.id').onDelete('cascade'))
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    // User first: every signed-in request loads a person's vendor roles by user.
    .addPrimaryKeyConstraint('vendor_members_pk', ['user_id', 'vendor_id'])
    .execute();
  await db.schema.createIndex('vendor_members_vendor').on('vendor_members').columns(['vendor_id', 'created_at']).execute();

  await db.schema
    .createTable('vendor_invites')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('vendor_id', 'text', (c) => c.notNull().references('vendors.id').onDelete('cascade'))
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('accepted_by', 'text')
    .addColumn('accepted_at', 'bigint')
    .addColumn('revoked_at', 'bigint')
    .execute();
  await db.schema.createIndex('vendor_invites_vendor').on('vendor_invites').columns(['vendor_id', 'created_at']).execute();
}
