import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { audit } from '../../shared/audit.js';
import { newId, newToken, sha256Hex } from '../../shared/ids.js';
import { hashPassword } from '../../shared/passwords.js';
import { type Principal, requireOperator } from '../../shared/principal.js';
import type { AccountsService, UserView } from '../accounts/accounts.service.js';
import type { NotificationsService } from '../notifications/notifications.service.js';
import type { OrganisationsService, OrgView } from '../organisations/organisations.service.js';
import { manageable, type Role } from '../organisations/permissions.js';
import { vendorRolesOf, vendorsOfUser } from '../vendors/vendor-people.service.js';
import { ANONYMOUS_FORMS, limitAnonymousForm } from './access.js';
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
  /** The CSRF token itself (for the cookie and GET /api/v1/session); never stored. */
  csrfToken: string;
  /** Its SHA-256, as the sessions row keeps it (csrf_hash). */
  csrfHash: string;
  expiresAt: number;
}

/**
 * The session's CSRF token, derived from the session token (which only the cookie holds) rather
 * than stored: the database keeps only its SHA-256, yet a later request can still hand the token
 * back to the console. Knowing it reveals nothing of the session token (HMAC under that secret).
 */
function csrfFor(sessionToken: string): string {
  return createHmac('sha256', sessionToken).update('bindery csrf v1').digest('base64url');
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
  /** Whom an invitation to an existing person names (the username or id the admin gave); null for a link. */
  invitee: string | null;
  /** The inviter's display name, where the list resolves it. */
  created_by_name: string | null;
}

export interface TokenView {
  id: string;
  name: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

/** An open invitation stores its token's hash; one for a single user, the hash of both. */
function inviteHash(token: string, forUser: string | null): string {
  return sha256Hex(forUser === null ? token : `${token}\n${forUser}`);
}

/**
 * People: console sessions (an HttpOnly cookie plus a CSRF token), password logins with lockout,
 * personal API tokens for scripts, the signed-in user's view of themselves, and invitations that
 * bring people into an organisation with a role.
 */
export class PeopleService {
  constructor(
    private readonly deps: Pick<Deps, 'db' | 'clock' | 'limiter' | 'config'>,
    private readonly accounts: AccountsService,
    private readonly orgs: OrganisationsService,
    /** Where an invitation for an existing user is delivered. */
    private readonly inbox: Pick<NotificationsService, 'notify'> | null = null,
  ) {}

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

