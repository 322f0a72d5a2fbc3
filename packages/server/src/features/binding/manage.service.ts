import { randomUUID } from 'node:crypto';
import type { Kysely, SelectQueryBuilder } from 'kysely';
import type { Database } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { audit, deviceOrg, principalLabel } from '../../shared/audit.js';
import type { DomainEvents } from '../../shared/domain-events.js';
import { newId } from '../../shared/ids.js';
import type { Principal } from '../../shared/principal.js';
import { deviceState } from '../devices/device-state.js';
import type { DeviceRow } from '../devices/devices.repo.js';
import { CommandsRepo } from '../gateway/commands.repo.js';
import { commandView } from '../gateway/pushes.service.js';
import type { OrganisationsService } from '../organisations/organisations.service.js';
import {
  DEVICE_ACTIONS,
  type DeviceAction,
  type DeviceRange,
  decideOrgBind,
  defaultRange,
  manageable,
  type OrgContext,
  orgDeviceActions,
  personalDeviceActions,
  type Role,
} from '../organisations/permissions.js';
import { typedSnNeedsCode } from './bind-proof.js';
import { type BindingService, boundByUser, type NetContext } from './binding.service.js';
import { type CodeValidity, type ResolvedCode, VALIDITY_MESSAGES } from './scan.js';

/** The gateway's push door, as management needs it (features/gateway/pushes.service.ts). */
export interface DevicePusher {
  push(
    sn: string,
    cmd: 'push_update_firmware' | 'push_fetch_log' | 'push_restart_device',
    body?: Record<string, unknown>,
    opts?: { durable?: boolean; by?: string },
  ): Promise<{ outcome: string; command_id?: string }>;
  userScan(
    sn: string,
    scan: { userid: string; op_type: string; oper_id: string; state: string; user_type: number },
  ): Promise<{ outcome: string }>;
}

/** Uploaded log files (features/device-logs), read after this service has checked the caller. */
export interface LogFiles {
  logFile(actor: Principal, sn: string, logId: string): Promise<{ path: string; size: number; name: string }>;
}

/** The device-logs service checks vendors; people are checked here, then it is asked as the console. */
const CONSOLE: Principal = { kind: 'system', name: 'console' };

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

/** Where a scan leads, for the landing page and the console's scan page. */
export interface ScanResolution {
  kind: string;
  validity: CodeValidity | 'bound' | 'forbidden';
  message: string;
  /** bind: show the confirmation page; login: confirm, then push_user_scan; choose_method: the add-device page. */
  action: 'bind' | 'login' | 'choose_method' | 'none';
  device?: {
    sn: string;
    model_id: string;
    model_name: string;
    default_name: string;
    bound: boolean;
    binding_mode: string;
    requires_verif_code: boolean;
    associated_app: { app_key: string; name: string } | null;
  };
  owners?: Array<{
    type: 'org' | 'user';
    id: string;
    name: string;
    role: Role | null;
    may_bind: boolean;
    /** Why not, as an error code and a sentence (e.g. MEMBER_BINDING_OFF). */
    reason?: { code: string; message: string };
    /** For organisations: what the binder may pick as the visibility range ('all' or department ids). */
    pickable?: 'all' | string[];
    /** shared: joins the device's users; rotating: takes it over from its current owner. */
    effect?: 'bind' | 'share' | 'take_over';
  }>;
  device_page?: string;
}

type DeviceQuery = SelectQueryBuilder<Database, 'devices', DeviceRow>;

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
const RECENT = 20;

/**
 * Managing bound devices (issue 4 item 5): lists (mine; an organisation's with filters, search by
 * SN / IMEI / remark name, pagination), the device page, rename, firmware upgrade, reboot, log
 * fetching, login-QR scans (push_user_scan) and scan resolution for the landing page. Every call
 * checks the caller against organisations/permissions.ts through BindingService.access.
 */
export class DeviceManagementService {
  constructor(
    private readonly deps: Pick<Deps, 'db' | 'clock' | 'secrets'>,
    private readonly binding: BindingService,
    private readonly orgs: OrganisationsService,
    private readonly events: DomainEvents,
    private readonly pusher: DevicePusher,
    private readonly logs: LogFiles,
  ) {}

