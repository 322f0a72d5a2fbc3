import { mkdirSync } from 'node:fs';
import path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, Migrator, sql } from 'kysely';
import pg from 'pg';
import { postgresCapabilities, type StorageCapabilities, sqliteCapabilities } from './capabilities.js';
import { migrationsFor } from './migrations/index.js';
import { SchemaScopedPostgresDialect } from './pg-introspector.js';
import type { Database } from './schema.js';
import { FairSqliteDialect } from './sqlite-dialect.js';

export interface Db {
  readonly kysely: Kysely<Database>;
  readonly caps: StorageCapabilities;
  /** Runs every pending migration; safe when several processes start at once. */
  migrate(): Promise<void>;
  /** True when the database answers a trivial query. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

export type DbOptions = { kind: 'sqlite'; file: string } | { kind: 'postgres'; url: string; schema?: string; poolSize?: number };

// BIGINT timestamps come back as strings from pg by default; ours fit in a double exactly.
pg.types.setTypeParser(20, (v) => Number(v));

export function openDatabase(opts: DbOptions): Db {
  if (opts.kind === 'sqlite') return openSqlite(opts.file);
  return openPostgres(opts.url, opts.schema, opts.poolSize);
}

function openSqlite(file: string): Db {
  if (file !== ':memory:') mkdirSync(path.dirname(file), { recursive: true });
  const sqlite = new SqliteDatabase(file);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  const kysely = new Kysely<Database>({ dialect: new FairSqliteDialect({ database: withStatementCache(sqlite) }) });
  // Kysely takes no migration lock on SQLite and runs each step outside a transaction. One
  // IMMEDIATE transaction around the whole run gives both: a second process (server and CLI
  // starting together) waits for the write lock, then finds nothing pending; a failing step
  // leaves no half-made tables.
  const migrate = () =>
    kysely.connection().execute(async (conn) => {
      await sql`BEGIN IMMEDIATE`.execute(conn);
      try {
        await runMigrations(conn, sqliteCapabilities);
        await sql`COMMIT`.execute(conn);
      } catch (e) {
        await sql`ROLLBACK`.execute(conn).catch(() => {});
        throw e;
      }
    });
  return makeDb(kysely, sqliteCapabilities, migrate, async () => {
    await kysely.destroy();
  });
}

/**
 * Kysely asks better-sqlite3 to prepare every statement anew, which costs more than running it
 * for the short queries on hot paths (the gateway, deep merchant pages). The same few hundred
 * texts recur, so keep the compiled statements (LRU). Safe because Kysely's SQLite driver runs
 * one query at a time on its single connection, streams included.
 */
const MAX_CACHED_SQL = 2048;

function withStatementCache(db: SqliteDatabase.Database, max = 512) {
  const cache = new Map<string, SqliteDatabase.Statement>();
  return {
    close: () => db.close(),
    prepare(text: string): SqliteDatabase.Statement {
      // Batch statements (multi-row VALUES, a different text for every row count) are big and
      // rarely repeat: cached, hundreds of them held tens of MB of native memory in an idle
      // gateway. Only the short hot-path texts are kept.
      if (text.length > MAX_CACHED_SQL) return db.prepare(text);
      let stmt = cache.get(text);
      if (stmt) {
        cache.delete(text);
      } else {
        stmt = db.prepare(text);
        if (cache.size >= max) cache.delete(cache.keys().next().value as string);
      }
      cache.set(text, stmt);
      return stmt;
    },
  };
}

function openPostgres(url: string, schema?: string, poolSize = 10): Db {
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    // A per-test schema keeps suites that share one server apart.
    ...(schema ? { options: `-c search_path=${schema}` } : {}),
  });
  const kysely = new Kysely<Database>({ dialect: new SchemaScopedPostgresDialect({ pool }) });
  // Kysely looks for its migration tables in every schema unless told which one; with a second
  // schema on the server (another deployment, parallel test suites) it would find theirs and
  // never create ours. So: the schema this connection creates tables in.
  const migrate = async () => {
    const r = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(kysely);
    const current = r.rows[0]?.schema;
    if (!current) throw new Error('the PostgreSQL search_path names no existing schema; create it first');
    await runMigrations(kysely, postgresCapabilities, current);
  };
  return makeDb(kysely, postgresCapabilities, migrate, async () => {
    await kysely.destroy();
  });
}

async function runMigrations(db: Kysely<Database>, caps: StorageCapabilities, migrationTableSchema?: string): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrationsFor(caps) },
    migrationTableName: 'bindery_migrations',
    migrationLockTableName: 'bindery_migrations_lock',
    ...(migrationTableSchema ? { migrationTableSchema } : {}),
  });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    throw new Error(`migration ${failed?.migrationName ?? ''} failed: ${String(error)}`, { cause: error });
  }
}

function makeDb(
  kysely: Kysely<Database>,
  caps: StorageCapabilities,
  migrate: () => Promise<void>,
  close: () => Promise<void>,
): Db {
  return {
    kysely,
    caps,
    migrate,
    async ping() {
      try {
        await kysely.selectNoFrom((eb) => eb.lit(1).as('one')).execute();
        return true;
      } catch {
        return false;
      }
    },
    close,
  };
}
