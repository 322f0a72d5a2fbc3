import type { Kysely } from 'kysely';
import type { StorageCapabilities } from '../capabilities.js';

/**
 * Durable commands that failed (docs/protocol.md P-PUSH-7): the device answered one with a non-zero
 * errcode, or the cloud marked it delivered and then could not write it (the connection closed
 * first). `failed_at` set means `failed`, whatever `delivered_at` says; `fail_code` is the device's
 * errcode (null when no device answered), `fail_reason` its errmsg or the cloud's reason (≤ 256
 * characters). One column per statement: SQLite's ALTER TABLE adds one at a time.
 */
export async function up(db: Kysely<unknown>, _caps: StorageCapabilities): Promise<void> {
  await db.schema.alterTable('device_commands').addColumn('failed_at', 'bigint').execute();
  await db.schema.alterTable('device_commands').addColumn('fail_code', 'bigint').execute();
  await db.schema.alterTable('device_commands').addColumn('fail_reason', 'text').execute();
}
