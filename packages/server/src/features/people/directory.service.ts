import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { audit } from '../../shared/audit.js';
import { type Principal, requireOperator } from '../../shared/principal.js';
import { endAccess } from './access.js';

export interface PersonView {
  id: string;
  username: string;
  display_name: string;
  is_operator: boolean;
  disabled: boolean;
  disabled_at: string | null;
  created_at: string;
  /** The last password sign-in (console or token exchange); null when never or not recorded. */
  last_login_at: string | null;
}

export interface PersonDetail extends PersonView {
  organisations: Array<{ id: string; name: string; role: string; department: { id: string; name: string } }>;
  active_sessions: number;
  active_tokens: number;
}

const iso = (t: number | null | undefined) => (t == null ? null : new Date(t).toISOString());
const PAGE_MAX = 200;

type UserRow = {
  id: string;
  username: string;
  display_name: string;
  is_operator: number;
  created_at: number;
  disabled_at?: number | null;
  last_login_at?: number | null;
};

function toPerson(r: UserRow): PersonView {
  return {
    id: r.id,
    username: r.username,
    display_name: r.display_name,
    is_operator: r.is_operator === 1,
    disabled: r.disabled_at != null,
    disabled_at: iso(r.disabled_at),
    created_at: iso(r.created_at)!,
    last_login_at: iso(r.last_login_at),
  };
}

const COLUMNS = ['id', 'username', 'display_name', 'is_operator', 'created_at', 'disabled_at', 'last_login_at'] as const;

/**
 * The operators' view of everyone on the instance: search, a person's organisations, and
 * disabling (no sign-in; sessions end and tokens are revoked at once) or enabling them again.
 * Signing out everywhere is here too: it is the same "end all access" for oneself.
 */
export class PeopleDirectoryService {
  constructor(private readonly deps: Pick<Deps, 'db' | 'clock'>) {}

  private get db() {
    return this.deps.db.kysely;
  }

  /** By username; `q` matches username or display name (case-insensitive); `cursor` is the last username seen. */
  async list(
    actor: Principal,
    opts: { q?: string; cursor?: string; limit?: number } = {},
  ): Promise<{ users: PersonView[]; next_cursor: string | null }> {
    requireOperator(actor);
    const limit = Math.min(PAGE_MAX, Math.max(1, opts.limit ?? 50));
    let s = this.db.selectFrom('users').select(COLUMNS);
    const q = opts.q
      ?.trim()
      .toLowerCase()
      .replace(/[%_\\]/g, '');
    if (q) {
      const p = `%${q}%`;
      s = s.where((eb) => eb.or([eb('username', 'like', p), eb(eb.fn('lower', ['display_name']), 'like', p)]));
    }
    if (opts.cursor) s = s.where('username', '>', opts.cursor);
    const rows = await s
      .orderBy('username')
      .limit(limit + 1)
      .execute();
    const more = rows.length > limit;
    const page = rows.slice(0, limit);
    return { users: page.map(toPerson), next_cursor: more ? page[page.length - 1]!.username : null };
  }

  async get(actor: Principal, userId: string): Promise<PersonDetail> {
    requireOperator(actor);
    const u = await this.db.selectFrom('users').select(COLUMNS).where('id', '=', userId).executeTakeFirst();
    if (!u) fail('NOT_FOUND', 'No such user');
    const orgs = await this.db
      .selectFrom('org_members as m')
      .innerJoin('organisations as o', 'o.id', 'm.org_id')
      .innerJoin('departments as d', 'd.id', 'm.department_id')
      .select(['o.id', 'o.name', 'm.role', 'd.id as dept_id', 'd.name as dept_name'])
      .where('m.user_id', '=', userId)
      .orderBy('o.name')
      .execute();
    const now = this.deps.clock.now();
    const sessions = await this.db
      .selectFrom('sessions')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('user_id', '=', userId)
      .where('expires_at', '>', now)
      .executeTakeFirstOrThrow();
    const tokens = await this.db
      .selectFrom('api_tokens')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .executeTakeFirstOrThrow();
    return {
      ...toPerson(u),
      organisations: orgs.map((o) => ({
        id: o.id,
        name: o.name,
        role: o.role,
        department: { id: o.dept_id, name: o.dept_name },
      })),
      active_sessions: Number(sessions.n),
      active_tokens: Number(tokens.n),
    };
  }

  /**
   * Disables a person: they cannot sign in, and their sessions and API tokens end now. Nobody
   * disables themselves, and the last enabled operator stays (the instance would have no admin).
   */
  async disable(actor: Principal, userId: string): Promise<PersonDetail> {
    requireOperator(actor);
    if (actor.kind === 'user' && actor.userId === userId) fail('CANNOT_DISABLE_SELF');
    const now = this.deps.clock.now();
    await this.db.transaction().execute(async (trx) => {
      const u = await trx
        .selectFrom('users')
        .select(['id', 'is_operator', 'disabled_at'])
        .where('id', '=', userId)
        .executeTakeFirst();
      if (!u) fail('NOT_FOUND', 'No such user');
      if (u.disabled_at != null) return;
      if (u.is_operator === 1) {
        const others = await trx
          .selectFrom('users')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('is_operator', '=', 1)
          .where('disabled_at', 'is', null)
          .where('id', '!=', userId)
          .executeTakeFirstOrThrow();
        if (Number(others.n) === 0) fail('LAST_OPERATOR');
      }
      await trx.updateTable('users').set({ disabled_at: now }).where('id', '=', userId).execute();
      const ended = await endAccess(trx, userId, now);
      await audit(trx, now, actor, 'user.disable', `user:${userId}`, ended);
    });
    return this.get(actor, userId);
  }

  async enable(actor: Principal, userId: string): Promise<PersonDetail> {
    requireOperator(actor);
    const now = this.deps.clock.now();
    await this.db.transaction().execute(async (trx) => {
      const u = await trx.selectFrom('users').select(['id', 'disabled_at']).where('id', '=', userId).executeTakeFirst();
      if (!u) fail('NOT_FOUND', 'No such user');
      if (u.disabled_at == null) return;
      await trx.updateTable('users').set({ disabled_at: null }).where('id', '=', userId).execute();
      await audit(trx, now, actor, 'user.enable', `user:${userId}`);
    });
    return this.get(actor, userId);
  }

  /** Ends every console session of the signed-in person, this one included (API tokens stay). */
  async signOutEverywhere(actor: Principal): Promise<{ sessions_ended: number }> {
    if (actor.kind !== 'user') fail('FORBIDDEN', 'Only a signed-in person may do this');
    const now = this.deps.clock.now();
    return this.db.transaction().execute(async (trx) => {
      const r = await trx.deleteFrom('sessions').where('user_id', '=', actor.userId).executeTakeFirst();
      const n = Number(r.numDeletedRows);
      await audit(trx, now, actor, 'session.end_all', `user:${actor.userId}`, { sessions_ended: n });
      return { sessions_ended: n };
    });
  }
}