  /**
   * Password login → a new session, through the one credential check (lockout shared with
   * POST /api/v1/tokens). The cookie value is shown once; the row keeps SHA-256s only.
   */
  async login(
    username: string,
    password: string,
    meta: { ip?: string; userAgent?: string } = {},
  ): Promise<{ token: string; session: SessionInfo; user: UserView }> {
    const user = await this.accounts.login(username, password, { ip: meta.ip });
    const token = newToken(32);
    const csrf = csrfFor(token);
    const now = this.deps.clock.now();
    const row = {
      id: sha256Hex(token),
      user_id: user.id,
      csrf_hash: sha256Hex(csrf),
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
        csrfToken: csrf,
        csrfHash: row.csrf_hash,
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
      .select([
        's.id',
        's.user_id',
        's.csrf_hash',
        's.created_at',
        's.last_seen_at',
        's.expires_at',
        'u.is_operator',
        'u.disabled_at',
      ])
      .where('s.id', '=', id)
      .executeTakeFirst();
    const now = this.deps.clock.now();
    // Disabling deletes the sessions; this also covers one that began while it ran.
    if (!row || row.disabled_at != null) return null;
    if (row.expires_at <= now) {
      await this.db.deleteFrom('sessions').where('id', '=', id).execute();
      return null;
    }
    let expiresAt = row.expires_at;
    if (now - row.last_seen_at >= TOUCH_EVERY_MS) {
      expiresAt = Math.min(row.created_at + SESSION_MAX_MS, now + SESSION_IDLE_MS);
      await this.db.updateTable('sessions').set({ last_seen_at: now, expires_at: expiresAt }).where('id', '=', id).execute();
    }
    const isOp = row.is_operator === 1;
    return {
      // Operators act for every vendor already; other people carry their vendor roles.
      principal: {
        kind: 'user',
        userId: row.user_id,
        isOperator: isOp,
        vendors: isOp ? {} : await vendorRolesOf(this.db, row.user_id),
      },
      id,
      csrfToken: csrfFor(token),
      csrfHash: row.csrf_hash,
      expiresAt,
    };
  }

  /** Constant-time check of the x-csrf-token header against the session's stored hash. */
  csrfMatches(session: SessionInfo, given: unknown): boolean {
    if (typeof given !== 'string' || given.length === 0 || given.length > 256) return false;
    const a = Buffer.from(session.csrfHash, 'hex');
    const b = Buffer.from(sha256Hex(given), 'hex');
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
    vendors: Array<{ id: string; name: string; role: string }>;
  }> {
    const userId = this.requireUser(actor);
    const u = await this.db.selectFrom('users').selectAll().where('id', '=', userId).executeTakeFirst();
    if (!u) fail('UNAUTHENTICATED');
    const orgs = (await this.orgs.list(actor)).filter((o) => o.role !== null);
    const vendors = await vendorsOfUser(this.db, userId);
    return { user: toUserView(u), personal_space: { type: 'user', id: userId }, organisations: orgs, vendors };
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

  /**
   * Changes the password (the current one is checked under the login lockout). Every other
   * session of the user ends (this one, if given, stays) and, unless `keepTokens`, every API token
   * of theirs is revoked: a leaked password or token should not outlive the change.
   */
  async changePassword(
    actor: Principal,
    current: string,
    next: string,
    keep?: SessionInfo,
    opts: { ip?: string; keepTokens?: boolean } = {},
  ): Promise<{ sessions_ended: number; tokens_revoked: number }> {
    const userId = this.requireUser(actor);
    if (typeof next !== 'string' || next.length < MIN_PASSWORD) {
      fail('VALIDATION_FAILED', `password must be at least ${MIN_PASSWORD} characters`);
    }
    await this.accounts.credentials.verifyUser(userId, current, { ip: opts.ip }, 'The current password is wrong');
    const hash = await hashPassword(next);
    const now = this.deps.clock.now();
    return this.db.transaction().execute(async (trx) => {
      await trx.updateTable('users').set({ password_hash: hash }).where('id', '=', userId).execute();
      let del = trx.deleteFrom('sessions').where('user_id', '=', userId);
      if (keep) del = del.where('id', '!=', keep.id);
      const ended = Number((await del.executeTakeFirst()).numDeletedRows);
      const revoked = opts.keepTokens
        ? 0
        : Number(
            (
              await trx
                .updateTable('api_tokens')
                .set({ revoked_at: now })
                .where('user_id', '=', userId)
                .where('revoked_at', 'is', null)
                .executeTakeFirst()
            ).numUpdatedRows,
          );
      await audit(trx, now, actor, 'user.password', `user:${userId}`, { sessions_ended: ended, tokens_revoked: revoked });
      return { sessions_ended: ended, tokens_revoked: revoked };
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
    const { id, token } = await this.accounts.issueUserToken(userId, n);
    await audit(this.db, this.deps.clock.now(), actor, 'token.create', `user:${userId}`, { token: id, name: n });
    return { token, id };
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
    const { departmentId, scope } = this.orgs.checkAssignment(ctx, input);
    const { row, token } = await this.insertInvite(actor, orgId, input.role, departmentId, scope, null);
    return { invite: this.inviteView(row, row.created_at), token, url: `${this.deps.config.publicUrl}/invite#${token}` };
  }

  /**
   * "Add member" by user id or username (issue 11, finding 6): nobody joins without consent, so
   * this invites that user. The invitation is bound to them (its token only matches with their
   * signed-in session) and its link goes to their inbox. The answer is the same whether or not
   * the user exists anywhere on the instance, so it tells an admin nothing about other tenants:
   * for an unknown name an invitation nobody can accept is stored, and expires like any other.
   */
  async inviteUser(
    actor: Principal,
    orgId: string,
    input: { userId?: string; username?: string; role: Role; departmentId?: string; scope?: string[] },
  ): Promise<{ invite: InviteView }> {
    const ctx = await this.orgs.context(actor, orgId);
    const { departmentId, scope } = this.orgs.checkAssignment(ctx, input);
    if (!input.userId && !input.username) fail('VALIDATION_FAILED', 'Give user_id or username');
    let q = this.db.selectFrom('users').select(['id']);
    q = input.userId ? q.where('id', '=', input.userId) : q.where('username', '=', (input.username ?? '').toLowerCase());
    const user = await q.executeTakeFirst();
    // Admins see every member already, so saying so reveals nothing outside the organisation. The
    // lookup runs for an unknown user too, so both paths do the same work up to the inbox.
    const already = await this.db
      .selectFrom('org_members')
      .select('user_id')
      .where('org_id', '=', orgId)
      .where('user_id', '=', user?.id ?? '')
      .executeTakeFirst();
    if (already) fail('ALREADY_EXISTS', 'That user is already a member of this organisation');
    const invitee = input.username ? input.username.toLowerCase() : (input.userId ?? null);
    const { row, token } = await this.insertInvite(
      actor,
      orgId,
      input.role,
      departmentId,
      scope,
      user?.id ?? newToken(16),
      { for_user: user?.id ?? null },
      invitee,
    );
    if (user && this.inbox) {
      const org = await this.db.selectFrom('organisations').select('name').where('id', '=', orgId).executeTakeFirst();
      const by =
        actor.kind === 'user'
          ? (await this.db.selectFrom('users').select('display_name').where('id', '=', actor.userId).executeTakeFirst())
              ?.display_name
          : undefined;
      await this.inbox.notify([user.id], {
        kind: 'org.invite',
        title: 'Invitation',
        body: `${by ?? 'An administrator'} invited you to join ${org?.name ?? orgId} as ${input.role}. Open the link to accept.`,
        link: `/invite#${token}`,
        data: { invite_id: row.id, org_id: orgId, org_name: org?.name ?? null, role: input.role, by_name: by ?? null },
      });
    }
    return { invite: this.inviteView(row, row.created_at) };
  }

  /**
   * Stores a new invitation row and returns it with its token. An invitation for one user (`forUser`) stores the hash of
   * token and user id together, so the token alone (a forwarded link, the inbox row) is useless
   * to anyone but that user signed in. The row and its `invite.create` audit entry are written in
   * one transaction; `auditExtra` is added to that entry after the fields every invitation writes.
   */
  private async insertInvite(
    actor: Principal,
    orgId: string,
    role: Role,
    departmentId: string,
    scope: string[],
    forUser: string | null,
    auditExtra: Record<string, unknown> = {},
    invitee: string | null = null,
  ) {
    const token = newToken(24);
    const now = this.deps.clock.now();
    const row = {
      id: newId('inv'),
      token_hash: inviteHash(token, forUser),
      org_id: orgId,
      role,
      department_id: departmentId,
      scope: scope.length ? JSON.stringify(scope) : null,
      created_by: actor.kind === 'user' ? actor.userId : 'system',
      created_at: now,
      expires_at: now + INVITE_TTL_MS,
      accepted_by: null,
      accepted_at: null,
      revoked_at: null,
      invitee,
    };
    await this.db.transaction().execute(async (trx) => {
      await trx.insertInto('invites').values(row).execute();
      await audit(trx, row.created_at, actor, 'invite.create', `org:${orgId}`, {
        invite: row.id,
        role: row.role,
        department_id: departmentId,
        ...auditExtra,
      });
    });
    return { row, token };
  }

  /** Super admins see every invitation; a device admin those they could have made (members, in scope). */
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
    const reach = manageable(ctx);
    const shown = rows.filter((r) => reach === 'all' || (r.role === 'member' && reach.has(r.department_id)));
    const names = await this.displayNames(shown.map((r) => r.created_by));
    return shown.map((r) => this.inviteView(r, now, names.get(r.created_by) ?? null));
  }

  /** Revokes a pending invitation; a device admin only one they could have made (members, in scope). */
  async revokeInvite(actor: Principal, orgId: string, inviteId: string): Promise<void> {
    const ctx = await this.orgs.context(actor, orgId);
    this.orgs.requireAdmin(ctx);
    const inv = await this.db
      .selectFrom('invites')
      .select(['role', 'department_id'])
      .where('id', '=', inviteId)
      .where('org_id', '=', orgId)
      .executeTakeFirst();
    if (!inv) fail('NOT_FOUND', 'No pending invitation with that id');
    this.orgs.requireMayAssign(ctx, inv.role as Role, inv.department_id);
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
  async previewInvite(
    token: string,
    actor: Principal | null = null,
    ip?: string | null,
  ): Promise<{
    organisation: { id: string; name: string };
    role: Role;
    department: { id: string; name: string };
    scope: Array<{ id: string; name: string }>;
    invited_by: { display_name: string } | null;
    invitee: { username: string; display_name: string } | null;
    expires_at: string;
  }> {
    await limitAnonymousForm(this.deps.limiter, ANONYMOUS_FORMS.invite, ip);
    const inv = await this.pendingInvite(token, actor);
    const org = await this.db
      .selectFrom('organisations')
      .select(['id', 'name'])
      .where('id', '=', inv.org_id)
      .executeTakeFirstOrThrow();
    const scopeIds = inv.scope ? (JSON.parse(inv.scope) as string[]) : [];
    const depts = await this.db
      .selectFrom('departments')
      .select(['id', 'name'])
      .where('id', 'in', [inv.department_id, ...scopeIds])
      .execute();
    const dept = depts.find((d) => d.id === inv.department_id);
    if (!dept) fail('INVITE_INVALID');
    const byName = (await this.displayNames([inv.created_by])).get(inv.created_by);
    // A bound invitation opened at all means its own user is signed in: "whom" is them.
    const invitee =
      inv.invitee !== null && actor?.kind === 'user'
        ? await this.db.selectFrom('users').select(['username', 'display_name']).where('id', '=', actor.userId).executeTakeFirst()
        : undefined;
    return {
      organisation: org,
      role: inv.role as Role,
      department: dept,
      scope: scopeIds.flatMap((id) => depts.filter((d) => d.id === id)),
      invited_by: byName ? { display_name: byName } : null,
      invitee: invitee ?? null,
      expires_at: iso(inv.expires_at)!,
    };
  }

  /** Display names of users by id (ids that are not users, such as 'system', are left out). */
  private async displayNames(ids: string[]): Promise<Map<string, string>> {
    const unique = [...new Set(ids)];
    if (unique.length === 0) return new Map();
    const rows = await this.db.selectFrom('users').select(['id', 'display_name']).where('id', 'in', unique).execute();
    return new Map(rows.map((r) => [r.id, r.display_name]));
  }

  /**
   * Accepts an invitation: as the signed-in user, or by signing up (`signup`). The invitation is
   * claimed, the user (if new) created and the membership added in one transaction.
   */
  async acceptInvite(
    token: string,
    actor: Principal | null,
    signup?: NewUserInput,
    ip?: string | null,
  ): Promise<{ user: UserView; org_id: string; role: Role; created: boolean }> {
    await limitAnonymousForm(this.deps.limiter, ANONYMOUS_FORMS.invite, ip);
    const inv = await this.pendingInvite(token, actor);
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
        await audit(trx, now, 'invite', 'user.create', newUser.id, { username: newUser.username, invite: inv.id }, inv.org_id);
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

  /** The invitation a token opens: an open one, or one bound to the signed-in `actor`. */
  private async pendingInvite(token: string, actor: Principal | null) {
    const hashes = typeof token === 'string' && token.length <= 128 ? [inviteHash(token, null)] : [];
    if (hashes.length && actor?.kind === 'user') hashes.push(inviteHash(token, actor.userId));
    const inv = hashes.length
      ? await this.db.selectFrom('invites').selectAll().where('token_hash', 'in', hashes).executeTakeFirst()
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
      invitee: string | null;
    },
    now: number,
    createdByName: string | null = null,
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
      invitee: r.invitee,
      created_by_name: createdByName,
    };
  }

  private requireUser(actor: Principal): string {
    if (actor.kind !== 'user') fail('FORBIDDEN', 'Only a signed-in person may do this');
    return actor.userId;
  }
}
