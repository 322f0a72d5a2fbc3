import { FlexibleRateLimiter } from '../../adapters/ratelimit/flexible-limiter.js';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { audit } from '../../shared/audit.js';
import { newId, newToken, sha256Hex } from '../../shared/ids.js';
import { hashPassword } from '../../shared/passwords.js';
import { type Principal, requireOperator, requireVendor } from '../../shared/principal.js';
import { type CredentialSource, Credentials } from '../people/credentials.js';
import { vendorRolesOf } from '../vendors/vendor-people.service.js';

export interface UserView {
  id: string;
  username: string;
  display_name: string;
  is_operator: boolean;
  created_at: string;
}

const USERNAME_RE = /^[a-zA-Z0-9._@-]{3,64}$/;
const TOKEN_PREFIX = 'bnd_';
/** last_used_at is refreshed at most once a minute per token, not written on every request. */
const TOKEN_TOUCH_MS = 60_000;

/** Users, passwords and API tokens. Tokens are shown once and stored as their SHA-256. */
export class AccountsService {
  /** The one password check (lockout, dummy hash) every door goes through. */
  readonly credentials: Credentials;

  /** Without a limiter (scripts and tests that only create users) the lockout counts in-process. */
  constructor(private readonly deps: Pick<Deps, 'db' | 'clock'> & Partial<Pick<Deps, 'limiter'>>) {
    this.credentials = new Credentials({ db: deps.db, limiter: deps.limiter ?? FlexibleRateLimiter.memory() });
  }

  private get db() {
    return this.deps.db.kysely;
  }

