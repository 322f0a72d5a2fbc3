import type { Transaction } from 'kysely';
import type { Database } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { audit } from '../../shared/audit.js';
import { type Principal, requireOperator } from '../../shared/principal.js';
import { type DeviceRange, manageable, type OrgContext, ROLES, type Role, rangeWithin } from './permissions.js';
import { type Db, iso, type OrgStanding } from './standing.js';

export interface MemberView {
  user_id: string;
  username: string;
  display_name: string;
  role: Role;
  department_id: string;
  /** A device admin's scope (department ids, each with its subtree). */
  scope: string[];
  joined_at: string;
}

/** A range as the API takes it: department ids and user ids. */
export interface RangeInput {
  departments?: string[];
  users?: string[];
}

/**
 * Members of an organisation: their roles, departments and device admins' scopes, who may assign
 * them, and the device ranges (departments and members) binding reads and writes.
 */
export class MembersService {
  constructor(
    private readonly deps: Pick<Deps, 'db' | 'clock'>,
    private readonly standing: OrgStanding,
  ) {}

  private get db(): Db {
    return this.deps.db.kysely;
  }

  // ── members ───────────────────────────────────────────────────────────────

  /**
   * Admins see every member; a member sees the members inside their own visibility range (the
   * people they may pick when binding a device).
   */
  async listMembers(actor: Principal, orgId: string, q: { departmentId?: string; search?: string } = {}): Promise<MemberView[]> {
    const ctx = await this.standing.context(actor, orgId);
    this.standing.requireMember(ctx);
    let s = this.db
      .selectFrom('org_members as m')
      .innerJoin('users as u', 'u.id', 'm.user_id')
      .select(['m.user_id', 'u.username', 'u.display_name', 'm.role', 'm.department_id', 'm.created_at'])
      .where('m.org_id', '=', orgId);
    if (q.departmentId) {
      if (!ctx.tree.has(q.departmentId)) fail('DEPARTMENT_NOT_FOUND');
      s = s.where('m.department_id', 'in', [...ctx.tree.closure([q.departmentId])]);
    }
    if (q.search) {
      const p = `%${q.search.toLowerCase().replace(/[%_\\]/g, '')}%`;
      s = s.where((eb) => eb.or([eb('u.username', 'like', p), eb(eb.fn('lower', ['u.display_name']), 'like', p)]));
    }
    const rows = await s.orderBy('u.username').execute();
    const visible = ctx.isOperator || ctx.role === 'super_admin' || ctx.role === 'device_admin' ? null : ctx.visibility;
    const scopes = await this.scopesOf(orgId);
    return rows
      .filter((r) => visible === null || visible.has(r.department_id))
      .map((r) => ({
        user_id: r.user_id,
        username: r.username,
        display_name: r.display_name,
        role: r.role as Role,
        department_id: r.department_id,
        scope: scopes.get(r.user_id) ?? [],
        joined_at: iso(r.created_at),
      }));
  }

  private async scopesOf(orgId: string): Promise<Map<string, string[]>> {
    const rows = await this.db
      .selectFrom('admin_scopes')
      .select(['user_id', 'department_id'])
      .where('org_id', '=', orgId)
      .execute();
    const out = new Map<string, string[]>();
    for (const r of rows) out.set(r.user_id, [...(out.get(r.user_id) ?? []), r.department_id].sort());
    return out;
  }

  /** Checks a role/department/scope assignment against the tree; returns the normalised scope. */
  validateAssignment(ctx: OrgContext, role: unknown, departmentId: string, scope: string[] | undefined): string[] {
    if (!(ROLES as readonly unknown[]).includes(role)) fail('VALIDATION_FAILED', `role must be one of ${ROLES.join(', ')}`);
    if (!ctx.tree.has(departmentId)) fail('DEPARTMENT_NOT_FOUND', `No department ${departmentId} in this organisation`);
    if (role !== 'device_admin') {
      if (scope && scope.length > 0) fail('VALIDATION_FAILED', 'Only a device_admin has a scope');
      return [];
    }
    const s = [...new Set(scope ?? [departmentId])];
    if (s.length === 0) fail('VALIDATION_FAILED', 'A device_admin needs a scope of at least one department');
    for (const d of s) if (!ctx.tree.has(d)) fail('DEPARTMENT_NOT_FOUND', `No department ${d} in this organisation`);
    return s.sort();
  }

