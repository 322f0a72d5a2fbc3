import type { ColumnDefinitionBuilder, CreateTableBuilder, SelectQueryBuilder } from 'kysely';

/**
 * The real differences between the two backends, named. Features and migrations ask for a
 * capability; nothing outside this folder tests which dialect is in use.
 */
export interface StorageCapabilities {
  readonly backend: 'sqlite' | 'postgres';
  /** Adds an auto-assigned integer primary key column. */
  serialId<T extends string, C extends string>(t: CreateTableBuilder<T, C>, name: C): CreateTableBuilder<T, C>;
  /** Most bind parameters one statement may carry. */
  readonly maxParams: number;
  /** Rows per multi-row INSERT for a table of `columns` columns. */
  insertChunk(columns: number): number;
  /** True when `err` is a unique-constraint violation (each driver reports it its own way). */
  isUniqueViolation(err: unknown): boolean;
  /**
   * Finishes a generated column added to an existing table: SQLite adds only VIRTUAL ones (computed
   * on read, stored in its indexes), PostgreSQL before 18 only STORED ones. Either may be indexed.
   */
  generatedColumn(c: ColumnDefinitionBuilder): ColumnDefinitionBuilder;
  /**
   * Locks the rows a select reads, skipping rows another transaction holds, for a bulk UPDATE that
   * must never wait on (and so never deadlock with) row writers: PostgreSQL `FOR UPDATE SKIP LOCKED`.
   * SQLite has no row locks (one writer at a time): the select is returned as it is.
   */
  skipLockedRows<DB, TB extends keyof DB, O>(q: SelectQueryBuilder<DB, TB, O>): SelectQueryBuilder<DB, TB, O>;
}

function chunk(maxParams: number, columns: number): number {
  return Math.max(1, Math.min(1000, Math.floor(maxParams / Math.max(1, columns))));
}

export const sqliteCapabilities: StorageCapabilities = {
  backend: 'sqlite',
  serialId: (t, name) => t.addColumn(name, 'integer', (c: ColumnDefinitionBuilder) => c.primaryKey().autoIncrement()),
  maxParams: 32_000,
  insertChunk: (columns) => chunk(32_000, columns),
  isUniqueViolation: (err) =>
    typeof err === 'object' && err !== null && String((err as { code?: unknown }).code).startsWith('SQLITE_CONSTRAINT_UNIQUE'),
  generatedColumn: (c) => c,
  skipLockedRows: (q) => q,
};

export const postgresCapabilities: StorageCapabilities = {
  backend: 'postgres',
  serialId: (t, name) =>
    t.addColumn(name, 'integer', (c: ColumnDefinitionBuilder) => c.primaryKey().generatedByDefaultAsIdentity()),
  maxParams: 65_000,
  insertChunk: (columns) => chunk(65_000, columns),
  isUniqueViolation: (err) => typeof err === 'object' && err !== null && (err as { code?: unknown }).code === '23505',
  generatedColumn: (c) => c.stored(),
  skipLockedRows: (q) => q.forUpdate().skipLocked(),
};
