import type { Kysely } from 'kysely';
import type { StorageCapabilities } from '../capabilities.js';

/**
 * Proof of possession by default (issue 11): a typed SN binds without the label's verification
 * code only where the model opts into `sn_only`. Every existing model gets the safe default, so an
 * upgrade closes the SN-alone door; vendors who want it back opt in per model.
 */
export async function up(db: Kysely<unknown>, _caps: StorageCapabilities): Promise<void> {
  await db.schema
    .alterTable('model_bind_settings')
    .addColumn('typed_sn_mode', 'text', (c) => c.notNull().defaultTo('verif_code'))
    .execute();
}