  /**
   * May the actor give someone this role, department and scope? Super admins may give anything; a
   * device admin may only add members, into departments inside their scope.
   */
  requireMayAssign(ctx: OrgContext, role: Role, departmentId: string): void {
    this.requireMayAssignRole(ctx, role);
    if (ctx.isOperator || ctx.role === 'super_admin') return;
    if (!rangeWithin({ departments: [departmentId], users: [] }, manageable(ctx))) fail('OUTSIDE_SCOPE');
  }

  /**
   * The part of requireMayAssign that needs no validated input: called before the body is
   * looked at, so an outsider or a member always gets 403, never a validation message.
   */
  requireMayAssignRole(ctx: OrgContext, role: unknown): void {
    this.standing.requireAdmin(ctx);
    if (ctx.isOperator || ctx.role === 'super_admin') return;
    if (role !== 'member') fail('FORBIDDEN', 'Only a super admin may appoint admins');
  }

  /**
   * Authority first, then the input, then the scope: the checks of an invitation (and of an
   * operator's direct add) in the order that tells an outsider nothing. Returns the normalised
   * department and scope.
   */
  checkAssignment(
    ctx: OrgContext,
    input: { role: Role; departmentId?: string; scope?: string[] },
  ): { departmentId: string; scope: string[] } {
    this.requireMayAssignRole(ctx, input.role);
    const departmentId = input.departmentId ?? ctx.tree.rootId;
    const scope = this.validateAssignment(ctx, input.role, departmentId, input.scope);
    this.requireMayAssign(ctx, input.role, departmentId);
    return { departmentId, scope };
  }

  /** Adds (or, with `replace`, re-assigns) a membership inside the caller's transaction. */
  async putMembership(
    trx: Db | Transaction<Database>,
    m: { orgId: string; userId: string; role: Role; departmentId: string; scope: string[]; now: number },
    replace: boolean,
  ): Promise<void> {
    const existing = await trx
      .selectFrom('org_members')
      .select('role')
      .where('org_id', '=', m.orgId)
      .where('user_id', '=', m.userId)
      .executeTakeFirst();
    if (existing && !replace) fail('ALREADY_EXISTS', 'That user is already a member of this organisation');
    if (existing) {
      if (existing.role === 'super_admin' && m.role !== 'super_admin')
        await this.requireAnotherSuperAdmin(trx, m.orgId, m.userId);
      await trx
        .updateTable('org_members')
        .set({ role: m.role, department_id: m.departmentId })
        .where('org_id', '=', m.orgId)
        .where('user_id', '=', m.userId)
        .execute();
    } else {
      await trx
        .insertInto('org_members')
        .values({ org_id: m.orgId, user_id: m.userId, role: m.role, department_id: m.departmentId, created_at: m.now })
        .execute();
    }
    await trx.deleteFrom('admin_scopes').where('org_id', '=', m.orgId).where('user_id', '=', m.userId).execute();
    if (m.scope.length > 0) {
      await trx
        .insertInto('admin_scopes')
        .values(m.scope.map((d) => ({ org_id: m.orgId, user_id: m.userId, department_id: d })))
        .execute();
    }
  }

  private async requireAnotherSuperAdmin(trx: Db | Transaction<Database>, orgId: string, userId: string): Promise<void> {
    const others = await trx
      .selectFrom('org_members')
      .select('user_id')
      .where('org_id', '=', orgId)
      .where('role', '=', 'super_admin')
      .where('user_id', '!=', userId)
      .limit(1)
      .execute();
    if (others.length === 0) fail('LAST_SUPER_ADMIN');
  }

  /**
   * Seats an existing user directly, for platform operators and the CLI only (as creating an
   * organisation seats its first super admin). Everyone else invites: a user joins an
   * organisation only by accepting (PeopleService.inviteUser; issue 11, finding 6).
   */
  async addMember(
    actor: Principal,
    orgId: string,
    input: { userId?: string; username?: string; role: Role; departmentId?: string; scope?: string[] },
  ): Promise<MemberView> {
    requireOperator(actor);
    const ctx = await this.standing.context(actor, orgId);
    const { departmentId, scope } = this.checkAssignment(ctx, input);
    const user = await this.findUser(input);
    const now = this.deps.clock.now();
    await this.db.transaction().execute(async (trx) => {
      await this.putMembership(trx, { orgId, userId: user.id, role: input.role, departmentId, scope, now }, false);
      await audit(trx, now, actor, 'member.add', `org:${orgId}`, {
        user: user.id,
        role: input.role,
        department_id: departmentId,
        scope,
      });
    });
    return this.member(orgId, user.id);
  }

