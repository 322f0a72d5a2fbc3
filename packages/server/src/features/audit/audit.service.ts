import { type Kysely, type SelectQueryBuilder, sql } from 'kysely';
import type { Database } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { csvChunks } from '../../shared/csv.js';
import { type Principal, requireOperator } from '../../shared/principal.js';
import type { OrganisationsService } from '../organisations/organisations.service.js';

/** Filters of the audit log (GET /api/v1/audit, GET /api/v1/orgs/{orgId}/audit and their .csv). */
export interface AuditQuery {
  /** A user id or username, or a principal label such as `vendor_key:…` or `system:cli`. */
  actor?: string;
  /** An action or its prefix: `device.` matches every device action. */
  action?: string;
  /** The exact subject (`device:SN`, `org:…`, `webhook:…`). */
  subject?: string;
  /** A device's SN: the same as subject `device:<sn>`. */
  sn?: string;
  /** ISO dates or date-times, both inclusive. */
  from?: string;
  to?: string;
  cursor?: string;
  limit?: number;
}

export interface AuditEntry {
  id: number;
  at: string;
  /** Who: the principal label, and for a person their id and names. */
  actor: { label: string; user_id: string | null; username: string | null; display_name: string | null };
  action: string;
  subject: string;
  org_id: string | null;
  ip: string | null;
  data: Record<string, unknown> | null;
}

type Row = {
  id: number;
  at: number;
  actor: string;
  action: string;
  subject: string;
  org_id: string | null;
  ip: string | null;
  data: string | null;
};
type AuditSelect = SelectQueryBuilder<Database, 'audit_log', Row>;

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 200;
const CSV_PAGE = 500;
const CSV_HEADER = ['time', 'actor', 'actor_name', 'action', 'subject', 'organisation', 'address', 'details'];

/**
 * Reading the audit log that shared/audit.ts writes (issue 12): operators read the whole instance,
 * an organisation's super admins the records of their organisation (those written with its
 * org_id). Newest first, with a cursor; the csv export streams the same filters page by page.
 */
export class AuditService {
  constructor(
    private readonly deps: Pick<Deps, 'db'>,
    private readonly orgs: OrganisationsService,
  ) {}

  private get db(): Kysely<Database> {
    return this.deps.db.kysely;
  }

  /** Throws unless the actor may read the organisation's log (its super admins, operators). */
  async requireOrgReader(actor: Principal, orgId: string): Promise<void> {
    const ctx = await this.orgs.context(actor, orgId);
    this.orgs.requireSuperAdmin(ctx);
  }

  async listOrg(actor: Principal, orgId: string, q: AuditQuery): Promise<{ entries: AuditEntry[]; next_cursor: string | null }> {
    await this.requireOrgReader(actor, orgId);
    return this.page(q, orgId);
  }

  async listAll(actor: Principal, q: AuditQuery): Promise<{ entries: AuditEntry[]; next_cursor: string | null }> {
    requireOperator(actor);
    return this.page(q, null);
  }

  /** The csv of the filtered log; the caller is checked before the first byte. */
  async csvOrg(actor: Principal, orgId: string, q: AuditQuery): Promise<AsyncGenerator<Buffer>> {
    await this.requireOrgReader(actor, orgId);
    return this.csv(q, orgId);
  }

  async csvAll(actor: Principal, q: AuditQuery): Promise<AsyncGenerator<Buffer>> {
    requireOperator(actor);
    return this.csv(q, null);
  }

  private async csv(q: AuditQuery, orgId: string | null): Promise<AsyncGenerator<Buffer>> {
    // Filters are checked now, so a bad one is a 400 rather than a broken download.
    const base = await this.query(q, orgId);
    const self = this;
    async function* rows() {
      yield CSV_HEADER;
      for (let cursor: number | undefined; ; ) {
        let s = base;
        if (cursor !== undefined) s = s.where('id', '<', cursor);
        const page = await s.orderBy('id', 'desc').limit(CSV_PAGE).execute();
        if (page.length === 0) return;
        for (const e of await self.entries(page)) {
          yield [
            e.at,
            e.actor.label,
            e.actor.display_name,
            e.action,
            e.subject,
            e.org_id,
            e.ip,
            e.data ? JSON.stringify(e.data) : null,
          ];
        }
        if (page.length < CSV_PAGE) return;
        cursor = page[page.length - 1]!.id;
      }
    }
    return csvChunks(rows(), { bom: true });
  }

