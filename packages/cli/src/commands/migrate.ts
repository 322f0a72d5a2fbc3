import type { Db } from '@bindery/server/adapters/storage/database.js';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';

/**
 * Names of the migrations already applied. A new database has no migrations table yet, so a
 * failing read means "none"; a real connection problem resurfaces in migrate() right after.
 */
async function applied(db: Db): Promise<string[]> {
  try {
    const rows = await db.kysely
      .withTables<{ bindery_migrations: { name: string; timestamp: string } }>()
      .selectFrom('bindery_migrations')
      .select('name')
      .orderBy('name')
      .execute();
    return rows.map((r) => r.name);
  } catch {
    return [];
  }
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('migrate')
    .description('apply every pending database migration and exit (the server also does this on start)')
    .action(async () => {
      const { deps } = await ctx.open({ migrate: false });
      const before = new Set(await applied(deps.db));
      await deps.db.migrate();
      const after = await applied(deps.db);
      const applied_now = after.filter((n) => !before.has(n));
      const doc = { backend: deps.db.caps.backend, applied: applied_now, migrations: after };
      ctx.out.result(doc, () =>
        applied_now.length
          ? `applied ${applied_now.length} migration(s) on ${doc.backend}: ${applied_now.join(', ')}`
          : `${doc.backend} is up to date (${after.length} migrations)`,
      );
    });
}
