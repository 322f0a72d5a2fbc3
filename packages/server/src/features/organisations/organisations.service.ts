import type { Kysely, Transaction } from 'kysely';
import type { Database, UsersTable } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { audit } from '../../shared/audit.js';
import { newId } from '../../shared/ids.js';
import { isOperator, type Principal, requireOperator } from '../../shared/principal.js';
import type { UserView } from '../accounts/accounts.service.js';
import { insertUser, newUserRow, toUserView } from '../people/users.js';
import { DepartmentTree, type DeviceRange, manageable, type OrgContext, ROLES, type Role, rangeWithin } from './permissions.js';

export interface OrgView {
  id: string;
  name: string;
  parent_id: string | null;
  member_binding: boolean;
  created_at: string;
}

export interface DepartmentView {
  id: string;
  parent_id: string | null;
  name: string;
}

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

export interface ApplicationView {
  id: string;
  app_key: string;
  name: string;
  admins: string[];
}

/** A range as the API takes it: department ids and user ids. */
export interface RangeInput {
  departments?: string[];
  users?: string[];
}

const NAME_MAX = 128;
const APP_KEY_RE = /^[A-Za-z0-9_.-]{1,64}$/;
type Db = Kysely<Database>;

/** Root departments get a derived id, so creating one lazily is idempotent under concurrency. */
export function rootDepartmentId(orgId: string): string {
  return `${orgId}_root`;
}

function iso(t: number): string {
  return new Date(t).toISOString();
}

function checkName(name: unknown, what: string): string {
  if (typeof name !== 'string' || name.trim().length === 0 || name.length > NAME_MAX) {
    fail('VALIDATION_FAILED', `${what} must be 1–${NAME_MAX} characters`);
  }
  return name.trim();
}

/**
 * Organisations as people see them: departments (a tree), members with roles, device admins'
 * scopes, the member-binding setting and applications. Sub-merchant organisations made by the
 * merchant feature get their root department and settings lazily, the first time they are used here.
 */
export class OrganisationsService {
  constructor(private readonly deps: Pick<Deps, 'db' | 'clock'>) {}

  private get db(): Db {
    return this.deps.db.kysely;
  }

  // ── organisations ─────────────────────────────────────────────────────────

  /**
   * An operator creates an organisation with its first super admin: an existing user (`user_id`)
   * or a new one (`username` + `password`). One transaction; the new user's row commits with it.
   */
  async create(
    actor: Principal,
    input: {
      name: string;
      superAdmin: { userId?: string; username?: string; password?: string; displayName?: string };
    },
  ): Promise<{ organisation: OrgView; super_admin: UserView }> {
    requireOperator(actor);
    const name = checkName(input.name, 'name');
    const now = this.deps.clock.now();
    let admin: UserView;
    let newUser: UsersTable | null = null;
    if (input.superAdmin.userId) {
      admin = await this.userView(input.superAdmin.userId);
    } else {
      newUser = await newUserRow(
        {
          username: input.superAdmin.username ?? '',
          password: input.superAdmin.password ?? '',
          displayName: input.superAdmin.displayName,
        },
        now,
      );
      admin = toUserView(newUser);
    }
    const id = newId('org');
    await this.db.transaction().execute(async (trx) => {
      if (newUser) {
        await insertUser(trx, this.deps.db.caps, newUser);
        await audit(trx, now, actor, 'user.create', newUser.id, { username: newUser.username, operator: false });
      }
      await trx
        .insertInto('organisations')
        .values({ id, name, parent_id: null, mchid: null, merchant_shortname: null, created_at: now })
        .execute();
      await this.ensureStructure(trx, id, name, now);
      await trx
        .insertInto('org_members')
        .values({ org_id: id, user_id: admin.id, role: 'super_admin', department_id: rootDepartmentId(id), created_at: now })
        .execute();
      await audit(trx, now, actor, 'org.create', `org:${id}`, { name, super_admin: admin.id });
    });
    return { organisation: await this.view(id), super_admin: admin };
  }

