import { timingSafeEqual } from 'node:crypto';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { audit } from '../../shared/audit.js';
import { newId, newToken, sha256Hex } from '../../shared/ids.js';
import { hashPassword, verifyPassword } from '../../shared/passwords.js';
import { type Principal, requireOperator } from '../../shared/principal.js';
import type { AccountsService, UserView } from '../accounts/accounts.service.js';
import type { OrganisationsService, OrgView } from '../organisations/organisations.service.js';
import type { Role } from '../organisations/permissions.js';
import { Lockout } from './lockout.js';
import { insertUser, MIN_PASSWORD, type NewUserInput, newUserRow, toUserView } from './users.js';

/** A session lives a week past its last use, and never longer than 30 days from login. */
export const SESSION_IDLE_MS = 7 * 24 * 3600_000;
export const SESSION_MAX_MS = 30 * 24 * 3600_000;
/** Refreshing last_seen_at on every request would make each request a write. */
const TOUCH_EVERY_MS = 10 * 60_000;
export const INVITE_TTL_MS = 7 * 24 * 3600_000;

export interface SessionInfo {
  principal: Extract<Principal, { kind: 'user' }>;
  id: string;
  csrfToken: string;
  expiresAt: number;
}

export interface InviteView {
  id: string;
  org_id: string;
  role: Role;
  department_id: string;
  scope: string[];
  created_by: string;
  created_at: string;
  expires_at: string;
  accepted_by: string | null;
  state: 'pending' | 'accepted' | 'revoked' | 'expired';
}

export interface TokenView {
  id: string;
  name: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

/**
 * People: console sessions (an HttpOnly cookie plus a CSRF token), password logins with lockout,
 * personal API tokens for scripts, the signed-in user's view of themselves, and invitations that
 * bring people into an organisation with a role.
 */
export class PeopleService {
  readonly loginLockout: Lockout;

  constructor(
    private readonly deps: Pick<Deps, 'db' | 'clock' | 'limiter' | 'config'>,
    private readonly accounts: AccountsService,
    private readonly orgs: OrganisationsService,
  ) {
    this.loginLockout = new Lockout(deps.limiter, {
      name: 'login',
      perUser: 10,
      perAddress: 50,
      windowSec: 15 * 60,
      blockSec: 15 * 60,
      what: 'Too many wrong passwords for this account or from this network.',
    });
  }

  private get db() {
    return this.deps.db.kysely;
  }

  /** The base of every link Bindery prints (BINDERY_PUBLIC_URL). */
  get publicUrl(): string {
    return this.deps.config.publicUrl;
  }

  /** Cookies are Secure when the public URL is https (behind TLS or a TLS-terminating proxy). */
  get secureCookies(): boolean {
    return this.deps.config.publicUrl.startsWith('https:');
  }

  // ── sessions ──────────────────────────────────────────────────────────────

  /** Password login → a new session. The cookie value is shown once; the row keeps its SHA-256. */
  async login(
    username: string,
    password: string,
    meta: { ip?: string; userAgent?: string } = {},
  ): Promise<{ token: string; session: SessionInfo; user: UserView }> {
    const who = String(username ?? '').toLowerCase();
    const keys = { user: who, address: meta.ip ?? null };
    await this.loginLockout.check(keys);
    let user: UserView;
    try {
      user = await this.accounts.login(who, String(password ?? ''));
    } catch (e) {
      await this.loginLockout.fail(keys);
      throw e;
    }
    await this.loginLockout.clearUser(who);
    const token = newToken(32);
    const now = this.deps.clock.now();
    const row = {
      id: sha256Hex(token),
      user_id: user.id,
      csrf_token: newToken(24),
      created_at: now,
      last_seen_at: now,
      expires_at: now + SESSION_IDLE_MS,
      ip: meta.ip ?? null,
      user_agent: meta.userAgent?.slice(0, 256) ?? null,
    };
    await this.db.transaction().execute(async (trx) => {
      // Every login sweeps the expired sessions (indexed by expiry), so the table never grows unbounded.
      await trx.deleteFrom('sessions').where('expires_at', '<=', now).execute();
      await trx.insertInto('sessions').values(row).execute();
      await audit(trx, now, `user:${user.id}`, 'session.create', `user:${user.id}`, { ip: row.ip });
    });
    return {
      token,
      user,
      session: {
        principal: { kind: 'user', userId: user.id, isOperator: user.is_operator },
        id: row.id,
        csrfToken: row.csrf_token,
        expiresAt: row.expires_at,
      },
    };
  }

