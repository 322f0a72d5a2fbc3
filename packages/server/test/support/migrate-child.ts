import { createInterface } from 'node:readline';
import { type DbOptions, openDatabase } from '../../src/adapters/storage/database.js';

/**
 * One "process starting up" for the concurrent-migration case: opens the database given as JSON
 * in argv[2], says `ready`, waits for `go` on stdin (so that several children migrate at the
 * same moment), migrates, and exits 0 — or prints the error and exits 1.
 */
const opts = JSON.parse(process.argv[2] ?? '') as DbOptions;
const db = openDatabase(opts);
await db.ping();
console.log('ready');
const lines = createInterface({ input: process.stdin });
for await (const line of lines) if (line.trim() === 'go') break;
try {
  await db.migrate();
  console.log('migrated');
  await db.close();
  process.exit(0);
} catch (e) {
  console.error(e instanceof Error ? `${e.message}\n${e.stack}` : String(e));
  process.exit(1);
}
