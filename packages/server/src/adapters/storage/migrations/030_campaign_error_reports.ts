import type { Kysely } from 'kysely';
import type { StorageCapabilities } from '../capabilities.js';

/**
 * error_reports past a threshold fail an execution (issue 14 item 2; features/campaigns): each
 * campaign says how many `error_report`s a downloading device may send before its execution ends
 * as failed, and each execution counts the ones it got (incremented in the transaction that
 * judges them, so two processes' reports never lose a count). Campaigns started before this
 * failed on the first report; they keep that (threshold 1). New campaigns default to 3
 * (campaigns.model.ts DEFAULT_ERROR_REPORT_THRESHOLD).
 */
export async function up(db: Kysely<unknown>, _caps: StorageCapabilities): Promise<void> {
  await db.schema
    .alterTable('campaigns')
    .addColumn('error_report_threshold', 'integer', (c) => c.notNull().defaultTo(1))
    .execute();
  await db.schema
    .alterTable('campaign_executions')
    .addColumn('error_reports', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
}
