import { createHash } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import type { StorageCapabilities } from '../capabilities.js';

/**
 * Secrets at rest (issue 11, finding 10): `devices.active_code` holds the SHA-256 of the code
 * (adapters/secrets/active-code.ts) and the new `active_code_enc` a copy sealed with the master
 * key. Existing codes are hashed here; they have no sealed copy (a migration has no master key),
 * so they keep working for `active`, and the device's next `register` issues it a new code once.
 */
export async function up(db: Kysely<unknown>, caps: StorageCapabilities): Promise<void> {
  await db.schema.alterTable('devices').addColumn('active_code_enc', 'text').execute();
  const size = caps.insertChunk(3);
  for (let lastId = 0; ; ) {
    const rows = (
      await sql<{ id: number; active_code: string }>`SELECT id, active_code FROM devices
        WHERE active_code IS NOT NULL AND id > ${lastId} ORDER BY id LIMIT ${size}`.execute(db)
    ).rows;
    if (rows.length === 0) break;
    lastId = Number(rows[rows.length - 1]!.id);
    const values = sql.join(rows.map((r) => sql`(CAST(${Number(r.id)} AS integer), CAST(${sha256(r.active_code)} AS text))`));
    await sql`UPDATE devices SET active_code = v.column2 FROM (VALUES ${values}) AS v WHERE devices.id = v.column1`.execute(db);
  }
}

function sha256(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}
