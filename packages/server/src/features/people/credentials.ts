import type { UsersTable } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { dummyPasswordHash, verifyPassword } from '../../shared/passwords.js';
import { Lockout, type LockoutPolicy } from './lockout.js';

/**
 * Password guessing (issue 11, finding 2). Per account: 10 failures in 15 minutes lock it for 15
 * minutes, from everywhere. Per account from one address: 5 (a mistyping owner is stopped before
 * the account is). Per address over all accounts: 50 (spraying one password over many names).
 */
export const PASSWORD_LOCKOUT: LockoutPolicy = {
  name: 'login',
  perUser: 10,
  perUserAddress: 5,
  perAddress: 50,
  windowSec: 15 * 60,
  blockSec: 15 * 60,
  what: 'Too many wrong passwords for this account or from this network.',
};

export interface CredentialSource {
  /** The client's network address; absent for the CLI, which then counts per account only. */
  ip?: string | null;
}

/**
 * The one check of a username and password, for every door that takes one: console login, API
 * token exchange, password change, the CLI. Every attempt counts towards the lockout before the
 * password is looked at, whether the username exists or not, so neither the lock nor the answer
 * tells which names exist; an unknown name is checked against a dummy hash so it costs the same
 * scrypt as a known one.
 */
export class Credentials {
  readonly lockout: Lockout;

  constructor(private readonly deps: Pick<Deps, 'db' | 'limiter'>) {
    this.lockout = new Lockout(deps.limiter, PASSWORD_LOCKOUT);
    // Made now, so the first unknown username does not pay for making it (a timing tell).
    void dummyPasswordHash();
  }

  /** Username + password → the user row; INVALID_CREDENTIALS (or `wrong`) for either mistake. */
  async verify(username: unknown, password: unknown, from: CredentialSource = {}, wrong?: string): Promise<UsersTable> {
    // Usernames are at most 64 characters; a longer guess never matches, and stays a short key.
    const who = String(username ?? '')
      .toLowerCase()
      .slice(0, 128);
    const keys = { user: who || null, address: from.ip ?? null };
    const attempt = await this.lockout.attempt(keys);
    let row: UsersTable | undefined;
    let ok: boolean;
    try {
      row = who
        ? await this.deps.db.kysely.selectFrom('users').selectAll().where('username', '=', who).executeTakeFirst()
        : undefined;
      ok = await verifyPassword(typeof password === 'string' ? password : '', row?.password_hash ?? (await dummyPasswordHash()));
    } catch (e) {
      // A failing database is no wrong password: give the attempt back.
      await this.lockout.release(attempt).catch(() => {});
      throw e;
    }
    if (!row || !ok) {
      await this.lockout.failed(attempt);
      fail('INVALID_CREDENTIALS', wrong);
    }
    await this.lockout.succeeded(attempt);
    // Said only to someone who knows the password, so it reveals nothing to a guesser.
    if (row.disabled_at != null) fail('ACCOUNT_DISABLED');
    return row;
  }

  /** The signed-in user's own password (before changing it): the same lock, on their username. */
  async verifyUser(userId: string, password: unknown, from: CredentialSource = {}, wrong?: string): Promise<UsersTable> {
    const u = await this.deps.db.kysely.selectFrom('users').select('username').where('id', '=', userId).executeTakeFirst();
    if (!u) fail('UNAUTHENTICATED');
    return this.verify(u.username, password, from, wrong);
  }
}
