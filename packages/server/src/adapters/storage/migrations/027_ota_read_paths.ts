import { type Kysely, sql } from 'kysely';
import type { StorageCapabilities } from '../capabilities.js';

/**
 * Read paths of issue 14's dashboards at scale (bench/dashboard.ts, bench/campaign-100k.ts,
 * docs/benchmarks.md); no new facts, only shapes that make the reads short.
 *
 * - fleet_online_daily: each day's highest hourly sample per scope and model, kept by the sampler
 *   beside the hourly rows (fleet-stats.service.ts). A chart longer than 14 days read and folded
 *   24 rows per point (8 760 for a year); it now reads one. Filled here from the hourly rows.
 * - fleet_online_at: the sampler refolds the current day's hourly rows after each sample.
 * - fleet_daily_errors_read: the key plus `n`, so the error-code chart is read from the index
 *   alone (a year is 365 × codes rows; each was a table lookup).
 * - campaign_exec_seq: a campaign's executions page in dispatch order without a state filter was a
 *   sort of every execution (100 000 at the target); now it reads the page's rows.
 */
export async function up(db: Kysely<unknown>, _caps: StorageCapabilities): Promise<void> {
  await db.schema
    .createTable('fleet_online_daily')
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('model_id', 'text', (c) => c.notNull())
    /** UTC epoch day. */
    .addColumn('day', 'integer', (c) => c.notNull())
    .addColumn('devices', 'integer', (c) => c.notNull())
    .addColumn('online', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('fleet_online_daily_pk', ['scope', 'model_id', 'day'])
    .execute();
  await sql`INSERT INTO fleet_online_daily (scope, model_id, day, devices, online)
    SELECT scope, model_id, CAST(at / 86400000 AS integer), max(devices), max(online)
    FROM fleet_online GROUP BY scope, model_id, CAST(at / 86400000 AS integer)`.execute(db);
  await db.schema.createIndex('fleet_online_at').on('fleet_online').column('at').execute();
  await db.schema
    .createIndex('fleet_daily_errors_read')
    .on('fleet_daily_errors')
    .columns(['scope', 'model_id', 'day', 'code', 'n'])
    .execute();
  await db.schema.createIndex('campaign_exec_seq').on('campaign_executions').columns(['campaign_id', 'seq']).execute();
}
