import type { Kysely, SelectQueryBuilder } from 'kysely';
import type { Database } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import type { Principal } from '../../shared/principal.js';
import type { DeviceRow } from '../devices/devices.repo.js';
import type { OrganisationsService } from '../organisations/organisations.service.js';
import {
  DEVICE_ACTIONS,
  type DeviceAction,
  type DeviceRange,
  manageable,
  type OrgContext,
  orgDeviceActions,
  personalDeviceActions,
} from '../organisations/permissions.js';
import { type BindingService, boundByUser, type DeviceAccess } from './binding.service.js';

/** A device as a person sees it in a list. */
export interface DeviceCard {
  sn: string;
  model_id: string;
  model_name: string;
  remark_name: string | null;
  default_name: string;
  online: boolean;
  last_seen_at: string | null;
  firmware_version: string | null;
  owner: { type: 'org' | 'user'; id: string; name: string };
  bound_at: string | null;
  bound_by: { user_id: string; display_name: string } | null;
  /** What the caller may do: the console shows exactly these buttons. */
  my_actions: DeviceAction[];
}

export interface DeviceListQuery {
  search?: string;
  modelId?: string;
  online?: boolean;
  departmentId?: string;
  boundByMe?: boolean;
  /** Organisation lists: the exact firmware version the device reports. */
  firmwareVersion?: string;
  /** Organisation lists: bound by this user (id). */
  boundBy?: string;
  cursor?: string;
  limit?: number;
}

type DeviceQuery = SelectQueryBuilder<Database, 'devices', DeviceRow>;

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

/**
 * Device lists as people see them (issue 4 item 5): mine, an organisation's with filters, search by
 * SN / IMEI / remark name and pagination, and the card of one device; each card says what the
 * caller may do with it (organisations/permissions.ts).
 */
export class DeviceListsService {
  constructor(
    private readonly deps: Pick<Deps, 'db'>,
    private readonly binding: BindingService,
    private readonly orgs: OrganisationsService,
  ) {}

  private get db(): Kysely<Database> {
    return this.deps.db.kysely;
  }

  /**
   * My devices: those in my personal space, those shared with me, the organisation devices I bound
   * while I am still a member there (a removed member sees none of them at once), and the
   * organisation devices whose range I am inside ("visible to", issue 12: shown read-only).
   */
  async listMine(actor: Principal, q: DeviceListQuery = {}): Promise<{ devices: DeviceCard[]; next_cursor: string | null }> {
    if (actor.kind !== 'user') fail('FORBIDDEN', 'Only a signed-in person has devices of their own');
    const me = actor.userId;
    const { limit, afterId } = page(q);
    const inRange = await this.rangeDepartmentsOf(me);
    const s = this.db
      .selectFrom('devices')
      .selectAll('devices')
      .where((eb) =>
        eb.or([
          eb.and([eb('owner_type', '=', 'user'), eb('owner_id', '=', me)]),
          eb('id', 'in', eb.selectFrom('device_users').select('device_id').where('user_id', '=', me)),
          eb.and([
            eb('owner_type', '=', 'org'),
            eb('bound_by', '=', `user:${me}`),
            eb('owner_id', 'in', eb.selectFrom('org_members').select('org_id').where('user_id', '=', me)),
          ]),
          eb.and([
            eb('owner_type', '=', 'org'),
            eb('owner_id', 'in', eb.selectFrom('org_members').select('org_id').where('user_id', '=', me)),
            eb(
              'id',
              'in',
              eb
                .selectFrom('device_visibility')
                .select('device_id')
                .where((v) =>
                  inRange.length ? v.or([v('user_id', '=', me), v('department_id', 'in', inRange)]) : v('user_id', '=', me),
                ),
            ),
          ]),
        ]),
      );
    const { rows, pageRows } = await this.fetchPage(s, q, afterId, limit);
    // Permissions per owner, not per device: personal ones follow from the row, organisation ones
    // need one context per organisation and one batch of ranges.
    const actions = new Map<number, DeviceAction[]>();
    const byOrg = new Map<string, DeviceRow[]>();
    for (const d of pageRows) {
      if (d.owner_type === 'org' && d.owner_id) byOrg.set(d.owner_id, [...(byOrg.get(d.owner_id) ?? []), d]);
      else {
        const co = d.owner_id === me ? new Set<string>() : new Set([me]);
        actions.set(d.id, [
          ...personalDeviceActions({ userId: me, isOperator: actor.isOperator }, { ownerId: d.owner_id ?? '', coUsers: co }),
        ]);
      }
    }
    for (const [orgId, ds] of byOrg) {
      const ctx = await this.orgs.context(actor, orgId);
      await this.orgActions(ctx, ds, actions);
    }
    for (const [id, a] of actions) actions.set(id, a.sort(byActionOrder));
    return { devices: await this.cards(pageRows, actions), next_cursor: nextCursor(rows, limit) };
  }

