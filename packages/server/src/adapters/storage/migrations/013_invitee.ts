import type { Kysely } from 'kysely';
import type { StorageCapabilities } from '../capabilities.js';

/**
 * Invitations name whom they were addressed to (issue 12): `invitee` keeps what the admin typed
 * for an invitation to an existing person (their username, or the user id given), so the pending
 * list can say who has not answered yet. It is only ever the admin's own input, stored whether or
 * not such a user exists, so it reveals nothing about other tenants. Null for an open link.
 */
export async function up(db: Kysely<unknown>, _caps: StorageCapabilities): Promise<void> {
  await db.schema.alterTable('invites').addColumn('invitee', 'text').execute();
}