  /** Operators see every organisation; a user sees the ones they belong to, with their role. */
  async list(actor: Principal): Promise<Array<OrgView & { role: Role | null }>> {
    if (isOperator(actor)) {
      const rows = await this.db.selectFrom('organisations').selectAll().orderBy('created_at').orderBy('id').execute();
      const settings = await this.db.selectFrom('org_settings').selectAll().execute();
      const mb = new Map(settings.map((s) => [s.org_id, s.member_binding === 1]));
      const roles = await this.membershipsOf(actor);
      return rows.map((r) => ({ ...toOrgView(r, mb.get(r.id) ?? false), role: roles.get(r.id) ?? null }));
    }
    if (actor.kind !== 'user') return [];
    const rows = await this.db
      .selectFrom('org_members as m')
      .innerJoin('organisations as o', 'o.id', 'm.org_id')
      .leftJoin('org_settings as s', 's.org_id', 'o.id')
      .select(['o.id', 'o.name', 'o.parent_id', 'o.created_at', 's.member_binding', 'm.role'])
      .where('m.user_id', '=', actor.userId)
      .orderBy('o.created_at')
      .execute();
    return rows.map((r) => ({ ...toOrgView(r, r.member_binding === 1), role: r.role as Role }));
  }

  private async membershipsOf(actor: Principal): Promise<Map<string, Role>> {
    if (actor.kind !== 'user') return new Map();
    const rows = await this.db.selectFrom('org_members').select(['org_id', 'role']).where('user_id', '=', actor.userId).execute();
    return new Map(rows.map((r) => [r.org_id, r.role as Role]));
  }

  async get(
    actor: Principal,
    orgId: string,
  ): Promise<{ organisation: OrgView; me: { role: Role | null; department_id: string | null; scope: string[] } }> {
    const ctx = await this.context(actor, orgId);
    this.requireMember(ctx);
    return {
      organisation: await this.view(orgId),
      me: { role: ctx.role, department_id: ctx.departmentId, scope: ctx.scopeRoots },
    };
  }

  async updateSettings(actor: Principal, orgId: string, input: { memberBinding?: boolean }): Promise<OrgView> {
    const ctx = await this.context(actor, orgId);
    this.requireSuperAdmin(ctx);
    if (input.memberBinding !== undefined) {
      const now = this.deps.clock.now();
      await this.db.transaction().execute(async (trx) => {
        await trx
          .updateTable('org_settings')
          .set({ member_binding: input.memberBinding ? 1 : 0, updated_at: now })
          .where('org_id', '=', orgId)
          .execute();
        await audit(trx, now, actor, 'org.settings', `org:${orgId}`, { member_binding: input.memberBinding });
      });
    }
    return this.view(orgId);
  }

  async view(orgId: string): Promise<OrgView> {
    const r = await this.db
      .selectFrom('organisations as o')
      .leftJoin('org_settings as s', 's.org_id', 'o.id')
      .select(['o.id', 'o.name', 'o.parent_id', 'o.created_at', 's.member_binding'])
      .where('o.id', '=', orgId)
      .executeTakeFirst();
    if (!r) fail('ORG_NOT_FOUND');
    return toOrgView(r, r.member_binding === 1);
  }

  // ── the actor's standing in an organisation ───────────────────────────────

  /** Everything the permission rules need about the actor in `orgId`. */
  async context(actor: Principal, orgId: string): Promise<OrgContext> {
    const org = await this.db.selectFrom('organisations').select(['id', 'name']).where('id', '=', orgId).executeTakeFirst();
    if (!org) fail('ORG_NOT_FOUND');
    const tree = await this.tree(orgId, org.name);
    const settings = await this.db.selectFrom('org_settings').selectAll().where('org_id', '=', orgId).executeTakeFirst();
    const userId = actor.kind === 'user' ? actor.userId : null;
    const member = userId
      ? await this.db
          .selectFrom('org_members')
          .selectAll()
          .where('org_id', '=', orgId)
          .where('user_id', '=', userId)
          .executeTakeFirst()
      : undefined;
    let scopeRoots: string[] = [];
    let appAdminOf = new Set<string>();
    if (member && userId) {
      if (member.role === 'device_admin') {
        const rows = await this.db
          .selectFrom('admin_scopes')
          .select('department_id')
          .where('org_id', '=', orgId)
          .where('user_id', '=', userId)
          .execute();
        scopeRoots = rows.map((r) => r.department_id).sort();
      }
      const apps = await this.db
        .selectFrom('application_admins as a')
        .innerJoin('applications as p', 'p.id', 'a.app_id')
        .select('p.id')
        .where('p.org_id', '=', orgId)
        .where('a.user_id', '=', userId)
        .execute();
      appAdminOf = new Set(apps.map((a) => a.id));
    }
    return {
      orgId,
      userId,
      isOperator: isOperator(actor),
      role: member ? (member.role as Role) : null,
      departmentId: member?.department_id ?? null,
      memberBinding: settings?.member_binding === 1,
      tree,
      scopeRoots,
      scope: tree.closure(scopeRoots),
      visibility: member ? tree.closure([member.department_id]) : new Set(),
      appAdminOf,
    };
  }

