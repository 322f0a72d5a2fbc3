import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { audit, principalLabel } from '../../shared/audit.js';
import { newId, newToken, sha256Hex } from '../../shared/ids.js';
import { hashPassword } from '../../shared/passwords.js';
import { isOperator, type Principal } from '../../shared/principal.js';
import type { AccountsService } from '../accounts/accounts.service.js';
import { ANONYMOUS_FORMS, endAccess, limitAnonymousForm } from './access.js';
import { MIN_PASSWORD } from './users.js';

export const RESET_TTL_MS = 24 * 3600_000;

export interface IssuedReset {
  /** `${BINDERY_PUBLIC_URL}/reset-password#<token>`: shown once, never stored or logged. */
  url: string;
  expires_at: string;
  user: { id: string; username: string; display_name: string };
}

/**
 * Password reset by an operator or an organisation's super admin: a one-time link (its token in
 * the URL fragment, which browsers never send to a server; the database keeps its SHA-256) that
 * lets the person choose a new password within 24 hours. Issuing a new link for someone voids
 * their older ones. Completing it ends every session and revokes every API token of theirs.
 */
export class PasswordResetsService {
  constructor(
    private readonly deps: Pick<Deps, 'db' | 'clock' | 'limiter' | 'config'>,
    private readonly accounts: AccountsService,
  ) {}

  private get db() {
    return this.deps.db.kysely;
  }

  /**
   * Operators may reset anyone's password. A super admin may reset the password of a member of an
   * organisation they are super admin of (`orgId` picks which, else the first such), unless that
   * member is an operator: an organisation does not get to take over an instance administrator.
   */
  async issue(actor: Principal, userId: string, opts: { orgId?: string } = {}): Promise<IssuedReset> {
    const target = await this.db
      .selectFrom('users')
      .select(['id', 'username', 'display_name', 'is_operator'])
      .where('id', '=', userId)
      .executeTakeFirst();
    let orgId: string | null = null;
    if (!isOperator(actor)) {
      if (actor.kind !== 'user') fail('FORBIDDEN', 'Only a signed-in person may do this');
      let q = this.db
        .selectFrom('org_members as a')
        .innerJoin('org_members as t', 't.org_id', 'a.org_id')
        .select('a.org_id')
        .where('a.user_id', '=', actor.userId)
        .where('a.role', '=', 'super_admin')
        .where('t.user_id', '=', userId);
      if (opts.orgId) q = q.where('a.org_id', '=', opts.orgId);
      const shared = await q.orderBy('a.org_id').executeTakeFirst();
      if (!shared || !target || target.is_operator === 1) {
        fail(
          'FORBIDDEN',
          'Only an operator, or a super admin of an organisation this person belongs to, may reset their password',
        );
      }
      orgId = shared.org_id;
    }
    if (!target) fail('NOT_FOUND', 'No such user');
    const token = newToken(32);
    const now = this.deps.clock.now();
    const row = {
      id: newId('pwr'),
      token_hash: sha256Hex(token),
      user_id: target.id,
      created_by: principalLabel(actor),
      org_id: orgId,
      created_at: now,
      expires_at: now + RESET_TTL_MS,
      used_at: null,
      revoked_at: null,
    };
    await this.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('password_resets')
        .set({ revoked_at: now })
        .where('user_id', '=', target.id)
        .where('used_at', 'is', null)
        .where('revoked_at', 'is', null)
        .execute();
      await trx.insertInto('password_resets').values(row).execute();
      // Never the token or the link: the audit log is readable by organisation admins.
      await audit(trx, now, actor, 'password_reset.issue', `user:${target.id}`, { reset: row.id }, orgId);
    });
    return {
      url: `${this.deps.config.publicUrl}/reset-password#${token}`,
      expires_at: new Date(row.expires_at).toISOString(),
      user: { id: target.id, username: target.username, display_name: target.display_name },
    };
  }

  /** Whose password a link resets, for the page that opens it (no sign-in needed). */
  async preview(token: unknown, ip?: string | null): Promise<{ username: string; display_name: string; expires_at: string }> {
    await limitAnonymousForm(this.deps.limiter, ANONYMOUS_FORMS.reset, ip);
    const r = await this.pending(token);
    const u = await this.db
      .selectFrom('users')
      .select(['username', 'display_name'])
      .where('id', '=', r.user_id)
      .executeTakeFirstOrThrow();
    return { username: u.username, display_name: u.display_name, expires_at: new Date(r.expires_at).toISOString() };
  }

  /**
   * Sets the new password (the same rule as everywhere: at least MIN_PASSWORD characters), uses
   * the link up, ends every session and revokes every token of the person, in one transaction. The
   * account-wide sign-in lock on their name is lifted so they can sign in straight away.
   */
  async complete(
    token: unknown,
    password: unknown,
    ip?: string | null,
  ): Promise<{ username: string; sessions_ended: number; tokens_revoked: number }> {
    await limitAnonymousForm(this.deps.limiter, ANONYMOUS_FORMS.reset, ip);
    const r = await this.pending(token);
    if (typeof password !== 'string' || password.length < MIN_PASSWORD) {
      fail('VALIDATION_FAILED', `password must be at least ${MIN_PASSWORD} characters`, {
        problems: [`password must be at least ${MIN_PASSWORD} characters`],
      });
    }
    const hash = await hashPassword(password);
    const now = this.deps.clock.now();
    const out = await this.db.transaction().execute(async (trx) => {
      const claimed = await trx
        .updateTable('password_resets')
        .set({ used_at: now })
        .where('id', '=', r.id)
        .where('used_at', 'is', null)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      if (Number(claimed.numUpdatedRows) !== 1) fail('RESET_LINK_INVALID');
      await trx.updateTable('users').set({ password_hash: hash }).where('id', '=', r.user_id).execute();
      const ended = await endAccess(trx, r.user_id, now);
      await audit(
        trx,
        now,
        `user:${r.user_id}`,
        'password_reset.complete',
        `user:${r.user_id}`,
        { reset: r.id, ...ended },
        r.org_id,
      );
      const u = await trx.selectFrom('users').select('username').where('id', '=', r.user_id).executeTakeFirstOrThrow();
      return { username: u.username, ...ended };
    });
    await this.accounts.credentials.lockout.unlockUser(out.username);
    return out;
  }

  private async pending(token: unknown) {
    const r =
      typeof token === 'string' && token.length > 0 && token.length <= 128
        ? await this.db.selectFrom('password_resets').selectAll().where('token_hash', '=', sha256Hex(token)).executeTakeFirst()
        : undefined;
    if (!r || r.used_at !== null || r.revoked_at !== null || r.expires_at <= this.deps.clock.now()) fail('RESET_LINK_INVALID');
    return r;
  }
}