  /** The departments whose ranges hold me: each of my departments and its ancestors, in every organisation. */
  private async rangeDepartmentsOf(userId: string): Promise<string[]> {
    const mine = await this.db
      .selectFrom('org_members')
      .select(['org_id', 'department_id'])
      .where('user_id', '=', userId)
      .execute();
    if (mine.length === 0) return [];
    const depts = await this.db
      .selectFrom('departments')
      .select(['id', 'parent_id'])
      .where(
        'org_id',
        'in',
        mine.map((m) => m.org_id),
      )
      .execute();
    const parent = new Map(depts.map((d) => [d.id, d.parent_id]));
    const out = new Set<string>();
    for (const m of mine)
      for (let cur: string | null = m.department_id; cur && !out.has(cur); cur = parent.get(cur) ?? null) out.add(cur);
    return [...out];
  }

  /** Fills `out` with what the context's actor may do with each of the organisation's devices. */
  private async orgActions(ctx: OrgContext, ds: DeviceRow[], out: Map<number, DeviceAction[]>): Promise<void> {
    const ids = ds.map((d) => d.id);
    const ranges = await this.ranges(ids, ctx.orgId);
    const apps = ids.length
      ? await this.db.selectFrom('device_apps').select(['device_id', 'app_id']).where('device_id', 'in', ids).execute()
      : [];
    const appOf = new Map(apps.map((a) => [a.device_id, a.app_id]));
    for (const d of ds) {
      const a = orgDeviceActions(ctx, {
        boundByUserId: boundByUser(d.bound_by),
        range: ranges.get(d.id) ?? { departments: [], users: [] },
        appId: appOf.get(d.id) ?? null,
      });
      out.set(d.id, [...a].sort(byActionOrder));
    }
  }

  /**
   * An organisation's devices: super admins see all, device admins those inside their scope (and
   * those they bound), members only those they bound.
   */
  async listOrg(
    actor: Principal,
    orgId: string,
    q: DeviceListQuery = {},
  ): Promise<{ devices: DeviceCard[]; next_cursor: string | null }> {
    const { ctx, query } = await this.orgDevices(actor, orgId, q);
    const { limit, afterId } = page(q);
    const { rows, pageRows } = await this.fetchPage(query, q, afterId, limit);
    const actions = new Map<number, DeviceAction[]>();
    await this.orgActions(ctx, pageRows, actions);
    return { devices: await this.cards(pageRows, actions), next_cursor: nextCursor(rows, limit) };
  }

  /**
   * The devices of an organisation its list shows the actor (listOrg's rule), of one model when
   * asked, as sn → model: what a device admin's campaign may reach. Two columns in one query, with
   * none of a card's lookups.
   */
  async modelsInRange(actor: Principal, orgId: string, modelId?: string): Promise<Map<string, string>> {
    const q: DeviceListQuery = modelId ? { modelId } : {};
    const { query } = await this.orgDevices(actor, orgId, q);
    const rows = await this.filters(query, q).clearSelect().select(['sn', 'model_id']).execute();
    return new Map(rows.map((r) => [r.sn, r.model_id]));
  }

