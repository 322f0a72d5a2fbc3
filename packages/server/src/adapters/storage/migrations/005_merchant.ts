import { type Kysely, sql } from 'kysely';
import type { StorageCapabilities } from '../capabilities.js';

/**
 * The merchant tier (WeChat Pay v3 /v3/iotmanage): merchant settings, merchant API keys, the
 * platform's signing key, factory inspections, and the per-merchant fleet order that makes deep
 * OFFSET pages cheap (docs/merchant-api.md, "Deep offsets").
 */
export async function up(db: Kysely<unknown>, _caps: StorageCapabilities): Promise<void> {
  // A top-level merchant: an organisation with an mchid and a row here. Sub-merchants are child
  // organisations whose own `mchid` column holds their sub_mchid.
  await db.schema
    .createTable('merchants')
    .addColumn('org_id', 'text', (c) => c.primaryKey().references('organisations.id'))
    .addColumn('key_mode', 'text', (c) => c.notNull())
    .addColumn('apiv3_key_enc', 'text')
    // The fleet: every device owned by the merchant or one of its sub-merchants carries a
    // merchant_seq; next_seq hands out the next one, total counts them, version changes on
    // every membership change so processes know when their cached block sums are stale.
    .addColumn('fleet_next_seq', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('fleet_total', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('fleet_version', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  // How many fleet members fall in each block of 1 024 consecutive merchant_seq values.
  await db.schema
    .createTable('merchant_fleet_blocks')
    .addColumn('merchant_org_id', 'text', (c) => c.notNull())
    .addColumn('block_no', 'bigint', (c) => c.notNull())
    .addColumn('count', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('merchant_fleet_blocks_pk', ['merchant_org_id', 'block_no'])
    .execute();

  await db.schema.alterTable('devices').addColumn('merchant_org_id', 'text').execute();
  await db.schema.alterTable('devices').addColumn('merchant_seq', 'bigint').execute();
  await db.schema
    .createIndex('devices_merchant_seq')
    .on('devices')
    .columns(['merchant_org_id', 'merchant_seq'])
    .unique()
    .execute();

  await db.schema
    .createTable('merchant_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('merchant_org_id', 'text', (c) => c.notNull().references('organisations.id'))
    .addColumn('serial_no', 'text', (c) => c.notNull())
    // Upper-cased serial: clients send it in either case.
    .addColumn('serial_key', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('public_key_pem', 'text', (c) => c.notNull())
    .addColumn('certificate_pem', 'text')
    .addColumn('not_after', 'bigint')
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('revoked_at', 'bigint')
    .execute();
  await db.schema
    .createIndex('merchant_keys_active_serial')
    .on('merchant_keys')
    .columns(['merchant_org_id', 'serial_key'])
    .unique()
    .where(sql.ref('revoked_at'), 'is', null)
    .execute();

  // The platform's RSA key: signs every /v3 reply, in both key modes (one key, two names).
  await db.schema
    .createTable('platform_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('pub_key_id', 'text', (c) => c.notNull())
    .addColumn('cert_serial', 'text', (c) => c.notNull())
    .addColumn('private_key_enc', 'text', (c) => c.notNull())
    .addColumn('public_key_pem', 'text', (c) => c.notNull())
    .addColumn('certificate_pem', 'text', (c) => c.notNull())
    .addColumn('not_before', 'bigint', (c) => c.notNull())
    .addColumn('not_after', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('device_inspections')
    .addColumn('device_id', 'integer', (c) => c.primaryKey().references('devices.id').onDelete('cascade'))
    .addColumn('wired_mac', 'text', (c) => c.notNull())
    .addColumn('wireless_mac', 'text', (c) => c.notNull())
    .addColumn('bluetooth_mac', 'text', (c) => c.notNull())
    .addColumn('app_version', 'text', (c) => c.notNull())
    .addColumn('camera_sn', 'text', (c) => c.notNull())
    .addColumn('imei', 'text', (c) => c.notNull())
    .addColumn('result', 'text', (c) => c.notNull())
    .addColumn('errors', 'text', (c) => c.notNull())
    .addColumn('warnings', 'text', (c) => c.notNull())
    .addColumn('inspect_time', 'bigint', (c) => c.notNull())
    .addColumn('imported_at', 'bigint', (c) => c.notNull())
    .addColumn('imported_by', 'text', (c) => c.notNull())
    .execute();
}
