import type { Kysely } from 'kysely';
import type { StorageCapabilities } from '../capabilities.js';

/**
 * People, organisations and binding (issue 4): console sessions, invites, departments, roles and
 * scopes, applications, member-binding settings, per-device visibility and co-users, spent dynamic
 * QR codes, and the notification inbox.
 */
export async function up(db: Kysely<unknown>, caps: StorageCapabilities): Promise<void> {
  await db.schema
    .createTable('sessions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('csrf_token', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('ip', 'text')
    .addColumn('user_agent', 'text')
    .execute();
  await db.schema.createIndex('sessions_user').on('sessions').column('user_id').execute();
  await db.schema.createIndex('sessions_expiry').on('sessions').column('expires_at').execute();

  await db.schema
    .createTable('departments')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('organisations.id').onDelete('cascade'))
    .addColumn('parent_id', 'text', (c) => c.references('departments.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('departments_org').on('departments').columns(['org_id', 'parent_id']).execute();

  await db.schema
    .createTable('org_settings')
    .addColumn('org_id', 'text', (c) => c.primaryKey().references('organisations.id').onDelete('cascade'))
    .addColumn('member_binding', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('org_members')
    .addColumn('org_id', 'text', (c) => c.notNull().references('organisations.id').onDelete('cascade'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('department_id', 'text', (c) => c.notNull().references('departments.id'))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('org_members_pk', ['org_id', 'user_id'])
    .execute();
  await db.schema.createIndex('org_members_user').on('org_members').column('user_id').execute();
  await db.schema.createIndex('org_members_department').on('org_members').column('department_id').execute();

  await db.schema
    .createTable('admin_scopes')
    .addColumn('org_id', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('department_id', 'text', (c) => c.notNull().references('departments.id').onDelete('cascade'))
    .addPrimaryKeyConstraint('admin_scopes_pk', ['org_id', 'user_id', 'department_id'])
    .addForeignKeyConstraint('admin_scopes_member', ['org_id', 'user_id'], 'org_members', ['org_id', 'user_id'], (fk) =>
      fk.onDelete('cascade'),
    )
    .execute();

  await db.schema
    .createTable('invites')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('org_id', 'text', (c) => c.notNull().references('organisations.id').onDelete('cascade'))
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('department_id', 'text', (c) => c.notNull().references('departments.id').onDelete('cascade'))
    .addColumn('scope', 'text')
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('accepted_by', 'text')
    .addColumn('accepted_at', 'bigint')
    .addColumn('revoked_at', 'bigint')
    .execute();
  await db.schema.createIndex('invites_org').on('invites').columns(['org_id', 'created_at']).execute();

  await db.schema
    .createTable('applications')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('organisations.id').onDelete('cascade'))
    .addColumn('app_key', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('applications_org_key', ['org_id', 'app_key'])
    .execute();

  await db.schema
    .createTable('application_admins')
    .addColumn('app_id', 'text', (c) => c.notNull().references('applications.id').onDelete('cascade'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addPrimaryKeyConstraint('application_admins_pk', ['app_id', 'user_id'])
    .execute();

  await db.schema
    .createTable('model_bind_settings')
    .addColumn('model_id', 'text', (c) => c.primaryKey().references('models.model_id').onDelete('cascade'))
    .addColumn('require_verif_code', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('app_key', 'text')
    .addColumn('app_name', 'text')
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await caps
    .serialId(db.schema.createTable('device_visibility'), 'id')
    .addColumn('device_id', 'integer', (c) => c.notNull().references('devices.id').onDelete('cascade'))
    .addColumn('department_id', 'text', (c) => c.references('departments.id').onDelete('cascade'))
    .addColumn('user_id', 'text', (c) => c.references('users.id').onDelete('cascade'))
    .execute();
  await db.schema.createIndex('device_visibility_device').on('device_visibility').column('device_id').execute();

  await db.schema
    .createTable('device_apps')
    .addColumn('device_id', 'integer', (c) => c.primaryKey().references('devices.id').onDelete('cascade'))
    .addColumn('app_id', 'text', (c) => c.notNull().references('applications.id').onDelete('cascade'))
    .addColumn('enabled_by', 'text', (c) => c.notNull())
    .addColumn('enabled_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('device_users')
    .addColumn('device_id', 'integer', (c) => c.notNull().references('devices.id').onDelete('cascade'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('added_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('device_users_pk', ['device_id', 'user_id'])
    .execute();
  await db.schema.createIndex('device_users_user').on('device_users').column('user_id').execute();

  await db.schema
    .createTable('used_qr_codes')
    .addColumn('code_hash', 'text', (c) => c.primaryKey())
    .addColumn('sn_key', 'text', (c) => c.notNull())
    .addColumn('used_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('used_qr_codes_expiry').on('used_qr_codes').column('expires_at').execute();

  // Static management QR codes (type=static_login): valid while the device stays with its owner.
  await db.schema
    .createTable('login_codes')
    .addColumn('code_hash', 'text', (c) => c.primaryKey())
    .addColumn('device_id', 'integer', (c) => c.notNull().references('devices.id').onDelete('cascade'))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('login_codes_device').on('login_codes').column('device_id').execute();

  await caps
    .serialId(db.schema.createTable('notifications'), 'id')
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('link', 'text')
    .addColumn('data', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('read_at', 'bigint')
    .execute();
  await db.schema.createIndex('notifications_user').on('notifications').columns(['user_id', 'id']).execute();
  await db.schema.createIndex('notifications_unread').on('notifications').columns(['user_id', 'read_at']).execute();
}