  /** The session a cookie value names, sliding its expiry; null when unknown or expired. */
  async resolveSession(token: string): Promise<SessionInfo | null> {
    if (!token || token.length > 128) return null;
    const id = sha256Hex(token);
    const row = await this.db
      .selectFrom('sessions as s')
      .innerJoin('users as u', 'u.id', 's.user_id')
      .select(['s.id', 's.user_id', 's.csrf_token', 's.created_at', 's.last_seen_at', 's.expires_at', 'u.is_operator'])
      .where('s.id', '=', id)
      .executeTakeFirst();
    const now = this.deps.clock.now();
    if (!row) return null;
    if (row.expires_at <= now) {
      await this.db.deleteFrom('sessions').where('id', '=', id).execute();
      return null;
    }
    let expiresAt = row.expires_at;
    if (now - row.last_seen_at >= TOUCH_EVERY_MS) {
      expiresAt = Math.min(row.created_at + SESSION_MAX_MS, now + SESSION_IDLE_MS);
      await this.db.updateTable('sessions').set({ last_seen_at: now, expires_at: expiresAt }).where('id', '=', id).execute();
    }
    return {
      principal: { kind: 'user', userId: row.user_id, isOperator: row.is_operator === 1 },
      id,
      csrfToken: row.csrf_token,
      expiresAt,
    };
  }

