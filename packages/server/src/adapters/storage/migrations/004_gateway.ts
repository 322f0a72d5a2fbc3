import type { Kysely } from 'kysely';
import type { StorageCapabilities } from '../capabilities.js';

/**
 * The device gateway (docs/protocol.md): durable commands for offline devices, published
 * firmware, uploaded logs and error reports. The devices table already has the per-device
 * gateway columns (active_code, secret_enc, online, last_seen_at, firmware_version, remote_addr,
 * node_id); the cluster-wide stale-online sweep needs an index over them.
 */
export async function up(db: Kysely<unknown>, caps: StorageCapabilities): Promise<void> {
  await db.schema.createIndex('devices_online_seen').on('devices').columns(['online', 'last_seen_at']).execute();
  await db.schema.createIndex('devices_node').on('devices').column('node_id').execute();

  // Commands for a device that may be offline (P-PUSH-5): delivered once, on the next subscribe.
  await db.schema
    .createTable('device_commands')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('device_id', 'integer', (c) => c.notNull().references('devices.id').onDelete('cascade'))
    .addColumn('cmd', 'text', (c) => c.notNull())
    .addColumn('body', 'text')
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('delivered_at', 'bigint')
    .addColumn('delivered_node', 'text')
    .execute();
  await db.schema
    .createIndex('device_commands_pending')
    .on('device_commands')
    .columns(['device_id', 'delivered_at', 'expires_at'])
    .execute();
  await db.schema.createIndex('device_commands_expiry').on('device_commands').column('expires_at').execute();

  await db.schema
    .createTable('firmware')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('model_id', 'text', (c) => c.notNull().references('models.model_id').onDelete('cascade'))
    .addColumn('vendor_id', 'text', (c) => c.notNull().references('vendors.id'))
    .addColumn('version', 'text', (c) => c.notNull())
    .addColumn('md5', 'text', (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull())
    // Exactly one of url (hosted elsewhere) and file_name (uploaded into the data dir) is set.
    .addColumn('url', 'text')
    .addColumn('file_name', 'text')
    .addColumn('notes', 'text')
    .addColumn('is_current', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('firmware_model_version').on('firmware').columns(['model_id', 'version']).unique().execute();
  await db.schema.createIndex('firmware_model_current').on('firmware').columns(['model_id', 'is_current']).execute();

  await db.schema
    .createTable('device_logs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('device_id', 'integer', (c) => c.notNull().references('devices.id').onDelete('cascade'))
    .addColumn('req_id', 'text', (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('file_name', 'text', (c) => c.notNull())
    .addColumn('uploaded_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('device_logs_device').on('device_logs').columns(['device_id', 'uploaded_at']).execute();

  await caps
    .serialId(db.schema.createTable('device_error_reports'), 'id')
    .addColumn('device_id', 'integer', (c) => c.notNull().references('devices.id').onDelete('cascade'))
    .addColumn('errcode', 'bigint', (c) => c.notNull())
    .addColumn('errmsg', 'text', (c) => c.notNull())
    .addColumn('reported_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('device_error_reports_device').on('device_error_reports').columns(['device_id', 'id']).execute();
  await db.schema.createIndex('device_error_reports_at').on('device_error_reports').column('reported_at').execute();
}