  /** The query of an organisation's devices the actor may list, with the list's own filters but no page. */
  private async orgDevices(actor: Principal, orgId: string, q: DeviceListQuery) {
    const ctx = await this.orgs.context(actor, orgId);
    this.orgs.requireMember(ctx);
    const mine = ctx.userId ? `user:${ctx.userId}` : null;
    const reach = manageable(ctx);
    let s = this.db.selectFrom('devices').selectAll('devices').where('owner_type', '=', 'org').where('owner_id', '=', orgId);
    if (reach !== 'all') {
      const scope = [...reach];
      s = s.where((eb) => {
        const own = eb('bound_by', '=', mine ?? '');
        if (scope.length === 0) return own;
        return eb.or([
          own,
          eb.and([
            eb.exists(eb.selectFrom('device_visibility as v').select('v.id').whereRef('v.device_id', '=', 'devices.id')),
            eb.not(
              eb.exists(
                eb
                  .selectFrom('device_visibility as v2')
                  .leftJoin('org_members as m', (j) => j.onRef('m.user_id', '=', 'v2.user_id').on('m.org_id', '=', orgId))
                  .select('v2.id')
                  .whereRef('v2.device_id', '=', 'devices.id')
                  .where((w) => {
                    const dept = w.fn.coalesce('v2.department_id', 'm.department_id');
                    return w.or([w(dept, 'is', null), w(dept, 'not in', scope)]);
                  }),
              ),
            ),
          ]),
        ]);
      });
    }
    if (q.boundByMe) s = s.where('bound_by', '=', mine ?? '');
    if (q.boundBy) s = s.where('bound_by', '=', `user:${q.boundBy}`);
    if (q.firmwareVersion) s = s.where('firmware_version', '=', q.firmwareVersion);
    if (q.departmentId) {
      if (!ctx.tree.has(q.departmentId)) fail('DEPARTMENT_NOT_FOUND');
      const sub = [...ctx.tree.closure([q.departmentId])];
      s = s.where((eb) =>
        eb.exists(
          eb
            .selectFrom('device_visibility as v3')
            .leftJoin('org_members as m3', (j) => j.onRef('m3.user_id', '=', 'v3.user_id').on('m3.org_id', '=', orgId))
            .select('v3.id')
            .whereRef('v3.device_id', '=', 'devices.id')
            .where((w) => w(w.fn.coalesce('v3.department_id', 'm3.department_id'), 'in', sub)),
        ),
      );
    }
    return { ctx, query: s };
  }

  /** One page in id order: the filters, the cursor, and one row more than asked to tell if another page follows. */
  private async fetchPage(s: DeviceQuery, q: DeviceListQuery, afterId: number | undefined, limit: number) {
    let p = this.filters(s, q);
    if (afterId !== undefined) p = p.where('id', '>', afterId);
    const rows = await p
      .orderBy('id')
      .limit(limit + 1)
      .execute();
    return { rows, pageRows: rows.slice(0, limit) };
  }

  private filters(s: DeviceQuery, q: DeviceListQuery): DeviceQuery {
    if (q.modelId) s = s.where('model_id', '=', q.modelId);
    if (q.online !== undefined) s = s.where('online', '=', q.online ? 1 : 0);
    const t = q.search
      ?.trim()
      .toLowerCase()
      .replace(/[%_\\]/g, '');
    if (t) {
      s = s.where((eb) =>
        eb.or([
          eb('sn_key', 'like', `${t}%`),
          eb('device_key_norm', 'like', `${t}%`),
          eb(eb.fn('lower', ['remark_name']), 'like', `%${t}%`),
        ]),
      );
    }
    return s;
  }

  private async ranges(deviceIds: number[], orgId: string): Promise<Map<number, DeviceRange>> {
    const out = new Map<number, DeviceRange>();
    if (deviceIds.length === 0) return out;
    const rows = await this.db
      .selectFrom('device_visibility as v')
      .leftJoin('org_members as m', (j) => j.onRef('m.user_id', '=', 'v.user_id').on('m.org_id', '=', orgId))
      .select(['v.device_id', 'v.department_id', 'v.user_id', 'm.department_id as user_department'])
      .where('v.device_id', 'in', deviceIds)
      .orderBy('v.id')
      .execute();
    for (const r of rows) {
      const cur = out.get(r.device_id) ?? { departments: [], users: [] };
      if (r.department_id) cur.departments.push(r.department_id);
      if (r.user_id) cur.users.push({ userId: r.user_id, departmentId: r.user_department });
      out.set(r.device_id, cur);
    }
    return out;
  }

