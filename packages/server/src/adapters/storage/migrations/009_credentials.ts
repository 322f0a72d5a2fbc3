import { type Kysely, sql } from 'kysely';
import type { StorageCapabilities } from '../capabilities.js';

/**
 * Credentials at rest (issue 11, finding 10): sessions keep the SHA-256 of their CSRF token
 * (csrf_hash) instead of the token. Existing sessions hold their token in clear and cannot be
 * converted to the new derived tokens, so they are all deleted: everyone signs in again once after
 * this upgrade. API tokens get an index by owner, for listing them and revoking them all when the
 * owner's password changes.
 */
export async function up(db: Kysely<unknown>, _caps: StorageCapabilities): Promise<void> {
  await sql`delete from sessions`.execute(db);
  await db.schema.alterTable('sessions').renameColumn('csrf_token', 'csrf_hash').execute();
  await db.schema.createIndex('api_tokens_user').on('api_tokens').column('user_id').execute();
}
