import type { ErrorCode } from '../../errors.js';

/**
 * Who may do what in an organisation (seed 004, issue 4). Pure functions over an `OrgContext`, so
 * the rules are read in one place and the permission-matrix test drives them table by table.
 *
 * - super admin: everything in the organisation.
 * - device admin: the binding permission, limited to a scope of departments (each with its subtree);
 *   binds devices visible inside the scope and manages the organisation's devices inside it.
 * - member: binds only when the organisation allows member binding, and only for departments and
 *   users inside their own visibility range (their department's subtree); manages only the devices
 *   they bound themselves (rename, info, admins, firmware), and may unbind those.
 * - associated applications: only the application's admins (and super admins) add or enable them.
 */
export const ROLES = ['super_admin', 'device_admin', 'member'] as const;
export type Role = (typeof ROLES)[number];

export const DEVICE_ACTIONS = ['view', 'rename', 'firmware_upgrade', 'unbind', 'reboot', 'fetch_log', 'manage_app'] as const;
export type DeviceAction = (typeof DEVICE_ACTIONS)[number];

/** Actions of a member on a device they bound themselves (seed 004 "成员管理绑定设备"). */
const BINDER_ACTIONS: readonly DeviceAction[] = ['view', 'rename', 'firmware_upgrade', 'unbind'];
const ADMIN_ACTIONS: readonly DeviceAction[] = ['view', 'rename', 'firmware_upgrade', 'unbind', 'reboot', 'fetch_log'];

/** A department tree of one organisation; subtrees are the unit of visibility and scope. */
export class DepartmentTree {
  private readonly children = new Map<string, string[]>();
  private readonly parents = new Map<string, string | null>();
  readonly rootId: string;

  constructor(rows: ReadonlyArray<{ id: string; parent_id: string | null }>) {
    let root: string | null = null;
    for (const r of rows) {
      this.parents.set(r.id, r.parent_id);
      if (r.parent_id === null) root ??= r.id;
      else {
        const list = this.children.get(r.parent_id) ?? [];
        list.push(r.id);
        this.children.set(r.parent_id, list);
      }
    }
    if (root === null) throw new Error('an organisation has no root department');
    this.rootId = root;
  }

  has(id: string): boolean {
    return this.parents.has(id);
  }

  parentOf(id: string): string | null {
    return this.parents.get(id) ?? null;
  }

  childrenOf(id: string): readonly string[] {
    return this.children.get(id) ?? [];
  }

  /** The ids of `ids` and all their descendants. */
  closure(ids: Iterable<string>): Set<string> {
    const out = new Set<string>();
    const stack = [...ids].filter((id) => this.has(id));
    while (stack.length) {
      const id = stack.pop()!;
      if (out.has(id)) continue;
      out.add(id);
      stack.push(...this.childrenOf(id));
    }
    return out;
  }

  /** True when `id` is `ancestor` or below it. */
  isWithin(id: string, ancestor: string): boolean {
    for (let cur: string | null = id; cur !== null; cur = this.parentOf(cur)) if (cur === ancestor) return true;
    return false;
  }
}

export interface OrgContext {
  orgId: string;
  userId: string | null;
  /** Platform operators (and the CLI) act on every organisation. */
  isOperator: boolean;
  /** null: not a member of this organisation. */
  role: Role | null;
  departmentId: string | null;
  memberBinding: boolean;
  tree: DepartmentTree;
  /** A device admin's scope roots (empty for other roles). */
  scopeRoots: string[];
  /** Departments a device admin manages: the closure of the scope roots. */
  scope: Set<string>;
  /** A member's visibility range: their department's subtree. */
  visibility: Set<string>;
  /** Applications of this organisation the actor administers. */
  appAdminOf: Set<string>;
}

/** Who a device is visible to: departments (with subtrees) and single users (by their department). */
export interface DeviceRange {
  departments: string[];
  users: Array<{ userId: string; departmentId: string | null }>;
}

/** The departments the actor may pick from and manage; 'all' for operators and super admins. */
export function manageable(ctx: OrgContext): Set<string> | 'all' {
  if (ctx.isOperator || ctx.role === 'super_admin') return 'all';
  if (ctx.role === 'device_admin') return ctx.scope;
  return new Set();
}

