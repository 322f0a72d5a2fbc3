import type { Transaction } from 'kysely';
import type { Database, UsersTable } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { audit } from '../../shared/audit.js';
import { newId } from '../../shared/ids.js';
import { isOperator, type Principal, requireOperator } from '../../shared/principal.js';
import type { UserView } from '../accounts/accounts.service.js';
import { isTimeZone } from '../campaigns/campaigns.window.js';
import { insertUser, newUserRow, toUserView } from '../people/users.js';
import { ApplicationsService, type ApplicationView } from './applications.service.js';
import { MembersService, type MemberView, type RangeInput } from './members.service.js';
import type { DepartmentTree, DeviceRange, OrgContext, Role } from './permissions.js';
import { checkName, type Db, iso, OrgStanding, rootDepartmentId } from './standing.js';

export type { ApplicationView } from './applications.service.js';
export type { MemberView, RangeInput } from './members.service.js';
export { rootDepartmentId } from './standing.js';

export interface OrgView {
  id: string;
  name: string;
  parent_id: string | null;
  member_binding: boolean;
  /** IANA time zone that maintenance windows are read in; null = the instance's default. */
  time_zone: string | null;
  created_at: string;
}

export interface DepartmentView {
  id: string;
  parent_id: string | null;
  name: string;
}

/**
 * Organisations as people see them: the organisation, its settings and its department tree live
 * here; the actor's standing is OrgStanding's (standing.ts), members, roles, scopes and device
 * ranges MembersService's (members.service.ts), applications ApplicationsService's
 * (applications.service.ts). This class is the one entry the routes, the CLI and the other
 * features call, and delegates to those owners.
 */
export class OrganisationsService {
  private readonly standing: OrgStanding;
  private readonly members: MembersService;
  private readonly applications: ApplicationsService;

