import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createPgSchema, postgresUrl, skipReasonPostgres, storageBackends } from '../../testing/backends.js';
import { openDatabase } from './database.js';
import { type FreshDatabase, storageContract } from './storage.contract.js';

/** An empty database of each kind, for the cases that must start from nothing. */
const fresh: Record<'sqlite' | 'postgres', () => Promise<FreshDatabase>> = {
  sqlite: async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'bindery-fresh-'));
    const file = path.join(dir, 'fresh.sqlite');
    return {
      options: { kind: 'sqlite', file },
      open: () => openDatabase({ kind: 'sqlite', file }),
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  },
  postgres: async () => {
    const { schema, drop } = await createPgSchema(postgresUrl!);
    const options = { kind: 'postgres', url: postgresUrl!, schema, poolSize: 2 } as const;
    return { options, open: () => openDatabase(options), drop };
  },
};

for (const { backend, skip } of storageBackends()) storageContract(backend, fresh[backend.name], skip);

describe('PostgreSQL migrations beside other schemas', () => {
  const skip = skipReasonPostgres();
  // CI once failed here: Kysely's introspector called name-taking catalog functions on every
  // schema of the server, and a parallel suite dropping its own schema broke our migration run.
  it.skipIf(skip)('a migration run succeeds while other clients create and drop their schemas', async () => {
    let stop = false;
    const churn = (async () => {
      let n = 0;
      while (!stop) {
        const other = await createPgSchema(postgresUrl!);
        const c = new pg.Client({ connectionString: postgresUrl! });
        await c.connect();
        await c.query(`CREATE TABLE ${other.schema}.t${n++ % 8} (id serial primary key, v text)`);
        await c.end();
        await other.drop();
      }
    })();
    try {
      for (let i = 0; i < 6; i++) {
        const f = await fresh.postgres();
        const db = f.open();
        try {
          await db.migrate();
          const tables = await db.kysely.introspection.getTables();
          expect(tables.map((t) => t.name)).toContain('devices');
          expect(new Set(tables.map((t) => t.schema))).toEqual(new Set([(f.options as { schema: string }).schema]));
        } finally {
          await db.close();
          await f.drop();
        }
      }
    } finally {
      stop = true;
      await churn;
    }
  });
});