  requireMember(ctx: OrgContext): void {
    if (!ctx.isOperator && ctx.role === null) fail('FORBIDDEN', 'You are not a member of this organisation');
  }

  requireSuperAdmin(ctx: OrgContext): void {
    this.requireMember(ctx);
    if (!ctx.isOperator && ctx.role !== 'super_admin') fail('FORBIDDEN', 'Only a super admin of the organisation may do this');
  }

  /** Admins (super or device) may invite and see the whole organisation. */
  requireAdmin(ctx: OrgContext): void {
    this.requireMember(ctx);
    if (!ctx.isOperator && ctx.role !== 'super_admin' && ctx.role !== 'device_admin') {
      fail('FORBIDDEN', 'Only an admin of the organisation may do this');
    }
  }

  /** The department tree, creating the root (and settings) of an organisation that has none yet. */
  async tree(orgId: string, orgName?: string): Promise<DepartmentTree> {
    let rows = await this.db.selectFrom('departments').select(['id', 'parent_id']).where('org_id', '=', orgId).execute();
    if (!rows.some((r) => r.parent_id === null)) {
      const name =
        orgName ??
        (await this.db.selectFrom('organisations').select('name').where('id', '=', orgId).executeTakeFirst())?.name ??
        orgId;
      await this.ensureStructure(this.db, orgId, name, this.deps.clock.now());
      rows = await this.db.selectFrom('departments').select(['id', 'parent_id']).where('org_id', '=', orgId).execute();
    }
    return new DepartmentTree(rows);
  }

  private async ensureStructure(db: Db | Transaction<Database>, orgId: string, name: string, now: number): Promise<void> {
    await db
      .insertInto('departments')
      .values({ id: rootDepartmentId(orgId), org_id: orgId, parent_id: null, name, created_at: now })
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
    await db
      .insertInto('org_settings')
      .values({ org_id: orgId, member_binding: 0, updated_at: now })
      .onConflict((oc) => oc.column('org_id').doNothing())
      .execute();
  }

  // ── departments ───────────────────────────────────────────────────────────

  async listDepartments(actor: Principal, orgId: string): Promise<DepartmentView[]> {
    const ctx = await this.context(actor, orgId);
    this.requireMember(ctx);
    const rows = await this.db
      .selectFrom('departments')
      .select(['id', 'parent_id', 'name'])
      .where('org_id', '=', orgId)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows;
  }

  async createDepartment(actor: Principal, orgId: string, input: { name: string; parentId?: string }): Promise<DepartmentView> {
    const ctx = await this.context(actor, orgId);
    this.requireSuperAdmin(ctx);
    const name = checkName(input.name, 'name');
    const parentId = input.parentId ?? ctx.tree.rootId;
    if (!ctx.tree.has(parentId)) fail('DEPARTMENT_NOT_FOUND', `No department ${parentId} in this organisation`);
    const id = newId('dpt');
    const now = this.deps.clock.now();
    await this.db.transaction().execute(async (trx) => {
      await trx.insertInto('departments').values({ id, org_id: orgId, parent_id: parentId, name, created_at: now }).execute();
      await audit(trx, now, actor, 'department.create', `org:${orgId}`, { department: id, name, parent_id: parentId });
    });
    return { id, parent_id: parentId, name };
  }