/** True when every department and every user of the range lies inside `allowed`. */
export function rangeWithin(range: DeviceRange, allowed: Set<string> | 'all'): boolean {
  if (allowed === 'all') return true;
  if (range.departments.length === 0 && range.users.length === 0) return false;
  return (
    range.departments.every((d) => allowed.has(d)) &&
    range.users.every((u) => u.departmentId !== null && allowed.has(u.departmentId))
  );
}

export type Decision = { ok: true } | { ok: false; code: ErrorCode; message?: string };
const OK: Decision = { ok: true };

/** May the actor bind a device into this organisation, visible to `range`? */
export function decideOrgBind(ctx: OrgContext, range: DeviceRange): Decision {
  if (ctx.isOperator || ctx.role === 'super_admin') return OK;
  if (ctx.role === null) return { ok: false, code: 'FORBIDDEN', message: 'You are not a member of this organisation' };
  if (ctx.role === 'device_admin') return rangeWithin(range, ctx.scope) ? OK : { ok: false, code: 'OUTSIDE_SCOPE' };
  if (!ctx.memberBinding) return { ok: false, code: 'MEMBER_BINDING_OFF' };
  return rangeWithin(range, ctx.visibility) ? OK : { ok: false, code: 'OUTSIDE_VISIBILITY' };
}

/** May the actor add or enable the associated application `appId` (null: it does not exist yet)? */
export function decideEnableApp(ctx: OrgContext, appId: string | null): Decision {
  if (ctx.isOperator || ctx.role === 'super_admin') return OK;
  if (appId !== null && ctx.appAdminOf.has(appId)) return OK;
  return { ok: false, code: 'APP_ADMIN_REQUIRED' };
}

/** What the actor may do with one of the organisation's devices. */
export function orgDeviceActions(
  ctx: OrgContext,
  device: { boundByUserId: string | null; range: DeviceRange; appId: string | null },
): Set<DeviceAction> {
  const out = new Set<DeviceAction>();
  const full =
    ctx.isOperator || ctx.role === 'super_admin' || (ctx.role === 'device_admin' && rangeWithin(device.range, ctx.scope));
  if (full) for (const a of ADMIN_ACTIONS) out.add(a);
  else if (ctx.role !== null && ctx.userId !== null && device.boundByUserId === ctx.userId) {
    for (const a of BINDER_ACTIONS) out.add(a);
  }
  // What the bind page promises by "visible to": people inside the range see the device, read-only.
  if (out.size === 0 && inDeviceRange(ctx, device.range)) out.add('view');
  if (out.has('view') && device.appId !== null && decideEnableApp(ctx, device.appId).ok) out.add('manage_app');
  return out;
}

/** True when the actor is a member inside the device's range: a listed user, or in a listed department's subtree. */
export function inDeviceRange(ctx: OrgContext, range: DeviceRange): boolean {
  if (ctx.role === null || ctx.userId === null) return false;
  if (range.users.some((u) => u.userId === ctx.userId)) return true;
  const dept = ctx.departmentId;
  return dept !== null && range.departments.some((d) => ctx.tree.isWithin(dept, d));
}

/** What a user may do with a device in a personal space: the owner all of it, a co-user view and leave. */
export function personalDeviceActions(
  actor: { userId: string | null; isOperator: boolean },
  device: { ownerId: string; coUsers: ReadonlySet<string> },
): Set<DeviceAction> {
  if (actor.isOperator || (actor.userId !== null && actor.userId === device.ownerId)) return new Set(ADMIN_ACTIONS);
  if (actor.userId !== null && device.coUsers.has(actor.userId)) return new Set<DeviceAction>(['view', 'unbind']);
  return new Set();
}

/** §A6 push_user_scan user_type: 1 for an admin of the device, 0 for an ordinary member. */
export function userTypeFor(actions: ReadonlySet<DeviceAction>): 0 | 1 {
  return actions.has('reboot') ? 1 : 0;
}

/** The range a bind gets when the binder picks none: their own reach. */
export function defaultRange(ctx: OrgContext): DeviceRange {
  if (ctx.isOperator || ctx.role === 'super_admin') return { departments: [ctx.tree.rootId], users: [] };
  if (ctx.role === 'device_admin' && ctx.scopeRoots.length > 0) return { departments: [...ctx.scopeRoots], users: [] };
  if (ctx.departmentId) return { departments: [ctx.departmentId], users: [] };
  return { departments: [], users: [] };
}
