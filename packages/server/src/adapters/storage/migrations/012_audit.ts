import { type Kysely, sql } from 'kysely';
import type { StorageCapabilities } from '../capabilities.js';

/**
 * The audit log becomes readable (issue 12): each record names the organisation whose things it
 * touched (`org_id`, so an organisation's super admins read only theirs) and the address the
 * request came from (`ip`). Records written before this had the organisation only in their
 * subject (`org:<id>`); those get it here. Device records keep a null organisation: who owned the
 * device at the time is not recorded anywhere else.
 */
export async function up(db: Kysely<unknown>, _caps: StorageCapabilities): Promise<void> {
  await db.schema.alterTable('audit_log').addColumn('org_id', 'text').execute();
  await db.schema.alterTable('audit_log').addColumn('ip', 'text').execute();
  await db.schema.createIndex('audit_org').on('audit_log').columns(['org_id', 'id']).execute();
  await db.schema.createIndex('audit_actor').on('audit_log').columns(['actor', 'id']).execute();
  await sql`UPDATE audit_log SET org_id = substr(subject, 5) WHERE subject LIKE 'org:%'`.execute(db);
}
