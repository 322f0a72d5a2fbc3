import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { audit } from '../../shared/audit.js';
import { newId, newToken, sha256Hex } from '../../shared/ids.js';
import { isOperator, type Principal, requireVendor, VENDOR_ROLES, type VendorRole } from '../../shared/principal.js';
import type { UserView } from '../accounts/accounts.service.js';
import { ANONYMOUS_FORMS, limitAnonymousForm } from '../people/access.js';
import { insertUser, type NewUserInput, newUserRow, toUserView } from '../people/users.js';

/** As an organisation's: a week, once. */
export const VENDOR_INVITE_TTL_MS = 7 * 24 * 3600_000;
/**
 * A vendor invitation's token starts with this, so the one /invite page knows which preview and
 * accept to call (base64url never contains a dot).
 */
export const VENDOR_INVITE_PREFIX = 'v.';

export interface VendorMemberView {
  user_id: string;
  username: string;
  display_name: string;
  role: VendorRole;
  created_at: string;
}

export interface VendorInviteView {
  id: string;
  vendor_id: string;
  role: VendorRole;
  created_by: string;
  created_by_name: string | null;
  created_at: string;
  expires_at: string;
  accepted_by: string | null;
  state: 'pending' | 'accepted' | 'revoked' | 'expired';
}

type Db = Kysely<Database> | Transaction<Database>;
const iso = (t: number) => new Date(t).toISOString();

/** A person's vendor roles by vendor id: what the principal carries (shared/principal.ts). */
export async function vendorRolesOf(db: Db, userId: string): Promise<Record<string, VendorRole>> {
  const rows = await db.selectFrom('vendor_members').select(['vendor_id', 'role']).where('user_id', '=', userId).execute();
  return Object.fromEntries(rows.map((r) => [r.vendor_id, r.role as VendorRole]));
}

/** The vendors a person belongs to, with names, for GET /api/v1/session (`vendors`). */
export async function vendorsOfUser(db: Db, userId: string): Promise<Array<{ id: string; name: string; role: VendorRole }>> {
  const rows = await db
    .selectFrom('vendor_members as m')
    .innerJoin('vendors as v', 'v.id', 'm.vendor_id')
    .select(['v.id', 'v.name', 'm.role'])
    .where('m.user_id', '=', userId)
    .orderBy('v.name')
    .orderBy('v.id')
    .execute();
  return rows.map((r) => ({ id: r.id, name: r.name, role: r.role as VendorRole }));
}

function checkRole(role: unknown): VendorRole {
  if (!VENDOR_ROLES.includes(role as VendorRole)) fail('VALIDATION_FAILED', `role must be one of ${VENDOR_ROLES.join(', ')}`);
  return role as VendorRole;
}

/**
 * A vendor's people: members with a role, invitations (a link shown once), role changes and
 * removals. Managing people is the `people` capability (vendor admins and operators); a vendor
 * always keeps one vendor admin once it has one, except that an operator may remove the last.
 */
export class VendorPeopleService {
  constructor(private readonly deps: Pick<Deps, 'db' | 'clock' | 'config' | 'limiter'>) {}

  private get db() {
    return this.deps.db.kysely;
  }

  private async requireVendorRow(actor: Principal, vendorId: string): Promise<{ id: string; name: string }> {
    requireVendor(actor, vendorId, 'people');
    const v = await this.db.selectFrom('vendors').select(['id', 'name']).where('id', '=', vendorId).executeTakeFirst();
    if (!v) fail('VENDOR_NOT_FOUND');
    return v;
  }

  async listMembers(actor: Principal, vendorId: string): Promise<VendorMemberView[]> {
    await this.requireVendorRow(actor, vendorId);
    const rows = await this.db
      .selectFrom('vendor_members as m')
      .innerJoin('users as u', 'u.id', 'm.user_id')
      .select(['m.user_id', 'u.username', 'u.display_name', 'm.role', 'm.created_at'])
      .where('m.vendor_id', '=', vendorId)
      .orderBy('m.created_at')
      .orderBy('m.user_id')
      .execute();
    return rows.map((r) => ({
      user_id: r.user_id,
      username: r.username,
      display_name: r.display_name,
      role: r.role as VendorRole,
      created_at: iso(r.created_at),
    }));
  }

  async setRole(actor: Principal, vendorId: string, userId: string, role: VendorRole): Promise<VendorMemberView> {
    await this.requireVendorRow(actor, vendorId);
    const next = checkRole(role);
    const now = this.deps.clock.now();
    await this.db.transaction().execute(async (trx) => {
      const m = await this.member(trx, vendorId, userId);
      if (m.role === next) return;
      if (m.role === 'vendor_admin') await this.keepAnAdmin(trx, actor, vendorId, userId);
      await trx
        .updateTable('vendor_members')
        .set({ role: next })
        .where('vendor_id', '=', vendorId)
        .where('user_id', '=', userId)
        .execute();
      await audit(trx, now, actor, 'vendor.member.role', `vendor:${vendorId}`, { user: userId, from: m.role, to: next });
    });
    const view = (await this.listMembers(actor, vendorId)).find((x) => x.user_id === userId);
    if (!view) fail('VENDOR_MEMBER_NOT_FOUND');
    return view;
  }