  private get db(): Kysely<Database> {
    return this.deps.db.kysely;
  }

  // ── lists ─────────────────────────────────────────────────────────────────

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
    let s = this.db
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
    s = this.filters(s, q);
    if (afterId !== undefined) s = s.where('id', '>', afterId);
    const rows = await s
      .orderBy('id')
      .limit(limit + 1)
      .execute();
    const pageRows = rows.slice(0, limit);
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
    const ctx = await this.orgs.context(actor, orgId);
    this.orgs.requireMember(ctx);
    const { limit, afterId } = page(q);
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
    s = this.filters(s, q);
    if (afterId !== undefined) s = s.where('id', '>', afterId);
    const rows = await s
      .orderBy('id')
      .limit(limit + 1)
      .execute();
    const pageRows = rows.slice(0, limit);
    const actions = new Map<number, DeviceAction[]>();
    await this.orgActions(ctx, pageRows, actions);
    return { devices: await this.cards(pageRows, actions), next_cursor: nextCursor(rows, limit) };
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
    return (await this.cards([d], new Map([[d.id, [...access.actions].sort(byActionOrder)]])))[0]!;
  }

  // ── the device page ───────────────────────────────────────────────────────

  /** Everything the device page shows, for someone who may manage the device. */
  async overview(actor: Principal, sn: string) {
    const { device: d, access } = await this.binding.requireAction(actor, sn, 'view');
    const [card] = await this.cards([d], new Map([[d.id, [...access.actions].sort(byActionOrder)]]));
    const model = await this.db.selectFrom('models').selectAll().where('model_id', '=', d.model_id).executeTakeFirstOrThrow();
    const fw = await this.db
      .selectFrom('firmware')
      .select(['version', 'notes', 'created_at'])
      .where('model_id', '=', d.model_id)
      .where('is_current', '=', 1)
      .executeTakeFirst();
    let admins: Array<{ user_id: string; display_name: string; role: string }> = [];
    let visibleTo: {
      departments: Array<{ id: string; name: string }>;
      users: Array<{ user_id: string; display_name: string }>;
    } | null = null;
    let application: { id: string; app_key: string; name: string } | null = null;
    let users: Array<{ user_id: string; display_name: string; role: 'owner' | 'user' }> = [];
    if (d.owner_type === 'org' && d.owner_id && access.range) {
      admins = await this.orgs.adminsFor(d.owner_id, access.range);
      const depts = access.range.departments.length
        ? await this.db.selectFrom('departments').select(['id', 'name']).where('id', 'in', access.range.departments).execute()
        : [];
      const uids = access.range.users.map((u) => u.userId);
      const us = uids.length
        ? await this.db.selectFrom('users').select(['id', 'display_name']).where('id', 'in', uids).execute()
        : [];
      visibleTo = { departments: depts, users: us.map((u) => ({ user_id: u.id, display_name: u.display_name })) };
      if (access.appId) {
        application =
          (await this.db
            .selectFrom('applications')
            .select(['id', 'app_key', 'name'])
            .where('id', '=', access.appId)
            .executeTakeFirst()) ?? null;
      }
    } else if (d.owner_type === 'user' && d.owner_id) {
      const co = await this.db
        .selectFrom('device_users as du')
        .innerJoin('users as u', 'u.id', 'du.user_id')
        .select(['u.id', 'u.display_name'])
        .where('du.device_id', '=', d.id)
        .orderBy('du.added_at')
        .execute();
      const owner = await this.db
        .selectFrom('users')
        .select(['id', 'display_name'])
        .where('id', '=', d.owner_id)
        .executeTakeFirst();
      users = [
        ...(owner ? [{ user_id: owner.id, display_name: owner.display_name, role: 'owner' as const }] : []),
        ...co.map((c) => ({ user_id: c.id, display_name: c.display_name, role: 'user' as const })),
      ];
      admins = owner ? [{ user_id: owner.id, display_name: owner.display_name, role: 'owner' }] : [];
    }
    const errors = await this.db
      .selectFrom('device_error_reports')
      .select(['id', 'errcode', 'errmsg', 'reported_at'])
      .where('device_id', '=', d.id)
      .orderBy('id', 'desc')
      .limit(RECENT)
      .execute();
    // Logs are for those who may fetch them (admins); error reports are device info everyone managing it sees.
    const logs = !access.actions.has('fetch_log')
      ? []
      : await this.db
          .selectFrom('device_logs')
          .select(['id', 'size', 'uploaded_at'])
          .where('device_id', '=', d.id)
          .orderBy('uploaded_at', 'desc')
          .orderBy('id', 'desc')
          .limit(RECENT)
          .execute();
    // What was asked of the device and how it went, for those who may ask (admins: reboot, logs, firmware).
    const commands = !access.actions.has('reboot')
      ? []
      : (await new CommandsRepo(this.db).list(d.id, RECENT)).map((c) => {
          const v = commandView(c, this.deps.clock.now());
          return { id: v.id, cmd: v.cmd, status: v.status, created_at: v.created_at, delivered_at: v.delivered_at };
        });
    return {
      device: {
        ...card!,
        state: deviceState(d),
        device_key: d.device_key,
        registered_at: iso(d.registered_at),
        activated_at: iso(d.activated_at),
      },
      model: { model_id: model.model_id, name: model.name, product_key: model.product_key, binding_mode: model.binding_mode },
      firmware: {
        current: d.firmware_version,
        latest: fw ? { version: fw.version, notes: fw.notes, published_at: iso(fw.created_at) } : null,
        upgrade_available: !!fw && fw.version !== d.firmware_version,
      },
      admins,
      visible_to: visibleTo,
      users,
      application,
      error_reports: errors.map((e) => ({ id: e.id, errcode: e.errcode, errmsg: e.errmsg, reported_at: iso(e.reported_at) })),
      logs: logs.map((l) => ({
        id: l.id,
        size: l.size,
        uploaded_at: iso(l.uploaded_at),
        download: `/api/v1/devices/${d.sn}/page/logs/${l.id}`,
      })),
      commands,
      my_actions: card!.my_actions,
      user_type: access.userType,
    };
  }

  /** A log the device uploaded, for those who may fetch logs. */
  async logFile(actor: Principal, sn: string, logId: string): Promise<{ path: string; size: number; name: string }> {
    const { device: d } = await this.binding.requireAction(actor, sn, 'fetch_log');
    return this.logs.logFile(CONSOLE, d.sn, logId);
  }

  // ── actions ───────────────────────────────────────────────────────────────

  async rename(actor: Principal, sn: string, remarkName: string | null): Promise<DeviceCard> {
    const { device: d, access } = await this.binding.requireAction(actor, sn, 'rename');
    const r = remarkName === null ? null : String(remarkName).trim();
    if (r !== null && r.length > 64) fail('VALIDATION_FAILED', 'remark_name must be at most 64 characters');
    const now = this.deps.clock.now();
    await this.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('devices')
        .set({ remark_name: r || null })
        .where('id', '=', d.id)
        .execute();
      await audit(trx, now, actor, 'device.rename', `device:${d.sn}`, { remark_name: r || null }, deviceOrg(d));
    });
    const fresh = await this.binding.deviceOrFail(sn);
    return (await this.cards([fresh], new Map([[fresh.id, [...access.actions].sort(byActionOrder)]])))[0]!;
  }

  /** push_update_firmware (durable), refused when the model has no current firmware. */
  async upgradeFirmware(actor: Principal, sn: string) {
    const { device: d } = await this.binding.requireAction(actor, sn, 'firmware_upgrade');
    const fw = await this.db
      .selectFrom('firmware')
      .select('version')
      .where('model_id', '=', d.model_id)
      .where('is_current', '=', 1)
      .executeTakeFirst();
    if (!fw) fail('NOT_FOUND', "The device's model has no published firmware yet; ask its vendor");
    const r = await this.command(actor, d, 'push_update_firmware', undefined, 'update_firmware', { version: fw.version });
    // Devices behind a vendor cloud hear of it through the update_firmware callback (features/callbacks).
    await this.events.emit({
      type: 'device.firmware_requested',
      sn: d.sn,
      modelId: d.model_id,
      vendorId: d.vendor_id,
      operId: r.command_id ?? newId('op'),
      version: fw.version,
      at: this.deps.clock.now(),
    });
    return r;
  }

  /**
   * Asks for the device's current status. WSS devices report on their own connection; a device
   * behind a vendor cloud gets the fetch_device_status callback and answers with report_device_status.
   */
  async requestStatus(actor: Principal, sn: string): Promise<{ outcome: 'requested' }> {
    // Those who manage it ask the device for news; people who only see it (its range) may not.
    const { device: d } = await this.binding.requireAction(actor, sn, 'rename');
    const now = this.deps.clock.now();
    await audit(this.db, now, actor, 'device.command.fetch_device_status', `device:${d.sn}`, undefined, deviceOrg(d));
    await this.events.emit({ type: 'device.status_requested', sn: d.sn, modelId: d.model_id, vendorId: d.vendor_id, at: now });
    return { outcome: 'requested' };
  }

  async reboot(actor: Principal, sn: string) {
    const { device: d } = await this.binding.requireAction(actor, sn, 'reboot');
    return this.command(actor, d, 'push_restart_device', undefined, 'restart');
  }

  /** push_fetch_log with a hint (§A6): the device answers with upload_log; the file shows on the device page. */
  async fetchLog(actor: Principal, sn: string, hint = '') {
    if (typeof hint !== 'string' || hint.length > 256) fail('VALIDATION_FAILED', 'hint must be at most 256 characters');
    const { device: d } = await this.binding.requireAction(actor, sn, 'fetch_log');
    return this.command(actor, d, 'push_fetch_log', { hint }, 'fetch_log', { hint });
  }

  private async command(
    actor: Principal,
    d: DeviceRow,
    cmd: 'push_update_firmware' | 'push_fetch_log' | 'push_restart_device',
    body: Record<string, unknown> | undefined,
    kind: string,
    extra: Record<string, unknown> = {},
  ): Promise<{ outcome: string; command_id?: string }> {
    const r = await this.pusher.push(d.sn, cmd, body, { durable: true, by: principalLabel(actor) });
    await audit(
      this.db,
      this.deps.clock.now(),
      actor,
      `device.command.${kind}`,
      `device:${d.sn}`,
      { ...extra, command_id: r.command_id, outcome: r.outcome },
      deviceOrg(d),
    );
    return { outcome: r.outcome, ...(r.command_id ? { command_id: r.command_id } : {}) };
  }

  // ── scans ─────────────────────────────────────────────────────────────────

  /**
   * What a scanned code is and where it leads, for the landing page and the console. Unknown and
   * forged codes count towards the bind lockout like wrong SNs.
   */
  async resolveScan(actor: Principal, content: string, net: NetContext = {}): Promise<ScanResolution> {
    // Scans are for people (who then bind or sign in); a vendor key learns nothing from them.
    if (actor.kind !== 'user') fail('FORBIDDEN', 'Only a signed-in person can resolve a scanned code');
    const keys = this.binding.lockoutKeys(actor, net);
    await this.binding.lockout.check(keys);
    const r = await this.binding.scans.resolve(content);
    if (r.validity === 'unknown' || r.validity === 'forged') await this.binding.lockout.fail(keys);
    return this.describe(actor, r);
  }

  /**
   * What a resolved code offers the caller: the device card, and for bind codes the owners they may
   * bind into. Also the `bind_options` of a Bluetooth identity (kind `bluetooth`, which proves
   * possession as a label scan does; features/bluetooth).
   */
  async describe(
    actor: Principal,
    r: Pick<ResolvedCode, 'validity' | 'reason' | 'device' | 'model'> & { kind: ResolvedCode['kind'] | 'bluetooth' },
  ): Promise<ScanResolution> {
    const message =
      r.validity === 'invalid'
        ? `${VALIDITY_MESSAGES.invalid}${r.reason ? ` (${r.reason})` : ''}`
        : VALIDITY_MESSAGES[r.validity];
    const out: ScanResolution = { kind: r.kind, validity: r.validity, message, action: 'none' };
    if (r.kind === 'add_device') return { ...out, action: 'choose_method', message: 'Choose how to add a device.' };
    // The constant Bluetooth QR: the console opens its discovery page (/bluetooth).
    if (r.kind === 'bluetooth_discovery') return { ...out, action: 'choose_method', message: 'Find the device over Bluetooth.' };
    if (!r.device || !r.model) return out;
    const d = r.device;
    const settings = await this.db
      .selectFrom('model_bind_settings')
      .selectAll()
      .where('model_id', '=', d.model_id)
      .executeTakeFirst();
    out.device = {
      sn: d.sn,
      model_id: d.model_id,
      model_name: r.model.name,
      default_name: d.device_name ?? `${r.model.name} ${d.sn}`,
      bound: d.owner_id !== null,
      binding_mode: r.model.binding_mode,
      // Only what proves nothing about holding the device asks for the code (bind-proof.ts).
      requires_verif_code: r.kind === 'quectel' && typedSnNeedsCode(settings),
      associated_app: settings?.app_key ? { app_key: settings.app_key, name: settings.app_name ?? settings.app_key } : null,
    };
    if (r.validity !== 'ok') return out;
    if (r.kind === 'dynamic_login' || r.kind === 'static_login') {
      const acc = await this.binding.access(actor, d);
      if (!acc.actions.has('view')) {
        return {
          ...out,
          validity: 'forbidden',
          message: 'You may not manage this device, so its management code does nothing for you.',
        };
      }
      return {
        ...out,
        action: 'login',
        message: 'Confirm to sign in to the device as yourself.',
        device_page: `/devices/${d.sn}`,
      };
    }
    // A Quectel label is unsigned: like a typed SN it never takes over or joins a device.
    out.owners = await this.ownerOptions(actor, d, r.model.binding_mode, r.kind !== 'quectel');
    out.action = 'bind';
    if (!out.owners.some((o) => o.may_bind)) {
      out.validity = d.owner_id !== null ? 'bound' : 'forbidden';
      out.message =
        d.owner_id !== null
          ? 'This device is already bound. Its current owner must unbind it first.'
          : 'You may not bind this device anywhere.';
      // Someone who may see the bound device (an admin of its organisation, its owner, someone in its
      // range) is sent to its page rather than left at a dead end (issue 12).
      if (d.owner_id !== null && (await this.binding.access(actor, d)).actions.has('view')) {
        out.message = 'This device is already bound; you can open its page.';
        out.device_page = `/devices/${d.sn}`;
      }
    }
    return out;
  }

  /** The personal space and every organisation of the caller, each with whether (and how) it may take the device. */
  private async ownerOptions(
    actor: Principal,
    d: DeviceRow,
    mode: string,
    possession: boolean,
  ): Promise<NonNullable<ScanResolution['owners']>> {
    const out: NonNullable<ScanResolution['owners']> = [];
    if (actor.kind === 'user') {
      const me = actor.userId;
      let o: (typeof out)[number] = { type: 'user', id: me, name: 'Personal space', role: null, may_bind: true, effect: 'bind' };
      if (d.owner_id !== null) {
        if (d.owner_type === 'user' && d.owner_id === me)
          o = { ...o, may_bind: false, reason: reason('DEVICE_BOUND', 'It is already in your personal space') };
        else if (d.owner_type === 'user' && mode !== 'owner_only' && !possession)
          o = { ...o, may_bind: false, reason: reason('POSSESSION_REQUIRED') };
        else if (d.owner_type === 'user' && mode === 'shared') {
          const already = await this.db
            .selectFrom('device_users')
            .select('user_id')
            .where('device_id', '=', d.id)
            .where('user_id', '=', me)
            .executeTakeFirst();
          o = already
            ? { ...o, may_bind: false, reason: reason('DEVICE_BOUND', 'You already share this device') }
            : { ...o, effect: 'share' };
        } else if (d.owner_type === 'user' && mode === 'rotating') o = { ...o, effect: 'take_over' };
        else if (d.owner_type === 'user') o = { ...o, may_bind: false, reason: reason('OWNER_ONLY') };
        else o = { ...o, may_bind: false, reason: reason('DEVICE_BOUND') };
      }
      out.push(o);
    }
    // Operators list every organisation; offer only the ones the caller belongs to.
    const orgs = (await this.orgs.list(actor)).filter((o) => o.role !== null);
    for (const org of orgs) {
      const ctx = await this.orgs.context(actor, org.id);
      const decision = decideOrgBind(ctx, defaultRange(ctx));
      const reach = ctx.role === 'member' ? [...ctx.visibility] : manageable(ctx);
      const base = {
        type: 'org' as const,
        id: org.id,
        name: org.name,
        role: ctx.role,
        pickable: reach === 'all' ? ('all' as const) : [...reach],
      };
      if (d.owner_id !== null) out.push({ ...base, may_bind: false, reason: reason('DEVICE_BOUND') });
      else if (!decision.ok) out.push({ ...base, may_bind: false, reason: reason(decision.code, decision.message) });
      else out.push({ ...base, may_bind: true, effect: 'bind' });
    }
    return out;
  }

  /**
   * A person confirmed a login-QR scan (dynamic_login / static_login): checks they may manage the
   * device and sends push_user_scan with a fresh oper_id, their user id, the QR's state and
   * user_type (1 admin, 0 member). Confirmed by a POST, never on the GET that opens the link, so a
   * page elsewhere cannot sign someone in to a device behind their back.
   */
  async confirmLoginScan(
    actor: Principal,
    content: string,
    net: NetContext = {},
  ): Promise<{ sn: string; oper_id: string; outcome: string; device_page: string }> {
    if (actor.kind !== 'user') fail('FORBIDDEN', 'Only a signed-in person can scan a device management code');
    const keys = this.binding.lockoutKeys(actor, net);
    await this.binding.lockout.check(keys);
    const r = await this.binding.scans.resolve(content);
    if (r.kind !== 'dynamic_login' && r.kind !== 'static_login') {
      fail(
        'VALIDATION_FAILED',
        r.kind === 'unknown' ? VALIDITY_MESSAGES.invalid : 'This is not a device management (login) code',
      );
    }
    await this.binding.requireUsableCode(r, keys);
    const d = r.device!;
    const acc = await this.binding.access(actor, d);
    if (!acc.actions.has('view')) fail('FORBIDDEN', 'You may not manage this device');
    // Cloud-issued dynamic login codes are single use: spent before the device hears of the scan.
    if (r.spend) await this.binding.scans.spend(r.spend, this.deps.clock.now());
    const operId = randomUUID();
    const opType = 'scan_qrcode_login';
    const res = await this.pusher.userScan(d.sn, {
      userid: actor.userId,
      op_type: opType,
      oper_id: operId,
      state: r.state ?? '',
      user_type: acc.userType,
    });
    const now = this.deps.clock.now();
    await audit(
      this.db,
      now,
      actor,
      'device.user_scan',
      `device:${d.sn}`,
      { oper_id: operId, user_type: acc.userType, outcome: res.outcome },
      deviceOrg(d),
    );
    await this.events.emit({
      type: 'device.user_scan',
      sn: d.sn,
      modelId: d.model_id,
      vendorId: d.vendor_id,
      operId,
      userId: actor.userId,
      state: r.state ?? '',
      userType: acc.userType,
      opType,
      at: now,
    });
    return { sn: d.sn, oper_id: operId, outcome: res.outcome, device_page: `/devices/${d.sn}` };
  }
}

function reason(code: string, message?: string): { code: string; message: string } {
  const text: Record<string, string> = {
    DEVICE_BOUND: 'The device is bound; its current owner must unbind it first',
    OWNER_ONLY: 'This device already has an owner and its model allows only one',
    POSSESSION_REQUIRED:
      "It is someone else's device: scan the label on it or the QR code on its screen to take it over or join it",
    MEMBER_BINDING_OFF: 'This organisation does not let members bind devices; ask an admin to bind it',
    OUTSIDE_SCOPE: 'That is outside the departments you may manage',
    FORBIDDEN: 'You may not bind devices here',
  };
  return { code, message: message ?? text[code] ?? code };
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