  private async page(q: AuditQuery, orgId: string | null): Promise<{ entries: AuditEntry[]; next_cursor: string | null }> {
    const limit = Math.min(Math.max(q.limit ?? DEFAULT_LIMIT, 1), MAX_LIMIT);
    let s = await this.query(q, orgId);
    if (q.cursor !== undefined && q.cursor !== '') {
      if (!/^\d{1,15}$/.test(q.cursor)) fail('VALIDATION_FAILED', 'cursor is not one this list gave');
      s = s.where('id', '<', Number(q.cursor));
    }
    const rows = await s
      .orderBy('id', 'desc')
      .limit(limit + 1)
      .execute();
    const page = rows.slice(0, limit);
    return {
      entries: await this.entries(page),
      next_cursor: rows.length > limit ? String(page[page.length - 1]!.id) : null,
    };
  }

  /** The filtered query (without order, cursor or limit). */
  private async query(q: AuditQuery, orgId: string | null): Promise<AuditSelect> {
    let s: AuditSelect = this.db
      .selectFrom('audit_log')
      .select(['id', 'at', 'actor', 'action', 'subject', 'org_id', 'ip', 'data']);
    if (orgId !== null) s = s.where('org_id', '=', orgId);
    const actor = q.actor?.trim();
    if (actor) s = s.where('actor', '=', await this.actorLabel(actor));
    const action = q.action?.trim();
    if (action) s = s.where(sql<string>`substr(action, 1, CAST(${action.length} AS integer))`, '=', action);
    const subject = q.subject?.trim() || (q.sn?.trim() ? `device:${q.sn.trim()}` : '');
    if (subject) s = s.where('subject', '=', subject);
    const from = q.from ? time(q.from, 'from', false) : null;
    const to = q.to ? time(q.to, 'to', true) : null;
    if (from !== null) s = s.where('at', '>=', from);
    if (to !== null) s = s.where('at', '<=', to);
    return s;
  }

  /** A user id or username becomes `user:<id>`; anything else is taken as a principal label. */
  private async actorLabel(actor: string): Promise<string> {
    if (actor.includes(':')) return actor;
    const u = await this.db
      .selectFrom('users')
      .select('id')
      .where((eb) => eb.or([eb('id', '=', actor), eb('username', '=', actor)]))
      .executeTakeFirst();
    return u ? `user:${u.id}` : `user:${actor}`;
  }

  private async entries(rows: Row[]): Promise<AuditEntry[]> {
    const ids = [...new Set(rows.filter((r) => r.actor.startsWith('user:')).map((r) => r.actor.slice(5)))];
    const users = ids.length
      ? await this.db.selectFrom('users').select(['id', 'username', 'display_name']).where('id', 'in', ids).execute()
      : [];
    const byId = new Map(users.map((u) => [u.id, u]));
    return rows.map((r) => {
      const userId = r.actor.startsWith('user:') ? r.actor.slice(5) : null;
      const u = userId ? byId.get(userId) : undefined;
      return {
        id: Number(r.id),
        at: new Date(Number(r.at)).toISOString(),
        actor: { label: r.actor, user_id: userId, username: u?.username ?? null, display_name: u?.display_name ?? null },
        action: r.action,
        subject: r.subject,
        org_id: r.org_id,
        ip: r.ip,
        data: parseData(r.data),
      };
    });
  }
}

/** An ISO date or date-time in ms; a bare date `to` means the end of that day (UTC). */
function time(s: string, name: string, endOfDay: boolean): number {
  const t = Date.parse(s);
  if (Number.isNaN(t)) fail('VALIDATION_FAILED', `${name} must be an ISO date or date-time`);
  return endOfDay && /^\d{4}-\d{2}-\d{2}$/.test(s) ? t + 86_400_000 - 1 : t;
}

function parseData(data: string | null): Record<string, unknown> | null {
  if (data === null) return null;
  try {
    const v = JSON.parse(data) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : { value: v };
  } catch {
    return { value: data };
  }
}