  async countOperators(): Promise<number> {
    const r = await this.db
      .selectFrom('users')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('is_operator', '=', 1)
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  /**
   * Creates an operator. The very first one needs no actor (bootstrap, from the CLI);
   * after that only an operator may add one.
   */
  async createOperator(
    actor: Principal | null,
    input: { username: string; password: string; displayName?: string },
  ): Promise<{ user: UserView; token: string }> {
    if (actor) requireOperator(actor);
    else if ((await this.countOperators()) > 0) {
      fail('FORBIDDEN', 'An operator exists already; an operator must create further ones');
    }
    const user = await this.createUser(actor ?? 'bootstrap', { ...input, isOperator: true });
    const token = await this.createUserToken(user.id, 'initial');
    return { user, token };
  }

  async createUser(
    actor: Principal | string,
    input: { username: string; password: string; displayName?: string; isOperator?: boolean },
  ): Promise<UserView> {
    const problems: string[] = [];
    if (!USERNAME_RE.test(input.username)) problems.push('username must be 3–64 of letters, digits, . _ @ -');
    if (typeof input.password !== 'string' || input.password.length < 10) {
      problems.push('password must be at least 10 characters');
    }
    if (problems.length) fail('VALIDATION_FAILED', problems.join('; '), { problems });
    const now = this.deps.clock.now();
    const row = {
      id: newId('usr'),
      username: input.username.toLowerCase(),
      display_name: input.displayName ?? input.username,
      password_hash: await hashPassword(input.password),
      is_operator: input.isOperator ? 1 : 0,
      created_at: now,
    };
    try {
      await this.db.transaction().execute(async (trx) => {
        await trx.insertInto('users').values(row).execute();
        await audit(trx, now, actor, 'user.create', row.id, { username: row.username, operator: !!input.isOperator });
      });
    } catch (e) {
      if (this.deps.db.caps.isUniqueViolation(e)) fail('ALREADY_EXISTS', `User ${row.username} exists already`);
      throw e;
    }
    return toUserView(row);
  }

  /**
   * Username + password → the user, or INVALID_CREDENTIALS (same answer for either mistake), or
   * LOCKED_OUT after too many failures (features/people/credentials.ts).
   */
  async login(username: string, password: string, from: CredentialSource = {}): Promise<UserView> {
    const row = await this.credentials.verify(username, password, from);
    // For the operators' people page ("last sign-in").
    await this.db.updateTable('users').set({ last_login_at: this.deps.clock.now() }).where('id', '=', row.id).execute();
    return toUserView(row);
  }

  async createUserToken(userId: string, name: string): Promise<string> {
    return (await this.issueUserToken(userId, name)).token;
  }

  /** A personal API token and its id (the id is what the owner lists and revokes it by). */
  async issueUserToken(userId: string, name: string): Promise<{ id: string; token: string }> {
    const id = newId('tok');
    const token = await this.insertToken({ id, user_id: userId, vendor_id: null, name });
    return { id, token };
  }

  /** A vendor key: an API token that acts as the vendor (for its own backends and scripts). */
  async createVendorKey(actor: Principal, vendorId: string, name: string): Promise<{ id: string; token: string }> {
    requireVendor(actor, vendorId, 'keys');
    const vendor = await this.db.selectFrom('vendors').select('id').where('id', '=', vendorId).executeTakeFirst();
    if (!vendor) fail('VENDOR_NOT_FOUND');
    const id = newId('key');
    const token = await this.insertToken({ id, user_id: null, vendor_id: vendorId, name });
    await audit(this.db, this.deps.clock.now(), actor, 'vendor_key.create', vendorId, { key: id, name });
    return { id, token };
  }

  private async insertToken(t: { id?: string; user_id: string | null; vendor_id: string | null; name: string }) {
    const token = TOKEN_PREFIX + newToken(32);
    await this.db
      .insertInto('api_tokens')
      .values({
        id: t.id ?? newId('tok'),
        token_hash: sha256Hex(token),
        name: t.name.slice(0, 128),
        user_id: t.user_id,
        vendor_id: t.vendor_id,
        created_at: this.deps.clock.now(),
        last_used_at: null,
        revoked_at: null,
      })
      .execute();
    return token;
  }

  /** Resolves a bearer token to the principal it acts for, or null. */
  async authenticate(token: string): Promise<Principal | null> {
    if (!token.startsWith(TOKEN_PREFIX)) return null;
    const row = await this.db
      .selectFrom('api_tokens')
      .leftJoin('users', 'users.id', 'api_tokens.user_id')
      .select([
        'api_tokens.id',
        'api_tokens.user_id',
        'api_tokens.vendor_id',
        'api_tokens.revoked_at',
        'api_tokens.last_used_at',
        'users.is_operator',
        'users.disabled_at',
      ])
      .where('api_tokens.token_hash', '=', sha256Hex(token))
      .executeTakeFirst();
    // A disabled person's tokens were revoked; the check also covers one made while disabling.
    if (!row || row.revoked_at !== null || row.disabled_at != null) return null;
    const now = this.deps.clock.now();
    if (row.last_used_at === null || now - row.last_used_at >= TOKEN_TOUCH_MS) {
      await this.db.updateTable('api_tokens').set({ last_used_at: now }).where('id', '=', row.id).execute();
    }
    if (row.vendor_id) return { kind: 'vendor_key', vendorId: row.vendor_id, tokenId: row.id };
    if (row.user_id) {
      const isOp = row.is_operator === 1;
      const vendors = isOp ? {} : await vendorRolesOf(this.db, row.user_id);
      return { kind: 'user', userId: row.user_id, isOperator: isOp, vendors };
    }
    return null;
  }

  async revokeToken(actor: Principal, tokenId: string): Promise<void> {
    const row = await this.db.selectFrom('api_tokens').selectAll().where('id', '=', tokenId).executeTakeFirst();
    if (!row) fail('NOT_FOUND', 'No such token');
    if (row.vendor_id) requireVendor(actor, row.vendor_id, 'keys');
    else if (!(actor.kind === 'user' && actor.userId === row.user_id)) requireOperator(actor);
    const now = this.deps.clock.now();
    await this.db.transaction().execute(async (trx) => {
      const r = await trx
        .updateTable('api_tokens')
        .set({ revoked_at: now })
        .where('id', '=', tokenId)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      // Only a revocation that happened is recorded (a second DELETE changes nothing).
      if (Number(r.numUpdatedRows) === 0) return;
      if (row.vendor_id) await audit(trx, now, actor, 'vendor_key.revoke', row.vendor_id, { key: tokenId, name: row.name });
      else await audit(trx, now, actor, 'token.revoke', `user:${row.user_id}`, { token: tokenId, name: row.name });
    });
  }
}

function toUserView(r: {
  id: string;
  username: string;
  display_name: string;
  is_operator: number;
  created_at: number;
}): UserView {
  return {
    id: r.id,
    username: r.username,
    display_name: r.display_name,
    is_operator: r.is_operator === 1,
    created_at: new Date(r.created_at).toISOString(),
  };
}
