import type { Kysely } from 'kysely';
import type { StorageCapabilities } from '../capabilities.js';

/**
 * Fleet dashboard rollups (issue 14, item 6). Every table is keyed by a scope: `v:<vendorId>` (a
 * vendor's whole fleet) or `o:<orgId>` (an organisation's devices), so a dashboard reads only its
 * own rows whatever the fleet's size. Days are UTC epoch days; samples are hour starts (ms). Keys put
 * the model (or `*`, all models) before the time, so a chart's range is one contiguous index scan.
 */
export async function up(db: Kysely<unknown>, _caps: StorageCapabilities): Promise<void> {
  // Binds, unbinds and error reports per day, counted from domain events as they happen.
  await db.schema
    .createTable('fleet_daily')
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('day', 'integer', (c) => c.notNull())
    .addColumn('model_id', 'text', (c) => c.notNull())
    .addColumn('binds', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('unbinds', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('errors', 'integer', (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint('fleet_daily_pk', ['scope', 'model_id', 'day'])
    .execute();
  await db.schema
    .createTable('fleet_daily_errors')
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('day', 'integer', (c) => c.notNull())
    .addColumn('model_id', 'text', (c) => c.notNull())
    .addColumn('code', 'bigint', (c) => c.notNull())
    .addColumn('n', 'integer', (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint('fleet_daily_errors_pk', ['scope', 'model_id', 'day', 'code'])
    .execute();
  // Devices and online devices, sampled by a periodic job (an upsert per hour: any process may run it).
  await db.schema
    .createTable('fleet_online')
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('model_id', 'text', (c) => c.notNull())
    .addColumn('devices', 'integer', (c) => c.notNull())
    .addColumn('online', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('fleet_online_pk', ['scope', 'model_id', 'at'])
    .execute();
  // The firmware versions the fleet runs, as of the last sample (replaced per scope and model).
  await db.schema
    .createTable('fleet_versions')
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('model_id', 'text', (c) => c.notNull())
    .addColumn('version', 'text', (c) => c.notNull())
    .addColumn('devices', 'integer', (c) => c.notNull())
    .addColumn('online', 'integer', (c) => c.notNull())
    .addColumn('sampled_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('fleet_versions_pk', ['scope', 'model_id', 'version'])
    .execute();
}