  constructor(private readonly deps: Pick<Deps, 'db' | 'clock'>) {
    this.standing = new OrgStanding(deps);
    this.members = new MembersService(deps, this.standing);
    this.applications = new ApplicationsService(deps, this.standing);
  }

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
      await this.standing.ensureStructure(trx, id, name, now);
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
      const byOrg = new Map(settings.map((s) => [s.org_id, s]));
      const roles = await this.membershipsOf(actor);
      return rows.map((r) => ({
        ...toOrgView(r, byOrg.get(r.id)?.member_binding === 1, byOrg.get(r.id)?.time_zone ?? null),
        role: roles.get(r.id) ?? null,
      }));
    }
    if (actor.kind !== 'user') return [];
    const rows = await this.db
      .selectFrom('org_members as m')
      .innerJoin('organisations as o', 'o.id', 'm.org_id')
      .leftJoin('org_settings as s', 's.org_id', 'o.id')
      .select(['o.id', 'o.name', 'o.parent_id', 'o.created_at', 's.member_binding', 's.time_zone', 'm.role'])
      .where('m.user_id', '=', actor.userId)
      .orderBy('o.created_at')
      .execute();
    return rows.map((r) => ({ ...toOrgView(r, r.member_binding === 1, r.time_zone ?? null), role: r.role as Role }));
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

  async updateSettings(
    actor: Principal,
    orgId: string,
    input: { memberBinding?: boolean; timeZone?: string | null },
  ): Promise<OrgView> {
    const ctx = await this.context(actor, orgId);
    this.requireSuperAdmin(ctx);
    const set: { member_binding?: number; time_zone?: string | null } = {};
    if (input.memberBinding !== undefined) set.member_binding = input.memberBinding ? 1 : 0;
    if (input.timeZone !== undefined) {
      if (input.timeZone !== null && !isTimeZone(input.timeZone)) {
        fail('VALIDATION_FAILED', 'time_zone must be an IANA time zone such as Asia/Shanghai, or null');
      }
      set.time_zone = input.timeZone;
    }
    if (Object.keys(set).length > 0) {
      const now = this.deps.clock.now();
      await this.db.transaction().execute(async (trx) => {
        await trx
          .updateTable('org_settings')
          .set({ ...set, updated_at: now })
          .where('org_id', '=', orgId)
          .execute();
        await audit(trx, now, actor, 'org.settings', `org:${orgId}`, {
          ...(input.memberBinding !== undefined ? { member_binding: input.memberBinding } : {}),
          ...(input.timeZone !== undefined ? { time_zone: input.timeZone } : {}),
        });
      });
    }
    return this.view(orgId);
  }

  async view(orgId: string): Promise<OrgView> {
    const r = await this.db
      .selectFrom('organisations as o')
      .leftJoin('org_settings as s', 's.org_id', 'o.id')
      .select(['o.id', 'o.name', 'o.parent_id', 'o.created_at', 's.member_binding', 's.time_zone'])
      .where('o.id', '=', orgId)
      .executeTakeFirst();
    if (!r) fail('ORG_NOT_FOUND');
    return toOrgView(r, r.member_binding === 1, r.time_zone ?? null);
  }

  private async userView(userId: string): Promise<UserView> {
    const r = await this.db.selectFrom('users').selectAll().where('id', '=', userId).executeTakeFirst();
    if (!r) fail('NOT_FOUND', 'No such user');
    return toUserView(r);
  }

  // ── the actor's standing (standing.ts) ────────────────────────────────────

  context(actor: Principal, orgId: string): Promise<OrgContext> {
    return this.standing.context(actor, orgId);
  }

  requireMember(ctx: OrgContext): void {
    this.standing.requireMember(ctx);
  }

  requireSuperAdmin(ctx: OrgContext): void {
    this.standing.requireSuperAdmin(ctx);
  }

  requireAdmin(ctx: OrgContext): void {
    this.standing.requireAdmin(ctx);
  }

  tree(orgId: string, orgName?: string): Promise<DepartmentTree> {
    return this.standing.tree(orgId, orgName);
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
      if (ctx.tree.isWithin(input.parentId, deptId)) fail('DEPARTMENT_CYCLE');
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

  /**
   * Deletes a department with its sub-departments, when none of them holds members, pending
   * invitations or devices (a device's range naming one). Refused otherwise with the counts in
   * `details`, so the console can say what is in the way. The subtree is read again inside the
   * transaction, so a sub-department added meanwhile is counted (or deleted) too.
   */
  async deleteDepartment(actor: Principal, orgId: string, deptId: string): Promise<void> {
    const ctx = await this.context(actor, orgId);
    this.requireSuperAdmin(ctx);
    if (!ctx.tree.has(deptId)) fail('DEPARTMENT_NOT_FOUND');
    if (deptId === ctx.tree.rootId) fail('VALIDATION_FAILED', 'The root department cannot be deleted');
    const now = this.deps.clock.now();
    await this.db.transaction().execute(async (trx) => {
      const rows = await trx.selectFrom('departments').select(['id', 'parent_id']).where('org_id', '=', orgId).execute();
      // Breadth-first from deptId: parents before children, so deleting in reverse removes leaves first.
      const order = [deptId];
      for (let i = 0; i < order.length; i++) for (const r of rows) if (r.parent_id === order[i]) order.push(r.id);
      const count = async (q: Promise<{ n: number | string | bigint } | undefined>) => Number((await q)?.n ?? 0);
      const held = {
        sub_departments: order.length - 1,
        members: await count(
          trx
            .selectFrom('org_members')
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .where('department_id', 'in', order)
            .executeTakeFirst(),
        ),
        invitations: await count(
          trx
            .selectFrom('invites')
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .where('department_id', 'in', order)
            .where('accepted_at', 'is', null)
            .where('revoked_at', 'is', null)
            .where('expires_at', '>', now)
            .executeTakeFirst(),
        ),
        devices: await count(
          trx
            .selectFrom('device_visibility')
            .select((eb) => eb.fn.count<number>('device_id').distinct().as('n'))
            .where('department_id', 'in', order)
            .executeTakeFirst(),
        ),
      };
      if (held.members + held.invitations + held.devices > 0) {
        const what = (['members', 'invitations', 'devices'] as const).filter((k) => held[k] > 0).map((k) => `${held[k]} ${k}`);
        fail(
          'DEPARTMENT_NOT_EMPTY',
          `The department${held.sub_departments ? ' or a sub-department' : ''} still holds ${what.join(', ')}; move them first`,
          held,
        );
      }
      // Finished invitations of these departments go with them (their history stays in the audit log).
      await trx.deleteFrom('invites').where('department_id', 'in', order).execute();
      await trx.deleteFrom('admin_scopes').where('department_id', 'in', order).execute();
      for (const id of [...order].reverse()) await trx.deleteFrom('departments').where('id', '=', id).execute();
      await audit(trx, now, actor, 'department.delete', `org:${orgId}`, { department: deptId, sub_departments: order.slice(1) });
    });
  }

  // ── members, roles, scopes and device ranges (members.service.ts) ─────────

  listMembers(actor: Principal, orgId: string, q: { departmentId?: string; search?: string } = {}): Promise<MemberView[]> {
    return this.members.listMembers(actor, orgId, q);
  }

  validateAssignment(ctx: OrgContext, role: unknown, departmentId: string, scope: string[] | undefined): string[] {
    return this.members.validateAssignment(ctx, role, departmentId, scope);
  }

  requireMayAssign(ctx: OrgContext, role: Role, departmentId: string): void {
    this.members.requireMayAssign(ctx, role, departmentId);
  }

  requireMayAssignRole(ctx: OrgContext, role: unknown): void {
    this.members.requireMayAssignRole(ctx, role);
  }

  checkAssignment(
    ctx: OrgContext,
    input: { role: Role; departmentId?: string; scope?: string[] },
  ): { departmentId: string; scope: string[] } {
    return this.members.checkAssignment(ctx, input);
  }

  putMembership(
    trx: Db | Transaction<Database>,
    m: { orgId: string; userId: string; role: Role; departmentId: string; scope: string[]; now: number },
    replace: boolean,
  ): Promise<void> {
    return this.members.putMembership(trx, m, replace);
  }

  addMember(
    actor: Principal,
    orgId: string,
    input: { userId?: string; username?: string; role: Role; departmentId?: string; scope?: string[] },
  ): Promise<MemberView> {
    return this.members.addMember(actor, orgId, input);
  }

  updateMember(
    actor: Principal,
    orgId: string,
    userId: string,
    input: { role?: Role; departmentId?: string; scope?: string[] },
  ): Promise<MemberView> {
    return this.members.updateMember(actor, orgId, userId, input);
  }

  removeMember(actor: Principal, orgId: string, userId: string): Promise<void> {
    return this.members.removeMember(actor, orgId, userId);
  }

  member(orgId: string, userId: string): Promise<MemberView> {
    return this.members.member(orgId, userId);
  }

  resolveRange(ctx: OrgContext, input: RangeInput): Promise<DeviceRange> {
    return this.members.resolveRange(ctx, input);
  }

  deviceRange(deviceId: number, orgId: string): Promise<DeviceRange> {
    return this.members.deviceRange(deviceId, orgId);
  }

  adminsFor(orgId: string, range: DeviceRange): Promise<Array<{ user_id: string; display_name: string; role: Role }>> {
    return this.members.adminsFor(orgId, range);
  }

  // ── applications (applications.service.ts) ────────────────────────────────

  listApplications(actor: Principal, orgId: string): Promise<ApplicationView[]> {
    return this.applications.listApplications(actor, orgId);
  }

  createApplication(
    actor: Principal,
    orgId: string,
    input: { appKey: string; name: string; admins?: string[] },
  ): Promise<ApplicationView> {
    return this.applications.createApplication(actor, orgId, input);
  }

  insertApplication(trx: Db | Transaction<Database>, orgId: string, appKey: string, name: string, now: number): Promise<string> {
    return this.applications.insertApplication(trx, orgId, appKey, name, now);
  }

  setApplicationAdmins(actor: Principal, orgId: string, appId: string, admins: string[]): Promise<ApplicationView> {
    return this.applications.setApplicationAdmins(actor, orgId, appId, admins);
  }
}

function toOrgView(
  r: { id: string; name: string; parent_id: string | null; created_at: number },
  memberBinding: boolean,
  timeZone: string | null = null,
): OrgView {
  return {
    id: r.id,
    name: r.name,
    parent_id: r.parent_id,
    member_binding: memberBinding,
    time_zone: timeZone,
    created_at: iso(r.created_at),
  };
}