  async updateDepartment(
    actor: Principal,
    orgId: string,
    deptId: string,
    input: { name?: string; parentId?: string },
  ): Promise<DepartmentView> {
    const ctx = await this.context(actor, orgId);
    this.requireSuperAdmin(ctx);
    if (!ctx.tree.has(deptId)) fail('DEPARTMENT_NOT_FOUND');
    const set: { name?: string; parent_id?: string } = {};
    if (input.name !== undefined) set.name = checkName(input.name, 'name');
    if (input.parentId !== undefined) {
      if (deptId === ctx.tree.rootId) fail('VALIDATION_FAILED', 'The root department cannot be moved');
      if (!ctx.tree.has(input.parentId)) fail('DEPARTMENT_NOT_FOUND', `No department ${input.parentId} in this organisation`);
      if (ctx.tree.isWithin(input.parentId, deptId)) fail('VALIDATION_FAILED', 'A department cannot move below itself');
      set.parent_id = input.parentId;
    }
    const now = this.deps.clock.now();
    if (Object.keys(set).length > 0) {
      await this.db.transaction().execute(async (trx) => {
        await trx.updateTable('departments').set(set).where('id', '=', deptId).execute();
        await audit(trx, now, actor, 'department.update', `org:${orgId}`, { department: deptId, ...set });
      });
    }
    const r = await this.db
      .selectFrom('departments')
      .select(['id', 'parent_id', 'name'])
      .where('id', '=', deptId)
      .executeTakeFirstOrThrow();
    return r;
  }

  /** Deletes an empty department: no sub-departments, members, pending invitations or devices visible to it. */
  async deleteDepartment(actor: Principal, orgId: string, deptId: string): Promise<void> {
    const ctx = await this.context(actor, orgId);
    this.requireSuperAdmin(ctx);
    if (!ctx.tree.has(deptId)) fail('DEPARTMENT_NOT_FOUND');
    if (deptId === ctx.tree.rootId) fail('VALIDATION_FAILED', 'The root department cannot be deleted');
    const now = this.deps.clock.now();
    await this.db.transaction().execute(async (trx) => {
      const busy = [
        await trx.selectFrom('departments').select('id').where('parent_id', '=', deptId).limit(1).executeTakeFirst(),
        await trx.selectFrom('org_members').select('user_id').where('department_id', '=', deptId).limit(1).executeTakeFirst(),
        await trx
          .selectFrom('invites')
          .select('id')
          .where('department_id', '=', deptId)
          .where('accepted_at', 'is', null)
          .where('revoked_at', 'is', null)
          .limit(1)
          .executeTakeFirst(),
        await trx.selectFrom('device_visibility').select('id').where('department_id', '=', deptId).limit(1).executeTakeFirst(),
      ];
      if (busy.some(Boolean)) fail('DEPARTMENT_NOT_EMPTY');
      await trx.deleteFrom('admin_scopes').where('department_id', '=', deptId).execute();
      await trx.deleteFrom('departments').where('id', '=', deptId).execute();
      await audit(trx, now, actor, 'department.delete', `org:${orgId}`, { department: deptId });
    });
  }

  // ── members ───────────────────────────────────────────────────────────────

