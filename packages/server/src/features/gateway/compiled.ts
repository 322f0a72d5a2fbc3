import type { Compilable, Kysely, QueryResult } from 'kysely';
import type { Database } from '../../adapters/storage/schema.js';

const SLOT = '\u0000bindery-arg:';

/** Stands for the n-th argument of a `precompile`d query. */
export function arg<T>(n: number): T {
  return `${SLOT}${n}` as unknown as T;
}

/**
 * Compiles a query once and runs it with new arguments (P-PERF-1): the gateway's per-device
 * queries skip Kysely's builder and compiler on every command. The SQL is still Kysely's, for
 * whichever dialect the database uses.
 */
export function precompile<R>(db: Kysely<Database>, q: Compilable<R>): (...args: unknown[]) => Promise<QueryResult<R>> {
  const c = q.compile();
  const at = c.parameters.map((p) => (typeof p === 'string' && p.startsWith(SLOT) ? Number(p.slice(SLOT.length)) : -1));
  return (...args) => db.executeQuery<R>({ ...c, parameters: c.parameters.map((p, i) => (at[i]! >= 0 ? args[at[i]!] : p)) });
}
