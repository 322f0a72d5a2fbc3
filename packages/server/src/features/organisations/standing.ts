import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { isOperator, type Principal } from '../../shared/principal.js';
import { DepartmentTree, type OrgContext, type Role } from './permissions.js';

export type Db = Kysely<Database>;

const NAME_MAX = 128;

/** Root departments get a derived id, so creating one lazily is idempotent under concurrency. */
export function rootDepartmentId(orgId: string): string {
  return `${orgId}_root`;
}

export function iso(t: number): string {
  return new Date(t).toISOString();
}

/** The name rule of organisations, departments and applications. */
export function checkName(name: unknown, what: string): string {
  if (typeof name !== 'string' || name.trim().length === 0 || name.length > NAME_MAX) {
    fail('VALIDATION_FAILED', `${what} must be 1–${NAME_MAX} characters`);
  }
  return name.trim();
}

/**
 * The actor's standing in an organisation (the `OrgContext` the permission rules read) and the
 * department tree it stands on. Sub-merchant organisations made by the merchant feature get their
 * root department and settings lazily, the first time their tree is read.
 */
export class OrgStanding {
  constructor(private readonly deps: Pick<Deps, 'db' | 'clock'>) {}

  private get db(): Db {
    return this.deps.db.kysely;
  }

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

  /** The root department and the settings row of an organisation, each created only if missing. */
  async ensureStructure(db: Db | Transaction<Database>, orgId: string, name: string, now: number): Promise<void> {
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
}
