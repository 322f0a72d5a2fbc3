import type { Kysely } from 'kysely';
import type { StorageCapabilities } from '../capabilities.js';

/**
 * Staged OTA campaigns (issue 14, features/campaigns): a campaign row holds its settings, where it
 * is (stage, rate, dispatch clock), why it paused, and the lease of the one process scheduling it;
 * one execution row per targeted device carries that device's state, so a process that dies
 * mid-stage loses nothing. Samples are the counts by state over time for the progress chart.
 */
export async function up(db: Kysely<unknown>, _caps: StorageCapabilities): Promise<void> {
  await db.schema
    .createTable('campaigns')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('vendor_id', 'text', (c) => c.notNull().references('vendors.id'))
    .addColumn('model_id', 'text', (c) => c.notNull())
    .addColumn('firmware_id', 'text', (c) => c.notNull())
    .addColumn('version', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    /** running | paused | cancelled | completed */
    .addColumn('status', 'text', (c) => c.notNull())
    /** JSON: what was targeted (kept for the record; executions are the resolved list). */
    .addColumn('target', 'text', (c) => c.notNull())
    /** JSON: canary, rate per minute, growth factor, stage size, maximum rate. */
    .addColumn('stages', 'text', (c) => c.notNull())
    /** JSON: minimum executions and the failure / time-out / did-not-come-back percentages. */
    .addColumn('thresholds', 'text', (c) => c.notNull())
    /** skip | queue */
    .addColumn('offline', 'text', (c) => c.notNull())
    .addColumn('queue_expiry_sec', 'integer', (c) => c.notNull())
    /** How long a notified device has to come back with the new version. */
    .addColumn('window_sec', 'integer', (c) => c.notNull())
    .addColumn('total', 'integer', (c) => c.notNull())
    .addColumn('stage', 'integer', (c) => c.notNull())
    .addColumn('rate_per_min', 'integer', (c) => c.notNull())
    /** Dispatch clock: devices are released at rate_per_min from here. */
    .addColumn('dispatch_at', 'bigint')
    /** Abort criteria count executions finished at or after this (a resume acknowledges the past). */
    .addColumn('counted_from', 'bigint', (c) => c.notNull())
    .addColumn('pause_reason', 'text')
    .addColumn('pause_figures', 'text')
    .addColumn('paused_at', 'bigint')
    .addColumn('lease_owner', 'text')
    .addColumn('lease_until', 'bigint')
    .addColumn('sampled_at', 'bigint')
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addColumn('finished_at', 'bigint')
    .execute();
  await db.schema.createIndex('campaigns_vendor').on('campaigns').columns(['vendor_id', 'created_at']).execute();
  await db.schema.createIndex('campaigns_status').on('campaigns').columns(['status', 'model_id']).execute();

  await db.schema
    .createTable('campaign_executions')
    .addColumn('campaign_id', 'text', (c) => c.notNull())
    .addColumn('sn_key', 'text', (c) => c.notNull())
    .addColumn('sn', 'text', (c) => c.notNull())
    .addColumn('device_id', 'integer', (c) => c.notNull())
    /** Dispatch order (the devices' ids at creation). */
    .addColumn('seq', 'integer', (c) => c.notNull())
    /** The stage that dispatched it; null while queued. */
    .addColumn('stage', 'integer')
    /** queued | notified | downloading | succeeded | failed | timed_out | skipped | cancelled */
    .addColumn('state', 'text', (c) => c.notNull())
    /** Why it ended as it did: came_back_old_version, reported_failure, error_report, did_not_come_back, no_response, expired, offline. */
    .addColumn('detail', 'text')
    .addColumn('from_version', 'text')
    .addColumn('attempts', 'integer', (c) => c.notNull())
    .addColumn('notified_at', 'bigint')
    .addColumn('deadline_at', 'bigint')
    .addColumn('finished_at', 'bigint')
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('campaign_executions_pk', ['campaign_id', 'sn_key'])
    .execute();
  await db.schema.createIndex('campaign_exec_state').on('campaign_executions').columns(['campaign_id', 'state', 'seq']).execute();
  await db.schema.createIndex('campaign_exec_device').on('campaign_executions').columns(['sn_key', 'state']).execute();

  await db.schema
    .createTable('campaign_samples')
    .addColumn('campaign_id', 'text', (c) => c.notNull())
    .addColumn('at', 'bigint', (c) => c.notNull())
    /** JSON: counts by state. */
    .addColumn('counts', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('campaign_samples_pk', ['campaign_id', 'at'])
    .execute();
}