  /**
   * Admins see every member; a member sees the members inside their own visibility range (the
   * people they may pick when binding a device).
   */
  async listMembers(actor: Principal, orgId: string, q: { departmentId?: string; search?: string } = {}): Promise<MemberView[]> {
    const ctx = await this.context(actor, orgId);
    this.requireMember(ctx);
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
    this.requireAdmin(ctx);
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
    const ctx = await this.context(actor, orgId);
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
    const ctx = await this.context(actor, orgId);
    this.requireSuperAdmin(ctx);
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
    const ctx = await this.context(actor, orgId);
    // Anyone may leave; removing someone else takes a super admin.
    if (!(actor.kind === 'user' && actor.userId === userId)) this.requireSuperAdmin(ctx);
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

  private async userView(userId: string): Promise<UserView> {
    const r = await this.db.selectFrom('users').selectAll().where('id', '=', userId).executeTakeFirst();
    if (!r) fail('NOT_FOUND', 'No such user');
    return toUserView(r);
  }

  // ── applications ──────────────────────────────────────────────────────────

  async listApplications(actor: Principal, orgId: string): Promise<ApplicationView[]> {
    const ctx = await this.context(actor, orgId);
    this.requireMember(ctx);
    const apps = await this.db.selectFrom('applications').selectAll().where('org_id', '=', orgId).orderBy('app_key').execute();
    const admins = apps.length
      ? await this.db
          .selectFrom('application_admins')
          .selectAll()
          .where(
            'app_id',
            'in',
            apps.map((a) => a.id),
          )
          .execute()
      : [];
    return apps.map((a) => ({
      id: a.id,
      app_key: a.app_key,
      name: a.name,
      admins: admins
        .filter((x) => x.app_id === a.id)
        .map((x) => x.user_id)
        .sort(),
    }));
  }

  async createApplication(
    actor: Principal,
    orgId: string,
    input: { appKey: string; name: string; admins?: string[] },
  ): Promise<ApplicationView> {
    const ctx = await this.context(actor, orgId);
    this.requireSuperAdmin(ctx);
    const now = this.deps.clock.now();
    const app = await this.db.transaction().execute(async (trx) => {
      const a = await this.insertApplication(trx, orgId, input.appKey, input.name, now);
      await this.replaceAppAdmins(trx, orgId, a, input.admins ?? []);
      await audit(trx, now, actor, 'application.create', `org:${orgId}`, { app: a, app_key: input.appKey });
      return a;
    });
    return (await this.listApplications(actor, orgId)).find((a) => a.id === app)!;
  }

  /** Inserts an application (used by binding when an admin adds a model's associated app). */
  async insertApplication(
    trx: Db | Transaction<Database>,
    orgId: string,
    appKey: string,
    name: string,
    now: number,
  ): Promise<string> {
    if (!APP_KEY_RE.test(appKey)) fail('VALIDATION_FAILED', 'app_key must be 1–64 of [A-Za-z0-9_.-]');
    const id = newId('app');
    try {
      await trx
        .insertInto('applications')
        .values({ id, org_id: orgId, app_key: appKey, name: checkName(name, 'name'), created_at: now })
        .execute();
    } catch (e) {
      if (this.deps.db.caps.isUniqueViolation(e)) fail('ALREADY_EXISTS', `The organisation already has application ${appKey}`);
      throw e;
    }
    return id;
  }

  async setApplicationAdmins(actor: Principal, orgId: string, appId: string, admins: string[]): Promise<ApplicationView> {
    const ctx = await this.context(actor, orgId);
    this.requireSuperAdmin(ctx);
    const app = await this.db
      .selectFrom('applications')
      .select('id')
      .where('id', '=', appId)
      .where('org_id', '=', orgId)
      .executeTakeFirst();
    if (!app) fail('NOT_FOUND', 'No such application in this organisation');
    const now = this.deps.clock.now();
    await this.db.transaction().execute(async (trx) => {
      await this.replaceAppAdmins(trx, orgId, appId, admins);
      await audit(trx, now, actor, 'application.admins', `org:${orgId}`, { app: appId, admins });
    });
    return (await this.listApplications(actor, orgId)).find((a) => a.id === appId)!;
  }

  private async replaceAppAdmins(trx: Db | Transaction<Database>, orgId: string, appId: string, admins: string[]): Promise<void> {
    const ids = [...new Set(admins)];
    if (ids.length > 0) {
      const members = await trx
        .selectFrom('org_members')
        .select('user_id')
        .where('org_id', '=', orgId)
        .where('user_id', 'in', ids)
        .execute();
      const found = new Set(members.map((m) => m.user_id));
      const missing = ids.filter((i) => !found.has(i));
      if (missing.length) fail('VALIDATION_FAILED', `Not members of this organisation: ${missing.join(', ')}`);
    }
    await trx.deleteFrom('application_admins').where('app_id', '=', appId).execute();
    if (ids.length)
      await trx
        .insertInto('application_admins')
        .values(ids.map((user_id) => ({ app_id: appId, user_id })))
        .execute();
  }

  // ── ranges and admins, for binding ────────────────────────────────────────

  /**
   * Turns the ids a binder picked into a range, checking they belong to the organisation. Only
   * someone who may bind here gets that far (403 first), and a user id outside the binder's reach
   * is refused the same way whether or not it is a member, so a range says nothing about who
   * belongs to the organisation.
   */
  async resolveRange(ctx: OrgContext, input: RangeInput): Promise<DeviceRange> {
    this.requireMember(ctx);
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
    const tree = await this.tree(orgId);
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

function toOrgView(
  r: { id: string; name: string; parent_id: string | null; created_at: number },
  memberBinding: boolean,
): OrgView {
  return { id: r.id, name: r.name, parent_id: r.parent_id, member_binding: memberBinding, created_at: iso(r.created_at) };
}
