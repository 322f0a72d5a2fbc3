import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { type Db, openDatabase } from '../adapters/storage/database.js';

/**
 * Storage backends for suites that must pass on both. PostgreSQL runs when TEST_DATABASE_URL
 * (or DATABASE_URL) is set: each suite gets its own schema, dropped afterwards, because CI and
 * later sessions share the server. Without one, the PostgreSQL cases skip with a printed reason.
 */
export interface TestBackend {
  name: 'sqlite' | 'postgres';
  /** Opens a fresh, migrated database; `cleanup` removes every trace of it. */
  open(): Promise<{ db: Db; cleanup: () => Promise<void> }>;
}

export const postgresUrl: string | undefined = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL;
export const redisUrl: string | undefined = process.env.TEST_REDIS_URL ?? process.env.REDIS_URL;

let warnedPg = false;
let warnedRedis = false;
export function skipReasonPostgres(): string | undefined {
  if (postgresUrl) return undefined;
  if (!warnedPg) {
    warnedPg = true;
    console.warn('[bindery tests] PostgreSQL suites skipped: set DATABASE_URL=postgres://… to run them');
  }
  return 'no DATABASE_URL';
}
export function skipReasonRedis(): string | undefined {
  if (redisUrl) return undefined;
  if (!warnedRedis) {
    warnedRedis = true;
    console.warn('[bindery tests] Redis suites skipped: set REDIS_URL=redis://… to run them');
  }
  return 'no REDIS_URL';
}

export const sqliteBackend: TestBackend = {
  name: 'sqlite',
  async open() {
    const dir = mkdtempSync(path.join(tmpdir(), 'bindery-test-'));
    const db = openDatabase({ kind: 'sqlite', file: path.join(dir, 'test.sqlite') });
    await db.migrate();
    return {
      db,
      cleanup: async () => {
        await db.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

/** Creates an empty schema on the test server and returns its name. */
export async function createPgSchema(url: string): Promise<{ schema: string; drop: () => Promise<void> }> {
  const schema = `bindery_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  return {
    schema,
    drop: async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await c.end();
    },
  };
}

export const postgresBackend: TestBackend = {
  name: 'postgres',
  async open() {
    if (!postgresUrl) throw new Error('no DATABASE_URL');
    const { schema, drop } = await createPgSchema(postgresUrl);
    const db = openDatabase({ kind: 'postgres', url: postgresUrl, schema, poolSize: 4 });
    await db.migrate();
    return {
      db,
      cleanup: async () => {
        await db.close();
        await drop();
      },
    };
  },
};

/** The backends a "both backends" suite runs on, each with its skip reason if any. */
export function storageBackends(): Array<{ backend: TestBackend; skip: string | undefined }> {
  return [
    { backend: sqliteBackend, skip: undefined },
    { backend: postgresBackend, skip: skipReasonPostgres() },
  ];
}

/** Removes every key under `prefix:` from the shared test Redis (suites clean up after themselves). */
export async function deleteRedisPrefix(prefix: string, client?: Redis): Promise<void> {
  const r = client ?? new Redis(redisUrl!);
  let cursor = '0';
  do {
    const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    if (keys.length > 0) await r.del(...keys);
    cursor = next;
  } while (cursor !== '0');
  if (!client) await r.quit();
}