  async updateMember(
    actor: Principal,
    orgId: string,
    userId: string,
    input: { role?: Role; departmentId?: string; scope?: string[] },
  ): Promise<MemberView> {
    const ctx = await this.standing.context(actor, orgId);
    this.standing.requireSuperAdmin(ctx);
    const cur = await this.member(orgId, userId);
    const role = input.role ?? cur.role;
    const departmentId = input.departmentId ?? cur.department_id;
    const scope = this.validateAssignment(
      ctx,
      role,
      departmentId,
      input.scope ?? (role === 'device_admin' && cur.role === 'device_admin' ? cur.scope : undefined),
    );
    const now = this.deps.clock.now();
    await this.db.transaction().execute(async (trx) => {
      await this.putMembership(trx, { orgId, userId, role, departmentId, scope, now }, true);
      await audit(trx, now, actor, 'member.update', `org:${orgId}`, { user: userId, role, department_id: departmentId, scope });
    });
    return this.member(orgId, userId);
  }

  async removeMember(actor: Principal, orgId: string, userId: string): Promise<void> {
    const ctx = await this.standing.context(actor, orgId);
    // Anyone may leave; removing someone else takes a super admin.
    if (!(actor.kind === 'user' && actor.userId === userId)) this.standing.requireSuperAdmin(ctx);
    const cur = await this.member(orgId, userId);
    const now = this.deps.clock.now();
    await this.db.transaction().execute(async (trx) => {
      if (cur.role === 'super_admin') await this.requireAnotherSuperAdmin(trx, orgId, userId);
      await trx.deleteFrom('admin_scopes').where('org_id', '=', orgId).where('user_id', '=', userId).execute();
      await trx
        .deleteFrom('application_admins')
        .where('user_id', '=', userId)
        .where('app_id', 'in', (eb) => eb.selectFrom('applications').select('id').where('org_id', '=', orgId))
        .execute();
      await this.dropFromDeviceRanges(trx, orgId, userId, cur.department_id);
      await trx.deleteFrom('org_members').where('org_id', '=', orgId).where('user_id', '=', userId).execute();
      await audit(trx, now, actor, 'member.remove', `org:${orgId}`, { user: userId });
    });
  }

  /**
   * A removed member leaves every device range of the organisation at once: a range entry naming
   * them becomes their former department (unless the range already has it), so the devices stay
   * with the same admins and the person no longer appears in (or counts for) any range.
   */
  private async dropFromDeviceRanges(
    trx: Transaction<Database>,
    orgId: string,
    userId: string,
    departmentId: string,
  ): Promise<void> {
    const rows = await trx
      .selectFrom('device_visibility as v')
      .innerJoin('devices as d', 'd.id', 'v.device_id')
      .select(['v.id', 'v.device_id'])
      .where('v.user_id', '=', userId)
      .where('d.owner_type', '=', 'org')
      .where('d.owner_id', '=', orgId)
      .execute();
    if (rows.length === 0) return;
    const deviceIds = [...new Set(rows.map((r) => r.device_id))];
    const covered = await trx
      .selectFrom('device_visibility')
      .select('device_id')
      .where('device_id', 'in', deviceIds)
      .where('department_id', '=', departmentId)
      .execute();
    const has = new Set(covered.map((c) => c.device_id));
    await trx
      .deleteFrom('device_visibility')
      .where(
        'id',
        'in',
        rows.map((r) => r.id),
      )
      .execute();
    const add = deviceIds.filter((d) => !has.has(d));
    if (add.length) {
      await trx
        .insertInto('device_visibility')
        .values(add.map((device_id) => ({ device_id, department_id: departmentId, user_id: null })))
        .execute();
    }
  }

  async member(orgId: string, userId: string): Promise<MemberView> {
    const r = await this.db
      .selectFrom('org_members as m')
      .innerJoin('users as u', 'u.id', 'm.user_id')
      .select(['m.user_id', 'u.username', 'u.display_name', 'm.role', 'm.department_id', 'm.created_at'])
      .where('m.org_id', '=', orgId)
      .where('m.user_id', '=', userId)
      .executeTakeFirst();
    if (!r) fail('NOT_FOUND', 'No such member of this organisation');
    const scope = await this.db
      .selectFrom('admin_scopes')
      .select('department_id')
      .where('org_id', '=', orgId)
      .where('user_id', '=', userId)
      .execute();
    return {
      user_id: r.user_id,
      username: r.username,
      display_name: r.display_name,
      role: r.role as Role,
      department_id: r.department_id,
      scope: scope.map((s) => s.department_id).sort(),
      joined_at: iso(r.created_at),
    };
  }