  private async cards(rows: DeviceRow[], actions: Map<number, DeviceAction[]>): Promise<DeviceCard[]> {
    if (rows.length === 0) return [];
    const modelIds = [...new Set(rows.map((r) => r.model_id))];
    const models = await this.db.selectFrom('models').select(['model_id', 'name']).where('model_id', 'in', modelIds).execute();
    const modelName = new Map(models.map((m) => [m.model_id, m.name]));
    const userIds = new Set<string>();
    const orgIds = new Set<string>();
    for (const r of rows) {
      const b = boundByUser(r.bound_by);
      if (b) userIds.add(b);
      if (r.owner_type === 'user' && r.owner_id) userIds.add(r.owner_id);
      if (r.owner_type === 'org' && r.owner_id) orgIds.add(r.owner_id);
    }
    const users = userIds.size
      ? await this.db
          .selectFrom('users')
          .select(['id', 'display_name'])
          .where('id', 'in', [...userIds])
          .execute()
      : [];
    const userName = new Map(users.map((u) => [u.id, u.display_name]));
    const orgs = orgIds.size
      ? await this.db
          .selectFrom('organisations')
          .select(['id', 'name'])
          .where('id', 'in', [...orgIds])
          .execute()
      : [];
    const orgName = new Map(orgs.map((o) => [o.id, o.name]));
    return rows.map((d) => {
      const mName = modelName.get(d.model_id) ?? d.model_id;
      const b = boundByUser(d.bound_by);
      const ownerType = (d.owner_type ?? 'user') as 'org' | 'user';
      return {
        sn: d.sn,
        model_id: d.model_id,
        model_name: mName,
        remark_name: d.remark_name,
        default_name: d.device_name ?? `${mName} ${d.sn}`,
        online: d.online === 1,
        last_seen_at: iso(d.last_seen_at),
        firmware_version: d.firmware_version,
        owner: {
          type: ownerType,
          id: d.owner_id ?? '',
          name: ownerType === 'org' ? (orgName.get(d.owner_id ?? '') ?? '') : (userName.get(d.owner_id ?? '') ?? ''),
        },
        bound_at: iso(d.bound_at),
        bound_by: b ? { user_id: b, display_name: userName.get(b) ?? b } : null,
        my_actions: actions.get(d.id) ?? [],
      };
    });
  }

  /** One device as a card, for someone who may see it. */
  async card(actor: Principal, sn: string): Promise<DeviceCard> {
    const { device: d, access } = await this.binding.requireAction(actor, sn, 'view');
    return this.cardOf(d, access);
  }

  /** The card of a device whose access was checked already: its actions are what `access` allows. */
  async cardOf(d: DeviceRow, access: DeviceAccess): Promise<DeviceCard> {
    return (await this.cards([d], new Map([[d.id, [...access.actions].sort(byActionOrder)]])))[0]!;
  }
}

function page(q: DeviceListQuery): { limit: number; afterId: number | undefined } {
  const limit = Math.min(Math.max(Math.floor(q.limit ?? 50), 1), 200);
  if (!q.cursor) return { limit, afterId: undefined };
  const afterId = Number(Buffer.from(q.cursor, 'base64url').toString());
  if (!Number.isSafeInteger(afterId)) fail('VALIDATION_FAILED', 'cursor is invalid');
  return { limit, afterId };
}

function nextCursor(rows: Array<{ id: number }>, limit: number): string | null {
  return rows.length > limit ? Buffer.from(String(rows[limit - 1]!.id)).toString('base64url') : null;
}

function byActionOrder(a: DeviceAction, b: DeviceAction): number {
  return DEVICE_ACTIONS.indexOf(a) - DEVICE_ACTIONS.indexOf(b);
}
