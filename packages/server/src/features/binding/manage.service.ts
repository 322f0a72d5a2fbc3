import type { Kysely } from 'kysely';
import type { Database } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { audit, deviceOrg, principalLabel } from '../../shared/audit.js';
import type { DomainEvents } from '../../shared/domain-events.js';
import { newId } from '../../shared/ids.js';
import type { Principal } from '../../shared/principal.js';
import { deviceState } from '../devices/device-state.js';
import type { DeviceRow } from '../devices/devices.repo.js';
import type { OrganisationsService } from '../organisations/organisations.service.js';
import type { BindingService, NetContext } from './binding.service.js';
import type { DeviceCard, DeviceListQuery, DeviceListsService } from './device-lists.service.js';
import type { ScanResolution, ScanResolutionService } from './scan-resolution.service.js';

export type { DeviceCard, DeviceListQuery } from './device-lists.service.js';
export type { ScanResolution } from './scan-resolution.service.js';

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

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
const RECENT = 20;

/**
 * Managing bound devices (issue 4 item 5): the device page, rename, firmware upgrade, reboot, log
 * fetching. The lists are device-lists.service.ts, scans and login-QR confirmations
 * scan-resolution.service.ts; this service answers for all three. Every call checks the caller
 * against organisations/permissions.ts through BindingService.access.
 */
export class DeviceManagementService {
  constructor(
    private readonly deps: Pick<Deps, 'db' | 'clock' | 'secrets'>,
    private readonly binding: BindingService,
    private readonly orgs: OrganisationsService,
    private readonly events: DomainEvents,
    private readonly pusher: DevicePusher,
    private readonly logs: LogFiles,
    /** Device lists and cards (device-lists.service.ts). */
    private readonly lists: DeviceListsService,
    /** Scanned codes and login-QR confirmations (scan-resolution.service.ts). */
    private readonly scans: ScanResolutionService,
  ) {}

  private get db(): Kysely<Database> {
    return this.deps.db.kysely;
  }

  // ── lists (device-lists.service.ts) ─────────────────────────────────────────

  listMine(actor: Principal, q: DeviceListQuery = {}): Promise<{ devices: DeviceCard[]; next_cursor: string | null }> {
    return this.lists.listMine(actor, q);
  }

  listOrg(
    actor: Principal,
    orgId: string,
    q: DeviceListQuery = {},
  ): Promise<{ devices: DeviceCard[]; next_cursor: string | null }> {
    return this.lists.listOrg(actor, orgId, q);
  }

  modelsInRange(actor: Principal, orgId: string, modelId?: string): Promise<Map<string, string>> {
    return this.lists.modelsInRange(actor, orgId, modelId);
  }

  card(actor: Principal, sn: string): Promise<DeviceCard> {
    return this.lists.card(actor, sn);
  }

  // ── the device page ───────────────────────────────────────────────────────

  /** Everything the device page shows, for someone who may manage the device. */
  async overview(actor: Principal, sn: string) {
    const { device: d, access } = await this.binding.requireAction(actor, sn, 'view');
    const card = await this.lists.cardOf(d, access);
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
    return {
      device: {
        ...card,
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
      my_actions: card.my_actions,
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
    return this.lists.cardOf(fresh, access);
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

  // ── scans (scan-resolution.service.ts) ──────────────────────────────────────

  resolveScan(actor: Principal, content: string, net: NetContext = {}): Promise<ScanResolution> {
    return this.scans.resolveScan(actor, content, net);
  }

  describe(actor: Principal, r: Parameters<ScanResolutionService['describe']>[1]): Promise<ScanResolution> {
    return this.scans.describe(actor, r);
  }

  confirmLoginScan(actor: Principal, content: string, net: NetContext = {}) {
    return this.scans.confirmLoginScan(actor, content, net);
  }
}