  private async findUser(input: { userId?: string; username?: string }): Promise<{ id: string }> {
    let q = this.db.selectFrom('users').select('id');
    if (input.userId) q = q.where('id', '=', input.userId);
    else if (input.username) q = q.where('username', '=', input.username.toLowerCase());
    else fail('VALIDATION_FAILED', 'Give user_id or username');
    const u = await q.executeTakeFirst();
    if (!u) fail('NOT_FOUND', 'No such user');
    return u;
  }

  // ── ranges and admins, for binding ────────────────────────────────────────

  /**
   * Turns the ids a binder picked into a range, checking they belong to the organisation. Only
   * someone who may bind here gets that far (403 first), and a user id outside the binder's reach
   * is refused the same way whether or not it is a member, so a range says nothing about who
   * belongs to the organisation.
   */
  async resolveRange(ctx: OrgContext, input: RangeInput): Promise<DeviceRange> {
    this.standing.requireMember(ctx);
    if (!ctx.isOperator && ctx.role === 'member' && !ctx.memberBinding) fail('MEMBER_BINDING_OFF');
    const reach: Set<string> | 'all' = ctx.role === 'member' && !ctx.isOperator ? ctx.visibility : manageable(ctx);
    const departments = [...new Set(input.departments ?? [])];
    for (const d of departments) if (!ctx.tree.has(d)) fail('DEPARTMENT_NOT_FOUND', `No department ${d} in this organisation`);
    const userIds = [...new Set(input.users ?? [])];
    const users: DeviceRange['users'] = [];
    if (userIds.length) {
      const rows = await this.db
        .selectFrom('org_members')
        .select(['user_id', 'department_id'])
        .where('org_id', '=', ctx.orgId)
        .where('user_id', 'in', userIds)
        .execute();
      const byId = new Map(rows.map((r) => [r.user_id, r.department_id]));
      const missing = userIds.filter((u) => !byId.has(u));
      if (missing.length) {
        if (reach !== 'all') fail(ctx.role === 'member' ? 'OUTSIDE_VISIBILITY' : 'OUTSIDE_SCOPE');
        fail('VALIDATION_FAILED', `Not members of this organisation: ${missing.join(', ')}`);
      }
      for (const u of userIds) users.push({ userId: u, departmentId: byId.get(u)! });
    }
    return { departments, users };
  }

  /** The stored range of a device of `orgId`; users are placed by their current department. */
  async deviceRange(deviceId: number, orgId: string): Promise<DeviceRange> {
    const rows = await this.db
      .selectFrom('device_visibility as v')
      .leftJoin('org_members as m', (j) => j.onRef('m.user_id', '=', 'v.user_id').on('m.org_id', '=', orgId))
      .select(['v.department_id', 'v.user_id', 'm.department_id as user_department'])
      .where('v.device_id', '=', deviceId)
      .orderBy('v.id')
      .execute();
    return {
      departments: rows.filter((r) => r.department_id !== null).map((r) => r.department_id!),
      users: rows.filter((r) => r.user_id !== null).map((r) => ({ userId: r.user_id!, departmentId: r.user_department })),
    };
  }

  /** Users holding the binding permission over a device with this range: super admins and covering device admins. */
  async adminsFor(orgId: string, range: DeviceRange): Promise<Array<{ user_id: string; display_name: string; role: Role }>> {
    const tree = await this.standing.tree(orgId);
    const rows = await this.db
      .selectFrom('org_members as m')
      .innerJoin('users as u', 'u.id', 'm.user_id')
      .select(['m.user_id', 'u.display_name', 'm.role'])
      .where('m.org_id', '=', orgId)
      .where('m.role', 'in', ['super_admin', 'device_admin'])
      .orderBy('u.username')
      .execute();
    const scopes = await this.scopesOf(orgId);
    return rows
      .filter((r) => r.role === 'super_admin' || rangeWithin(range, tree.closure(scopes.get(r.user_id) ?? [])))
      .map((r) => ({ user_id: r.user_id, display_name: r.display_name, role: r.role as Role }));
  }
}