  /** Constant-time check of the x-csrf-token header against the session's token. */
  csrfMatches(session: SessionInfo, given: unknown): boolean {
    if (typeof given !== 'string') return false;
    const a = Buffer.from(session.csrfToken);
    const b = Buffer.from(given);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  async logout(session: SessionInfo): Promise<void> {
    await this.db.deleteFrom('sessions').where('id', '=', session.id).execute();
  }

  // ── the signed-in user ────────────────────────────────────────────────────

  async me(actor: Principal): Promise<{
    user: UserView;
    personal_space: { type: 'user'; id: string };
    organisations: Array<OrgView & { role: Role | null }>;
  }> {
    const userId = this.requireUser(actor);
    const u = await this.db.selectFrom('users').selectAll().where('id', '=', userId).executeTakeFirst();
    if (!u) fail('UNAUTHENTICATED');
    const orgs = (await this.orgs.list(actor)).filter((o) => o.role !== null);
    return { user: toUserView(u), personal_space: { type: 'user', id: userId }, organisations: orgs };
  }

  async updateProfile(actor: Principal, input: { displayName?: string }): Promise<UserView> {
    const userId = this.requireUser(actor);
    if (input.displayName !== undefined) {
      const d = String(input.displayName).trim();
      if (d.length === 0 || d.length > 128) fail('VALIDATION_FAILED', 'display_name must be 1–128 characters');
      await this.db.updateTable('users').set({ display_name: d }).where('id', '=', userId).execute();
    }
    return (await this.me(actor)).user;
  }

  /** Changes the password; every other session of the user ends (this one, if given, stays). */
  async changePassword(actor: Principal, current: string, next: string, keep?: SessionInfo): Promise<void> {
    const userId = this.requireUser(actor);
    const u = await this.db.selectFrom('users').selectAll().where('id', '=', userId).executeTakeFirstOrThrow();
    if (!(await verifyPassword(String(current ?? ''), u.password_hash)))
      fail('INVALID_CREDENTIALS', 'The current password is wrong');
    if (typeof next !== 'string' || next.length < MIN_PASSWORD) {
      fail('VALIDATION_FAILED', `password must be at least ${MIN_PASSWORD} characters`);
    }
    const hash = await hashPassword(next);
    const now = this.deps.clock.now();
    await this.db.transaction().execute(async (trx) => {
      await trx.updateTable('users').set({ password_hash: hash }).where('id', '=', userId).execute();
      let del = trx.deleteFrom('sessions').where('user_id', '=', userId);
      if (keep) del = del.where('id', '!=', keep.id);
      await del.execute();
      await audit(trx, now, actor, 'user.password', `user:${userId}`);
    });
  }

  // ── personal API tokens ───────────────────────────────────────────────────

  async listTokens(actor: Principal): Promise<TokenView[]> {
    const userId = this.requireUser(actor);
    const rows = await this.db
      .selectFrom('api_tokens')
      .select(['id', 'name', 'created_at', 'last_used_at', 'revoked_at'])
      .where('user_id', '=', userId)
      .orderBy('created_at', 'desc')
      .orderBy('id')
      .execute();
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      created_at: iso(r.created_at)!,
      last_used_at: iso(r.last_used_at),
      revoked_at: iso(r.revoked_at),
    }));
  }

  /** A personal token acts as the user (for scripts); shown once. */
  async createToken(actor: Principal, name: string): Promise<{ token: string; id: string }> {
    const userId = this.requireUser(actor);
    const n = typeof name === 'string' && name.trim() ? name.trim().slice(0, 128) : 'personal';
    const token = await this.accounts.createUserToken(userId, n);
    const row = await this.db
      .selectFrom('api_tokens')
      .select('id')
      .where('token_hash', '=', sha256Hex(token))
      .executeTakeFirstOrThrow();
    await audit(this.db, this.deps.clock.now(), actor, 'token.create', `user:${userId}`, { token: row.id, name: n });
    return { token, id: row.id };
  }

  async revokeToken(actor: Principal, tokenId: string): Promise<void> {
    await this.accounts.revokeToken(actor, tokenId);
  }

  // ── users (operators) ─────────────────────────────────────────────────────

  async createUser(actor: Principal, input: NewUserInput): Promise<UserView> {
    requireOperator(actor);
    return this.accounts.createUser(actor, input);
  }

  // ── invitations ───────────────────────────────────────────────────────────

  /**
   * An admin invites someone into the organisation with a role. The link carries a random token
   * (stored as its SHA-256) in its fragment, which browsers never send to a server (so it never
   * lands in a log), and works once, for seven days.
   */
  async createInvite(
    actor: Principal,
    orgId: string,
    input: { role: Role; departmentId?: string; scope?: string[] },
  ): Promise<{ invite: InviteView; token: string; url: string }> {
    const ctx = await this.orgs.context(actor, orgId);
    const departmentId = input.departmentId ?? ctx.tree.rootId;
    const scope = this.orgs.validateAssignment(ctx, input.role, departmentId, input.scope);
    this.orgs.requireMayAssign(ctx, input.role, departmentId);
    const token = newToken(24);
    const now = this.deps.clock.now();
    const row = {
      id: newId('inv'),
      token_hash: sha256Hex(token),
      org_id: orgId,
      role: input.role,
      department_id: departmentId,
      scope: scope.length ? JSON.stringify(scope) : null,
      created_by: actor.kind === 'user' ? actor.userId : 'system',
      created_at: now,
      expires_at: now + INVITE_TTL_MS,
      accepted_by: null,
      accepted_at: null,
      revoked_at: null,
    };
    await this.db.transaction().execute(async (trx) => {
      await trx.insertInto('invites').values(row).execute();
      await audit(trx, now, actor, 'invite.create', `org:${orgId}`, {
        invite: row.id,
        role: row.role,
        department_id: departmentId,
      });
    });
    return { invite: this.inviteView(row, now), token, url: `${this.deps.config.publicUrl}/invite#${token}` };
  }

  async listInvites(actor: Principal, orgId: string): Promise<InviteView[]> {
    const ctx = await this.orgs.context(actor, orgId);
    this.orgs.requireAdmin(ctx);
    const rows = await this.db
      .selectFrom('invites')
      .selectAll()
      .where('org_id', '=', orgId)
      .orderBy('created_at', 'desc')
      .execute();
    const now = this.deps.clock.now();
    return rows.map((r) => this.inviteView(r, now));
  }

  async revokeInvite(actor: Principal, orgId: string, inviteId: string): Promise<void> {
    const ctx = await this.orgs.context(actor, orgId);
    this.orgs.requireAdmin(ctx);
    const now = this.deps.clock.now();
    const r = await this.db
      .updateTable('invites')
      .set({ revoked_at: now })
      .where('id', '=', inviteId)
      .where('org_id', '=', orgId)
      .where('accepted_at', 'is', null)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) fail('NOT_FOUND', 'No pending invitation with that id');
    await audit(this.db, now, actor, 'invite.revoke', `org:${orgId}`, { invite: inviteId });
  }

  /** What an invitation link offers, for the page that opens it (no sign-in needed). */
  async previewInvite(token: string): Promise<{
    organisation: { id: string; name: string };
    role: Role;
    department: { id: string; name: string };
    expires_at: string;
  }> {
    const inv = await this.pendingInvite(token);
    const org = await this.db
      .selectFrom('organisations')
      .select(['id', 'name'])
      .where('id', '=', inv.org_id)
      .executeTakeFirstOrThrow();
    const dept = await this.db
      .selectFrom('departments')
      .select(['id', 'name'])
      .where('id', '=', inv.department_id)
      .executeTakeFirstOrThrow();
    return { organisation: org, role: inv.role as Role, department: dept, expires_at: iso(inv.expires_at)! };
  }

  /**
   * Accepts an invitation: as the signed-in user, or by signing up (`signup`). The invitation is
   * claimed, the user (if new) created and the membership added in one transaction.
   */
  async acceptInvite(
    token: string,
    actor: Principal | null,
    signup?: NewUserInput,
  ): Promise<{ user: UserView; org_id: string; role: Role; created: boolean }> {
    const inv = await this.pendingInvite(token);
    const now = this.deps.clock.now();
    let userId: string;
    let newUser = null;
    if (actor?.kind === 'user') userId = actor.userId;
    else if (signup) {
      newUser = await newUserRow(signup, now);
      userId = newUser.id;
    } else fail('UNAUTHENTICATED', 'Sign in, or give a username and password to create an account');
    const scope = inv.scope ? (JSON.parse(inv.scope) as string[]) : [];
    await this.db.transaction().execute(async (trx) => {
      const claimed = await trx
        .updateTable('invites')
        .set({ accepted_by: userId, accepted_at: now })
        .where('id', '=', inv.id)
        .where('accepted_at', 'is', null)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      if (Number(claimed.numUpdatedRows) !== 1) fail('INVITE_INVALID');
      if (newUser) {
        await insertUser(trx, this.deps.db.caps, newUser);
        await audit(trx, now, 'invite', 'user.create', newUser.id, { username: newUser.username, invite: inv.id });
      }
      await this.orgs.putMembership(
        trx,
        { orgId: inv.org_id, userId, role: inv.role as Role, departmentId: inv.department_id, scope, now },
        false,
      );
      await audit(trx, now, `user:${userId}`, 'invite.accept', `org:${inv.org_id}`, { invite: inv.id, role: inv.role });
    });
    const u = await this.db.selectFrom('users').selectAll().where('id', '=', userId).executeTakeFirstOrThrow();
    return { user: toUserView(u), org_id: inv.org_id, role: inv.role as Role, created: newUser !== null };
  }

  private async pendingInvite(token: string) {
    const inv =
      typeof token === 'string' && token.length <= 128
        ? await this.db.selectFrom('invites').selectAll().where('token_hash', '=', sha256Hex(token)).executeTakeFirst()
        : undefined;
    if (!inv || inv.accepted_at !== null || inv.revoked_at !== null || inv.expires_at <= this.deps.clock.now()) {
      fail('INVITE_INVALID');
    }
    return inv;
  }

  private inviteView(
    r: {
      id: string;
      org_id: string;
      role: string;
      department_id: string;
      scope: string | null;
      created_by: string;
      created_at: number;
      expires_at: number;
      accepted_by: string | null;
      accepted_at: number | null;
      revoked_at: number | null;
    },
    now: number,
  ): InviteView {
    return {
      id: r.id,
      org_id: r.org_id,
      role: r.role as Role,
      department_id: r.department_id,
      scope: r.scope ? (JSON.parse(r.scope) as string[]) : [],
      created_by: r.created_by,
      created_at: iso(r.created_at)!,
      expires_at: iso(r.expires_at)!,
      accepted_by: r.accepted_by,
      state:
        r.accepted_at !== null ? 'accepted' : r.revoked_at !== null ? 'revoked' : r.expires_at <= now ? 'expired' : 'pending',
    };
  }

  private requireUser(actor: Principal): string {
    if (actor.kind !== 'user') fail('FORBIDDEN', 'Only a signed-in person may do this');
    return actor.userId;
  }
}
