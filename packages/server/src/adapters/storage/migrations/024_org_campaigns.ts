import type { Kysely } from 'kysely';
import type { StorageCapabilities } from '../capabilities.js';

/**
 * Organisation campaigns, maintenance windows and department targets (issue 14, features/campaigns):
 * a model may let the organisations that own its devices run campaigns themselves; an organisation
 * has a time zone (IANA name; null = the instance's default) that maintenance windows are read in;
 * a campaign may belong to an organisation and carry a maintenance window.
 */
export async function up(db: Kysely<unknown>, _caps: StorageCapabilities): Promise<void> {
  await db.schema
    .alterTable('models')
    .addColumn('org_campaigns_allowed', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.alterTable('org_settings').addColumn('time_zone', 'text').execute();
  /** The organisation that runs the campaign; null for the vendor's own. */
  await db.schema.alterTable('campaigns').addColumn('org_id', 'text').execute();
  /** JSON {start, end, days?}: devices are notified only inside it, in their owner's time zone. */
  await db.schema.alterTable('campaigns').addColumn('maintenance_window', 'text').execute();
  await db.schema.createIndex('campaigns_org').on('campaigns').columns(['org_id', 'created_at']).execute();
}
