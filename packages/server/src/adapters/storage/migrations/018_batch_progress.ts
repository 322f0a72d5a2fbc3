import type { Kysely } from 'kysely';
import type { StorageCapabilities } from '../capabilities.js';

/**
 * Label batches made in the background (issue 13, item 4): a batch is `generating` while its
 * devices are written a slice at a time; `heartbeat_at` is when its last slice committed, so a
 * batch whose process stopped can be told from one still being written and be rolled back.
 */
export async function up(db: Kysely<unknown>, _caps: StorageCapabilities): Promise<void> {
  await db.schema.alterTable('batches').addColumn('heartbeat_at', 'bigint').execute();
}
