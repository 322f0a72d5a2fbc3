import { type Kysely, sql } from 'kysely';
import type { StorageCapabilities } from '../capabilities.js';

/** Every execution state (features/campaigns/campaigns.model.ts EXEC_STATES), one counts row each. */
const STATES = ['queued', 'notified', 'downloading', 'succeeded', 'failed', 'timed_out', 'skipped', 'cancelled'];

/**
 * A campaign's executions counted by state, kept by every transition in its own transaction
 * (features/campaigns): the campaign page read a COUNT … GROUP BY over all its executions on every
 * load (p99 231 ms at 100 000, docs/benchmarks.md); it now reads eight rows. Every campaign has a
 * row for every state from its creation, so a transition is two relative updates (`n = n ± 1`),
 * never an insert. Filled here from the existing executions.
 */
export async function up(db: Kysely<unknown>, _caps: StorageCapabilities): Promise<void> {
  await db.schema
    .createTable('campaign_counts')
    .addColumn('campaign_id', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('n', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('campaign_counts_pk', ['campaign_id', 'state'])
    .execute();
  await backfillCampaignCounts(db);
}

/** Every campaign's rows, counted from its executions (also run by campaigns.counts.test.ts). */
export async function backfillCampaignCounts(db: Kysely<unknown>): Promise<void> {
  const states = sql.join(
    STATES.map((s) => sql`SELECT ${s} AS state`),
    sql` UNION ALL `,
  );
  await sql`INSERT INTO campaign_counts (campaign_id, state, n)
    SELECT c.id, s.state, (SELECT count(*) FROM campaign_executions e WHERE e.campaign_id = c.id AND e.state = s.state)
    FROM campaigns c CROSS JOIN (${states}) s`.execute(db);
}