  async remove(actor: Principal, vendorId: string, userId: string): Promise<void> {
    await this.requireVendorRow(actor, vendorId);
    const now = this.deps.clock.now();
    await this.db.transaction().execute(async (trx) => {
      const m = await this.member(trx, vendorId, userId);
      if (m.role === 'vendor_admin') await this.keepAnAdmin(trx, actor, vendorId, userId);
      await trx.deleteFrom('vendor_members').where('vendor_id', '=', vendorId).where('user_id', '=', userId).execute();
      await audit(trx, now, actor, 'vendor.member.remove', `vendor:${vendorId}`, { user: userId, role: m.role });
    });
  }

  private async member(trx: Db, vendorId: string, userId: string): Promise<{ role: VendorRole }> {
    const m = await trx
      .selectFrom('vendor_members')
      .select('role')
      .where('vendor_id', '=', vendorId)
      .where('user_id', '=', userId)
      .executeTakeFirst();
    if (!m) fail('VENDOR_MEMBER_NOT_FOUND');
    return { role: m.role as VendorRole };
  }

  /** Refuses to leave the vendor without an admin (its people could not be managed but by an operator). */
  private async keepAnAdmin(trx: Db, actor: Principal, vendorId: string, leaving: string): Promise<void> {
    if (isOperator(actor)) return;
    const other = await trx
      .selectFrom('vendor_members')
      .select('user_id')
      .where('vendor_id', '=', vendorId)
      .where('role', '=', 'vendor_admin')
      .where('user_id', '!=', leaving)
      .executeTakeFirst();
    if (!other) fail('LAST_VENDOR_ADMIN');
  }

  // ── invitations ───────────────────────────────────────────────────────────

  /** An invitation link with a role; the token (in the URL's fragment, never logged) is shown once. */
  async createInvite(
    actor: Principal,
    vendorId: string,
    input: { role: VendorRole },
  ): Promise<{ invite: VendorInviteView; token: string; url: string }> {
    await this.requireVendorRow(actor, vendorId);
    const role = checkRole(input.role);
    const token = VENDOR_INVITE_PREFIX + newToken(24);
    const now = this.deps.clock.now();
    const row = {
      id: newId('vinv'),
      token_hash: sha256Hex(token),
      vendor_id: vendorId,
      role,
      created_by: actor.kind === 'user' ? actor.userId : 'system',
      created_at: now,
      expires_at: now + VENDOR_INVITE_TTL_MS,
      accepted_by: null,
      accepted_at: null,
      revoked_at: null,
    };
    await this.db.transaction().execute(async (trx) => {
      await trx.insertInto('vendor_invites').values(row).execute();
      await audit(trx, now, actor, 'vendor.invite.create', `vendor:${vendorId}`, { invite: row.id, role });
    });
    const names = await this.displayNames([row.created_by]);
    return {
      invite: inviteView(row, now, names.get(row.created_by) ?? null),
      token,
      url: `${this.deps.config.publicUrl}/invite#${token}`,
    };
  }

  /** Every invitation of the vendor, newest first, with its state. */
  async listInvites(actor: Principal, vendorId: string): Promise<VendorInviteView[]> {
    await this.requireVendorRow(actor, vendorId);
    const rows = await this.db
      .selectFrom('vendor_invites')
      .selectAll()
      .where('vendor_id', '=', vendorId)
      .orderBy('created_at', 'desc')
      .orderBy('id')
      .execute();
    const now = this.deps.clock.now();
    const names = await this.displayNames(rows.map((r) => r.created_by));
    return rows.map((r) => inviteView(r, now, names.get(r.created_by) ?? null));
  }

