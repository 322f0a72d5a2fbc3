import type { Kysely } from 'kysely';
import type { StorageCapabilities } from '../capabilities.js';

/**
 * Cloud devices (issue 5, §B1/§B3): bind auth codes, device secrets and device access tokens
 * (all stored as SHA-256), cloud presence reports, the dynamic login codes already scanned, and the
 * one-renewal-per-period claim of the model_ticket scheduler.
 */
export async function up(db: Kysely<unknown>, _caps: StorageCapabilities): Promise<void> {
  await db.schema
    .createTable('device_auth_codes')
    .addColumn('code_hash', 'text', (c) => c.primaryKey())
    .addColumn('sn_key', 'text', (c) => c.notNull())
    .addColumn('model_id', 'text', (c) => c.notNull())
    .addColumn('issued_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('used_at', 'bigint')
    .execute();
  await db.schema.createIndex('device_auth_codes_expiry').on('device_auth_codes').column('expires_at').execute();

  // One secret per binding: the row goes when the device is unbound (and with it every token).
  await db.schema
    .createTable('device_secrets')
    .addColumn('device_id', 'integer', (c) => c.primaryKey().references('devices.id').onDelete('cascade'))
    .addColumn('secret_hash', 'text', (c) => c.notNull())
    .addColumn('bound_at', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('device_access_tokens')
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('device_id', 'integer', (c) => c.notNull().references('devices.id').onDelete('cascade'))
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('device_access_tokens_device').on('device_access_tokens').column('device_id').execute();

  // A device that reports through its vendor's cloud; presence is computed from last_report_at.
  await db.schema
    .createTable('cloud_device_status')
    .addColumn('device_id', 'integer', (c) => c.primaryKey().references('devices.id').onDelete('cascade'))
    .addColumn('online', 'integer', (c) => c.notNull())
    .addColumn('last_report_at', 'bigint', (c) => c.notNull())
    .addColumn('cur_version', 'text')
    .addColumn('upgradable_version', 'text')
    .addColumn('upgradable_version_desc', 'text')
    .execute();
  await db.schema.createIndex('cloud_device_status_report').on('cloud_device_status').column('last_report_at').execute();

  // Periodic jobs run once per period across every process: the first INSERT of (job, period) wins.
  await db.schema
    .createTable('job_claims')
    .addColumn('job', 'text', (c) => c.notNull())
    .addColumn('period', 'bigint', (c) => c.notNull())
    .addColumn('claimed_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('job_claims_pk', ['job', 'period'])
    .execute();
}
