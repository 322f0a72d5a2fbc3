/**
 * What bench:vendor-devices and bench:relations share: a bench database (a SQLite file, or a fresh
 * PostgreSQL schema dropped afterwards) with the services' dependencies, devices made in bulk by
 * the database itself, and the pause between timed phases.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { sql } from 'kysely';
import { SecretBox } from '../packages/server/src/adapters/secrets/secret-box.js';
import { type Db, openDatabase } from '../packages/server/src/adapters/storage/database.js';
import { type Config, loadConfig } from '../packages/server/src/config.js';
import { systemClock } from '../packages/server/src/shared/clock.js';
import { Metrics } from '../packages/server/src/shared/metrics.js';
import { createPgSchema } from '../packages/server/src/testing/backends.js';

export type BenchBackend = 'sqlite' | 'postgres';

export interface BenchDb {
  db: Db;
  /** What the feature services take (DevicesService, RelationsService, …). */
  deps: { config: Config; db: Db; clock: typeof systemClock; secrets: SecretBox; metrics: Metrics };
  close(): Promise<void>;
}

/** A migrated, empty database: `<dir>/bench.sqlite`, or a new schema on DATABASE_URL's server. */
export async function openBenchDb(backend: BenchBackend, dir: string): Promise<BenchDb> {
  let db: Db;
  let drop = async () => {};
  if (backend === 'sqlite') db = openDatabase({ kind: 'sqlite', file: path.join(dir, 'bench.sqlite') });
  else {
    const url = process.env.DATABASE_URL;
    if (!url) throw new Error('PostgreSQL needs DATABASE_URL');
    const s = await createPgSchema(url);
    drop = s.drop;
    db = openDatabase({ kind: 'postgres', url, schema: s.schema, poolSize: 4 });
  }
  try {
    await db.migrate();
  } catch (e) {
    await db.close();
    await drop();
    throw e;
  }
  const config = loadConfig({ BINDERY_DATA_DIR: dir, BINDERY_PUBLIC_URL: 'https://bindery.bench', BINDERY_LOG_LEVEL: 'silent' });
  return {
    db,
    deps: { config, db, clock: systemClock, secrets: new SecretBox(randomBytes(32)), metrics: new Metrics(false) },
    async close() {
      await db.close();
      await drop();
    },
  };
}

export interface FillOptions {
  vendorId: string;
  /** Devices go to these models in turn. */
  modelIds: string[];
  count: number;
  /** SNs are the prefix and 7 digits: `BDG0000000`, `BDG0000001`, … */
  prefix: string;
  /**
   * A fleet in use: an IMEI each, three firmware versions, and per 20 devices 12 registered,
   * 2 activated, 4 bound, 2 online. Without it every device is registered and unpaired.
   */
  inUse?: boolean;
}

/**
 * Devices made by one `INSERT … SELECT` over a generated series (seconds for a million, where
 * rows built in Node and sent in chunks take minutes). The SecretNo is a placeholder: nothing
 * here opens it. settle() afterwards gives the planner its statistics.
 */
export async function fillDevices(db: Db, o: FillOptions): Promise<void> {
  const now = Date.now();
  const cases = sql.join(
    o.modelIds.map((m, k) => sql`WHEN ${sql.lit(k)} THEN ${m}`),
    sql` `,
  );
  const cols = sql.raw(
    '(sn, sn_key, model_id, vendor_id, secret_no_enc, hw_code, state, registered_at, device_key, device_key_norm, activated_at, online, owner_type, owner_id, firmware_version)',
  );
  const upper = sql.lit(o.prefix.toUpperCase());
  const lower = sql.lit(o.prefix.toLowerCase());
  const use = (expr: string) => (o.inUse ? sql.raw(expr) : sql.raw('NULL'));
  const body = (pad7: string, pad13: string) => sql`
    SELECT ${upper} || ${sql.raw(pad7)}, ${lower} || ${sql.raw(pad7)},
      CASE i % ${sql.lit(o.modelIds.length)} ${cases} END,
      ${o.vendorId}, 'v1.bench', 'hw' || ${lower} || ${sql.raw(pad7)}, 'registered', ${sql.lit(now)},
      ${use(`'86' || ${pad13}`)}, ${use(`'86' || ${pad13}`)},
      ${use(`CASE WHEN i % 20 >= 12 THEN ${now} END`)},
      ${o.inUse ? sql.raw('CASE WHEN i % 20 >= 18 THEN 1 ELSE 0 END') : sql.raw('0')},
      ${use(`CASE WHEN i % 20 >= 14 THEN 'org' END`)},
      ${use(`CASE WHEN i % 20 >= 14 THEN 'org_bench' END`)},
      ${use(`'1.0.' || (i % 3)`)}`;
  if (db.caps.backend === 'sqlite') {
    await sql`WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < ${o.count - 1})
      INSERT INTO devices ${cols} ${body("substr('0000000' || i, -7)", "substr('0000000000000' || i, -13)")} FROM c`.execute(
      db.kysely,
    );
  } else {
    await sql`INSERT INTO devices ${cols} ${body("lpad(i::text, 7, '0')", "lpad(i::text, 13, '0')")} FROM generate_series(0, ${o.count - 1}) AS i`.execute(
      db.kysely,
    );
  }
}

/**
 * Between timed phases: reclaim the dead row versions the previous phase left (PostgreSQL),
 * refresh the planner's statistics and checkpoint, so every phase starts from the same settled
 * table instead of paying for the one before it (a forced checkpoint or a bloated index in the
 * middle of a timing).
 */
export async function settle(db: Db): Promise<void> {
  if (db.caps.backend === 'postgres') {
    await sql`VACUUM ANALYZE devices`.execute(db.kysely);
    await sql`CHECKPOINT`.execute(db.kysely);
  } else {
    await sql`ANALYZE`.execute(db.kysely);
    await sql`PRAGMA wal_checkpoint(TRUNCATE)`.execute(db.kysely);
  }
}

/** The SN of the i-th device of a fill (the database pads the same way). */
export const benchSn = (prefix: string, i: number) => `${prefix.toUpperCase()}${String(i).padStart(7, '0')}`;