  async revokeInvite(actor: Principal, vendorId: string, inviteId: string): Promise<void> {
    await this.requireVendorRow(actor, vendorId);
    const now = this.deps.clock.now();
    await this.db.transaction().execute(async (trx) => {
      const r = await trx
        .updateTable('vendor_invites')
        .set({ revoked_at: now })
        .where('id', '=', inviteId)
        .where('vendor_id', '=', vendorId)
        .where('accepted_at', 'is', null)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) fail('NOT_FOUND', 'No pending invitation with that id');
      await audit(trx, now, actor, 'vendor.invite.revoke', `vendor:${vendorId}`, { invite: inviteId });
    });
  }

  /** What a vendor invitation offers, for the /invite page (no sign-in needed). */
  async previewInvite(
    token: string,
    ip?: string | null,
  ): Promise<{
    kind: 'vendor';
    vendor: { id: string; name: string };
    role: VendorRole;
    invited_by: { display_name: string } | null;
    expires_at: string;
  }> {
    await limitAnonymousForm(this.deps.limiter, ANONYMOUS_FORMS.invite, ip);
    const inv = await this.pendingInvite(this.db, token);
    const vendor = await this.db
      .selectFrom('vendors')
      .select(['id', 'name'])
      .where('id', '=', inv.vendor_id)
      .executeTakeFirstOrThrow();
    const by = (await this.displayNames([inv.created_by])).get(inv.created_by);
    return {
      kind: 'vendor',
      vendor,
      role: inv.role as VendorRole,
      invited_by: by ? { display_name: by } : null,
      expires_at: iso(inv.expires_at),
    };
  }

  /**
   * Accepts as the signed-in person, or signs up (`signup`): the invitation is claimed, the user
   * (if new) created and the membership added in one transaction. A current member keeps their role.
   */
  async acceptInvite(
    token: string,
    actor: Principal | null,
    signup?: NewUserInput,
    ip?: string | null,
  ): Promise<{ user: UserView; vendor_id: string; role: VendorRole; created: boolean }> {
    await limitAnonymousForm(this.deps.limiter, ANONYMOUS_FORMS.invite, ip);
    const inv = await this.pendingInvite(this.db, token);
    const now = this.deps.clock.now();
    let userId: string;
    let newUser = null;
    if (actor?.kind === 'user') userId = actor.userId;
    else if (signup) {
      newUser = await newUserRow(signup, now);
      userId = newUser.id;
    } else fail('UNAUTHENTICATED', 'Sign in, or give a username and password to create an account');
    await this.db.transaction().execute(async (trx) => {
      const already = await trx
        .selectFrom('vendor_members')
        .select('role')
        .where('vendor_id', '=', inv.vendor_id)
        .where('user_id', '=', userId)
        .executeTakeFirst();
      if (already) fail('ALREADY_EXISTS', 'You are already a member of this vendor');
      const claimed = await trx
        .updateTable('vendor_invites')
        .set({ accepted_by: userId, accepted_at: now })
        .where('id', '=', inv.id)
        .where('accepted_at', 'is', null)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      if (Number(claimed.numUpdatedRows) !== 1) fail('INVITE_INVALID');
      if (newUser) {
        await insertUser(trx, this.deps.db.caps, newUser);
        await audit(trx, now, 'invite', 'user.create', newUser.id, { username: newUser.username, vendor_invite: inv.id });
      }
      await trx
        .insertInto('vendor_members')
        .values({ user_id: userId, vendor_id: inv.vendor_id, role: inv.role, created_at: now })
        .execute();
      await audit(trx, now, `user:${userId}`, 'vendor.invite.accept', `vendor:${inv.vendor_id}`, {
        invite: inv.id,
        role: inv.role,
      });
    });
    const u = await this.db.selectFrom('users').selectAll().where('id', '=', userId).executeTakeFirstOrThrow();
    return { user: toUserView(u), vendor_id: inv.vendor_id, role: inv.role as VendorRole, created: newUser !== null };
  }

  private async pendingInvite(db: Db, token: string) {
    const ok = typeof token === 'string' && token.startsWith(VENDOR_INVITE_PREFIX) && token.length <= 128;
    const inv = ok
      ? await db.selectFrom('vendor_invites').selectAll().where('token_hash', '=', sha256Hex(token)).executeTakeFirst()
      : undefined;
    if (!inv || inv.accepted_at !== null || inv.revoked_at !== null || inv.expires_at <= this.deps.clock.now()) {
      fail('INVITE_INVALID');
    }
    return inv;
  }

  private async displayNames(ids: string[]): Promise<Map<string, string>> {
    const unique = [...new Set(ids)];
    if (unique.length === 0) return new Map();
    const rows = await this.db.selectFrom('users').select(['id', 'display_name']).where('id', 'in', unique).execute();
    return new Map(rows.map((r) => [r.id, r.display_name]));
  }
}

function inviteView(
  r: {
    id: string;
    vendor_id: string;
    role: string;
    created_by: string;
    created_at: number;
    expires_at: number;
    accepted_by: string | null;
    accepted_at: number | null;
    revoked_at: number | null;
  },
  now: number,
  createdByName: string | null,
): VendorInviteView {
  return {
    id: r.id,
    vendor_id: r.vendor_id,
    role: r.role as VendorRole,
    created_by: r.created_by,
    created_by_name: createdByName,
    created_at: iso(r.created_at),
    expires_at: iso(r.expires_at),
    accepted_by: r.accepted_by,
    state: r.accepted_at !== null ? 'accepted' : r.revoked_at !== null ? 'revoked' : r.expires_at <= now ? 'expired' : 'pending',
  };
}
