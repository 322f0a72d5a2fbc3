import type { Kysely, Selectable } from 'kysely';
import type { Database, RelationImportsTable } from '../../adapters/storage/schema.js';
import { fail } from '../../errors.js';
import { type Principal, requireVendor } from '../../shared/principal.js';
import type { RelationsRepo } from './relations.repo.js';
import type { ImportError } from './relations.service.js';

export interface ImportHistoryEntry {
  id: string;
  vendor_id: string;
  actor: string;
  /** The person's display name when `actor` is a person (listImports); null otherwise. */
  actor_name?: string | null;
  file_name: string | null;
  format: string;
  result: string;
  rows: number;
  paired: number;
  updated: number;
  unchanged: number;
  error_count: number;
  errors: ImportError[];
  started_at: string;
  finished_at: string;
}

/** The import history of a vendor, newest first. */
export async function importHistory(
  db: Kysely<Database>,
  repo: RelationsRepo,
  actor: Principal,
  vendorId: string,
  q: { limit?: number; cursor?: string } = {},
): Promise<{ imports: ImportHistoryEntry[]; next_cursor: string | null }> {
  requireVendor(actor, vendorId, 'relations');
  const limit = Math.min(Math.max(q.limit ?? 50, 1), 200);
  let before: { startedAt: number; id: string } | undefined;
  if (q.cursor) {
    const [t, id] = Buffer.from(q.cursor, 'base64url').toString().split(':');
    if (!t || !id || !Number.isSafeInteger(Number(t))) fail('VALIDATION_FAILED', 'cursor is invalid');
    before = { startedAt: Number(t), id };
  }
  const rows = await repo.listImports(vendorId, limit + 1, before);
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  // People are shown by name ("user:usr_…" says nothing to the reader); keys and models keep their label.
  const userIds = [...new Set(page.filter((r) => r.actor.startsWith('user:')).map((r) => r.actor.slice(5)))];
  const names = new Map(
    userIds.length === 0
      ? []
      : (await db.selectFrom('users').select(['id', 'display_name', 'username']).where('id', 'in', userIds).execute()).map(
          (u) => [`user:${u.id}`, u.display_name || u.username],
        ),
  );
  return {
    imports: page.map((r) => ({ ...historyView(r), actor_name: names.get(r.actor) ?? null })),
    next_cursor: rows.length > limit && last ? Buffer.from(`${last.started_at}:${last.id}`).toString('base64url') : null,
  };
}

function historyView(r: Selectable<RelationImportsTable>): ImportHistoryEntry {
  return {
    id: r.id,
    vendor_id: r.vendor_id,
    actor: r.actor,
    file_name: r.file_name,
    format: r.format,
    result: r.result,
    rows: r.rows,
    paired: r.paired,
    updated: r.updated,
    unchanged: r.unchanged,
    error_count: r.error_count,
    errors: r.errors ? (JSON.parse(r.errors) as ImportError[]) : [],
    started_at: new Date(r.started_at).toISOString(),
    finished_at: new Date(r.finished_at).toISOString(),
  };
}
