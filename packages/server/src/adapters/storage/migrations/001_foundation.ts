import type { Kysely } from 'kysely';
import type { StorageCapabilities } from '../capabilities.js';

export async function up(db: Kysely<unknown>, caps: StorageCapabilities): Promise<void> {
  await db.schema
    .createTable('users')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('username', 'text', (c) => c.notNull().unique())
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('password_hash', 'text', (c) => c.notNull())
    .addColumn('is_operator', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('vendors')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('api_tokens')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.references('users.id').onDelete('cascade'))
    .addColumn('vendor_id', 'text', (c) => c.references('vendors.id').onDelete('cascade'))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('last_used_at', 'bigint')
    .addColumn('revoked_at', 'bigint')
    .execute();

  await db.schema
    .createTable('models')
    .addColumn('model_id', 'text', (c) => c.primaryKey())
    .addColumn('vendor_id', 'text', (c) => c.notNull().references('vendors.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('product_key', 'text', (c) => c.notNull().unique())
    .addColumn('category_code', 'text', (c) => c.notNull())
    .addColumn('class_code', 'text', (c) => c.notNull())
    .addColumn('secret_hash', 'text', (c) => c.notNull())
    .addColumn('seed_secret_no_enc', 'text')
    .addColumn('label_format', 'text', (c) => c.notNull())
    .addColumn('label_template', 'text')
    .addColumn('binding_mode', 'text', (c) => c.notNull().defaultTo('owner_only'))
    .addColumn('require_check_char', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('models_vendor').on('models').column('vendor_id').execute();

  await db.schema
    .createTable('model_tickets')
    .addColumn('ticket_hash', 'text', (c) => c.primaryKey())
    .addColumn('ticket_enc', 'text', (c) => c.notNull())
    .addColumn('model_id', 'text', (c) => c.notNull().references('models.model_id').onDelete('cascade'))
    .addColumn('issued_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('model_tickets_model').on('model_tickets').columns(['model_id', 'issued_at']).execute();

  await db.schema
    .createTable('model_tokens')
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('model_id', 'text', (c) => c.notNull().references('models.model_id').onDelete('cascade'))
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('organisations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('parent_id', 'text', (c) => c.references('organisations.id'))
    .addColumn('mchid', 'text', (c) => c.unique())
    .addColumn('merchant_shortname', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('batches')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('model_id', 'text', (c) => c.notNull().references('models.model_id'))
    .addColumn('vendor_id', 'text', (c) => c.notNull().references('vendors.id'))
    .addColumn('count', 'integer', (c) => c.notNull())
    .addColumn('pattern', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('error', 'text')
    .addColumn('downloads', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('finished_at', 'bigint')
    .execute();
  await db.schema.createIndex('batches_model').on('batches').column('model_id').execute();

  await caps
    .serialId(db.schema.createTable('devices'), 'id')
    .addColumn('sn', 'text', (c) => c.notNull())
    .addColumn('sn_key', 'text', (c) => c.notNull().unique())
    .addColumn('model_id', 'text', (c) => c.notNull().references('models.model_id'))
    .addColumn('vendor_id', 'text', (c) => c.notNull().references('vendors.id'))
    .addColumn('batch_id', 'text', (c) => c.references('batches.id'))
    .addColumn('secret_no_enc', 'text', (c) => c.notNull())
    .addColumn('hw_code', 'text', (c) => c.notNull().unique())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('registered_at', 'bigint', (c) => c.notNull())
    .addColumn('camera_sn', 'text')
    .addColumn('app_scene_code', 'text')
    .addColumn('operating_system', 'text')
    .addColumn('device_key', 'text')
    .addColumn('device_key_norm', 'text', (c) => c.unique())
    .addColumn('device_name', 'text')
    .addColumn('cert_fingerprint', 'text')
    .addColumn('paired_at', 'bigint')
    .addColumn('active_code', 'text', (c) => c.unique())
    .addColumn('registered_net_at', 'bigint')
    .addColumn('activated_at', 'bigint')
    .addColumn('secret_enc', 'text')
    .addColumn('online', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_seen_at', 'bigint')
    .addColumn('firmware_version', 'text')
    .addColumn('remote_addr', 'text')
    .addColumn('node_id', 'text')
    .addColumn('owner_type', 'text')
    .addColumn('owner_id', 'text')
    .addColumn('bound_at', 'bigint')
    .addColumn('bound_by', 'text')
    .addColumn('remark_name', 'text')
    .execute();
  await db.schema.createIndex('devices_model').on('devices').columns(['model_id', 'id']).execute();
  await db.schema.createIndex('devices_vendor').on('devices').columns(['vendor_id', 'id']).execute();
  await db.schema.createIndex('devices_batch').on('devices').columns(['batch_id', 'id']).execute();
  await db.schema.createIndex('devices_owner').on('devices').columns(['owner_type', 'owner_id', 'id']).execute();

  await caps
    .serialId(db.schema.createTable('audit_log'), 'id')
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('data', 'text')
    .execute();
  await db.schema.createIndex('audit_subject').on('audit_log').columns(['subject', 'id']).execute();
}
