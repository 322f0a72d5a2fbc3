import { isValidSn } from '@bindery/protocol';
import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { audit, deviceOrg, principalLabel } from '../../shared/audit.js';
import type { DomainEvents, OwnerType } from '../../shared/domain-events.js';
import { newSecretNo } from '../../shared/ids.js';
import { isOperator, type Principal } from '../../shared/principal.js';
import type { DeviceRow } from '../devices/devices.repo.js';
import type { DevicesService } from '../devices/devices.service.js';
import type { OrganisationsService, RangeInput } from '../organisations/organisations.service.js';
import {
  type DeviceAction,
  type DeviceRange,
  decideEnableApp,
  decideOrgBind,
  defaultRange,
  type OrgContext,
  orgDeviceActions,
  personalDeviceActions,
  userTypeFor,
} from '../organisations/permissions.js';
import type { BindGate, BindOptions, BindOutcome, Owner } from './binding.service.js';

/** What an actor may do with one device, and why. */
export interface DeviceAccess {
  actions: Set<DeviceAction>;
  userType: 0 | 1;
  /** A further user of a shared-mode personal device (their unbind only removes them). */
  coUser: boolean;
  boundByUserId: string | null;
  orgCtx?: OrgContext;
  range?: DeviceRange;
  appId: string | null;
}

export type AppChoice = { id: string | null; key: string; name: string };

const REMARK_MAX = 64;
type Trx = Transaction<Database> | Kysely<Database>;

/** `bound_by` holds a principal label; a person's is `user:<id>`. */
export function boundByUser(boundBy: string | null): string | null {
  return boundBy?.startsWith('user:') ? boundBy.slice(5) : null;
}

/** A remark name as stored: trimmed, at most 64 characters, empty as none. */
export function normaliseRemark(r: string | null | undefined): string | null {
  if (r === undefined || r === null) return null;
  if (typeof r !== 'string') fail('VALIDATION_FAILED', 'remark_name must be a string');
  const t = r.trim();
  if (t.length > REMARK_MAX) fail('VALIDATION_FAILED', `remark_name must be at most ${REMARK_MAX} characters`);
  return t.length ? t : null;
}

/**
 * A bound device's ownership: who may do what with it (access), and every change after the bind —
 * a further user leaving, unbind, transfer to another owner, a new visibility range. It also holds
 * the owner-column writes the bind itself shares (BindingService). Each change is one transaction
 * with its audit record, and emits domain events after commit.
 */
export class DeviceOwnershipService {
  constructor(
    private readonly deps: Pick<Deps, 'db' | 'clock' | 'secrets' | 'metrics'>,
    private readonly devices: DevicesService,
    private readonly events: DomainEvents,
    private readonly orgs: OrganisationsService,
    /** The vendor's bind callback (features/callbacks), heard on transfer too; none in bare tools. */
    private readonly bindGate: BindGate | null = null,
  ) {}

  private get db() {
    return this.deps.db.kysely;
  }

  // ── unbinding and transfer ────────────────────────────────────────────────

  /**
   * Ends one further user's share of a personal device: its owner (or an operator) removes anyone,
   * a user removes only themselves (the same as leaving).
   */
  async removeUser(actor: Principal, sn: string, userId: string): Promise<void> {
    const d = await this.deviceOrFail(sn);
    if (d.owner_type !== 'user' || d.owner_id === null) fail('DEVICE_NOT_BOUND', 'Only a device in a personal space is shared');
    const acc = await this.access(actor, d);
    if (!acc.actions.has('view')) fail('DEVICE_NOT_FOUND', `No device with SN ${sn} that you may manage`);
    const self = actor.kind === 'user' && actor.userId === userId;
    if (!self && acc.coUser) fail('FORBIDDEN', 'Only the owner removes other people from a shared device');
    if (!self && !acc.actions.has('unbind')) fail('FORBIDDEN', forbiddenMessage('unbind'));
    if (userId === d.owner_id) fail('VALIDATION_FAILED', 'The owner leaves by unbinding the device');
    await this.unshare(actor, d, userId);
  }

  private async unshare(actor: Principal, d: DeviceRow, userId: string): Promise<void> {
    const now = this.deps.clock.now();
    const removed = await this.db.transaction().execute(async (trx) => {
      const r = await trx
        .deleteFrom('device_users')
        .where('device_id', '=', d.id)
        .where('user_id', '=', userId)
        .executeTakeFirst();
      if (Number(r.numDeletedRows) === 0) return false;
      await audit(trx, now, actor, 'device.unshare', `device:${d.sn}`, { owner_id: d.owner_id, user_id: userId });
      return true;
    });
    if (!removed) fail('NOT_FOUND', 'That person does not share this device');
    await this.events.emit({
      type: 'device.unshared',
      sn: d.sn,
      modelId: d.model_id,
      vendorId: d.vendor_id,
      ownerId: d.owner_id!,
      userId,
      by: principalLabel(actor),
      at: now,
    });
  }

  /**
   * Unbinds: the secret is revoked and the device goes back to activation (push_unbind_corp).
   * Admins unbind any device they manage, the member who bound one may unbind it; a further user
   * of a shared personal device only leaves it.
   */
  async unbind(actor: Principal, sn: string): Promise<{ result: 'unbound' | 'left' }> {
    const d = await this.deviceOrFail(sn);
    if (d.owner_id === null || d.owner_type === null) fail('DEVICE_NOT_BOUND');
    const acc = await this.access(actor, d);
    if (!acc.actions.has('view')) fail('DEVICE_NOT_FOUND', `No device with SN ${sn} that you may manage`);
    if (!acc.actions.has('unbind')) fail('FORBIDDEN', forbiddenMessage('unbind'));
    const now = this.deps.clock.now();
    const by = principalLabel(actor);
    if (acc.coUser && actor.kind === 'user') {
      await this.unshare(actor, d, actor.userId);
      return { result: 'left' };
    }
    const owner: Owner = { type: d.owner_type as OwnerType, id: d.owner_id };
    await this.db.transaction().execute(async (trx) => {
      const r = await trx
        .updateTable('devices')
        .set({ owner_type: null, owner_id: null, bound_at: null, bound_by: null, remark_name: null, secret_enc: null })
        .where('id', '=', d.id)
        .where('owner_id', '=', owner.id)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) fail('DEVICE_NOT_BOUND', 'The device was unbound or moved meanwhile');
      await this.clearOwnership(trx, d.id);
      await audit(
        trx,
        now,
        actor,
        'device.unbind',
        `device:${d.sn}`,
        { owner_type: owner.type, owner_id: owner.id },
        deviceOrg(d),
      );
    });
    this.deps.metrics.counter('bindery_unbinds_total', 'Devices unbound').inc();
    await this.events.emit({
      type: 'device.unbound',
      sn: d.sn,
      modelId: d.model_id,
      vendorId: d.vendor_id,
      ownerType: owner.type,
      ownerId: owner.id,
      by,
      at: now,
      byUserId: actor.kind === 'user' ? actor.userId : null,
      boundByUserId: boundByUser(d.bound_by),
    });
    return { result: 'unbound' };
  }

  /**
   * Moves a device to another owner: an unbind plus a bind, recorded as one (one transaction, one
   * audit record). Needs the unbind right on the device and the bind right at the destination.
   */
  async transfer(actor: Principal, sn: string, to: Owner, opts: BindOptions = {}): Promise<BindOutcome> {
    const d = await this.deviceOrFail(sn);
    if (d.owner_id === null || d.owner_type === null) fail('DEVICE_NOT_BOUND');
    const acc = await this.access(actor, d);
    if (!acc.actions.has('view')) fail('DEVICE_NOT_FOUND', `No device with SN ${sn} that you may manage`);
    if (!acc.actions.has('unbind') || acc.coUser) fail('FORBIDDEN', 'You may not move this device');
    // Only after authorisation: comparing owners first would tell anyone who owns any SN.
    if (d.owner_type === to.type && d.owner_id === to.id) fail('VALIDATION_FAILED', 'The device already belongs there');
    const { range, app } = await this.prepare(actor, d, to, opts);
    const from: Owner = { type: d.owner_type as OwnerType, id: d.owner_id };
    const remark = normaliseRemark(opts.remarkName === undefined ? d.remark_name : opts.remarkName);
    const by = principalLabel(actor);
    const now = this.deps.clock.now();
    const undoVendorBind = this.bindGate
      ? await this.bindGate.beforeBind({ device: d, owner: to, verifCode: opts.verifCode ?? null, method: 'transfer' })
      : null;
    const committed = this.db.transaction().execute(async (trx) => {
      const r = await trx
        .updateTable('devices')
        .set(this.ownerColumns(to, now, by, remark))
        .where('id', '=', d.id)
        .where('owner_type', '=', from.type)
        .where('owner_id', '=', from.id)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) fail('DEVICE_NOT_BOUND', 'The device was unbound or moved meanwhile');
      await this.clearOwnership(trx, d.id);
      if (range) await this.writeRange(trx, d.id, range);
      if (app) await this.enableApp(trx, d.id, to.id, app, by, now);
      const data = {
        from: { owner_type: from.type, owner_id: from.id },
        owner_type: to.type,
        owner_id: to.id,
        ...(range ? { visible_to: { departments: range.departments, users: range.users.map((u) => u.userId) } } : {}),
      };
      // Each organisation reads its side: the one it left (device.transfer), the one it joined (device.transfer_in).
      const fromOrg = deviceOrg(d);
      const toOrg = to.type === 'org' ? to.id : null;
      await audit(trx, now, actor, 'device.transfer', `device:${d.sn}`, data, fromOrg ?? toOrg);
      if (fromOrg && toOrg && fromOrg !== toOrg)
        await audit(trx, now, actor, 'device.transfer_in', `device:${d.sn}`, data, toOrg);
    });
    await committed.catch(async (e: unknown) => {
      await undoVendorBind?.();
      throw e;
    });
    const byUserId = actor.kind === 'user' ? actor.userId : null;
    const base = { sn: d.sn, modelId: d.model_id, vendorId: d.vendor_id, by, at: now, byUserId, transfer: true };
    this.deps.metrics.counter('bindery_transfers_total', 'Devices moved to another owner').inc();
    await this.events.emit({
      type: 'device.unbound',
      ...base,
      ownerType: from.type,
      ownerId: from.id,
      boundByUserId: boundByUser(d.bound_by),
    });
    await this.events.emit({
      type: 'device.bound',
      ...base,
      ownerType: to.type,
      ownerId: to.id,
      method: 'transfer',
      remarkName: remark,
    });
    return { sn: d.sn, owner: to, result: 'transferred', method: 'transfer' };
  }

  /**
   * Sets who an organisation's device is visible to, e.g. "move to a department" (issue 12). Needs
   * the admin right on the device as it stands (super admin, or a device admin whose scope holds
   * it) and the bind right for the new range (a device admin only inside their scope). One
   * transaction with its audit record (`device.move`).
   */
  async setRange(actor: Principal, sn: string, visibleTo: RangeInput): Promise<DeviceRange> {
    const d = await this.deviceOrFail(sn);
    const acc = await this.access(actor, d);
    if (!acc.actions.has('view')) fail('DEVICE_NOT_FOUND', `No device with SN ${sn} that you may manage`);
    if (!acc.actions.has('reboot')) fail('FORBIDDEN', 'Only an admin who manages this device may move it');
    if (d.owner_type !== 'org' || d.owner_id === null || !acc.orgCtx) {
      fail('VALIDATION_FAILED', 'Only an organisation device has a visibility range');
    }
    const orgId = d.owner_id;
    const range = await this.orgs.resolveRange(acc.orgCtx, visibleTo);
    const decision = decideOrgBind(acc.orgCtx, range);
    if (!decision.ok) fail(decision.code, decision.message);
    const before = acc.range ?? { departments: [], users: [] };
    await this.db.transaction().execute(async (trx) => {
      // Touching the row locks it: an unbind or transfer meanwhile waits for this, or wins first.
      const r = await trx
        .updateTable('devices')
        .set({ owner_id: orgId })
        .where('id', '=', d.id)
        .where('owner_type', '=', 'org')
        .where('owner_id', '=', orgId)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) fail('DEVICE_NOT_BOUND', 'The device was unbound or moved meanwhile');
      await this.writeRange(trx, d.id, range);
      const view = (x: DeviceRange) => ({ departments: x.departments, users: x.users.map((u) => u.userId) });
      await audit(
        trx,
        this.deps.clock.now(),
        actor,
        'device.move',
        `device:${d.sn}`,
        {
          from: view(before),
          visible_to: view(range),
        },
        orgId,
      );
    });
    return range;
  }

  // ── access ────────────────────────────────────────────────────────────────

  async deviceOrFail(sn: string): Promise<DeviceRow> {
    if (!isValidSn(sn)) fail('INVALID_SN', undefined, { sn });
    const d = await this.devices.repo.findBySn(sn);
    if (!d) fail('DEVICE_NOT_FOUND', `No device with SN ${sn}`);
    return d;
  }

  /** What `actor` may do with device `d` (organisations/permissions.ts). */
  async access(actor: Principal, d: DeviceRow): Promise<DeviceAccess> {
    const boundByUserId = boundByUser(d.bound_by);
    const none: DeviceAccess = { actions: new Set(), userType: 0, coUser: false, boundByUserId, appId: null };
    if (d.owner_id === null) return none;
    if (d.owner_type === 'org') {
      const ctx = await this.orgs.context(actor, d.owner_id);
      const range = await this.orgs.deviceRange(d.id, d.owner_id);
      const app = await this.db.selectFrom('device_apps').select('app_id').where('device_id', '=', d.id).executeTakeFirst();
      const actions = orgDeviceActions(ctx, { boundByUserId, range, appId: app?.app_id ?? null });
      return {
        actions,
        userType: userTypeFor(actions),
        coUser: false,
        boundByUserId,
        orgCtx: ctx,
        range,
        appId: app?.app_id ?? null,
      };
    }
    const co = await this.db.selectFrom('device_users').select('user_id').where('device_id', '=', d.id).execute();
    const coUsers = new Set(co.map((c) => c.user_id));
    const userId = actor.kind === 'user' ? actor.userId : null;
    const actions = personalDeviceActions({ userId, isOperator: isOperator(actor) }, { ownerId: d.owner_id, coUsers });
    return {
      actions,
      userType: userTypeFor(actions),
      coUser: userId !== null && coUsers.has(userId) && userId !== d.owner_id,
      boundByUserId,
      appId: null,
    };
  }

  /** Throws unless the actor may do `action`; a device the actor may not even see is "not found". */
  async requireAction(actor: Principal, sn: string, action: DeviceAction): Promise<{ device: DeviceRow; access: DeviceAccess }> {
    const d = await this.deviceOrFail(sn);
    const acc = await this.access(actor, d);
    if (!acc.actions.has('view')) fail('DEVICE_NOT_FOUND', `No device with SN ${sn} that you may manage`);
    if (!acc.actions.has(action)) fail('FORBIDDEN', forbiddenMessage(action));
    return { device: d, access: acc };
  }

  // ── owner writes, shared with the bind ────────────────────────────────────

  /** Checks the target owner and everything the binder picked; returns what the transaction writes. */
  async prepare(
    actor: Principal,
    d: DeviceRow,
    owner: Owner,
    opts: BindOptions,
  ): Promise<{ range: DeviceRange | null; app: AppChoice | null }> {
    if (owner.type === 'org') {
      const ctx = await this.orgs.context(actor, owner.id);
      const range = opts.visibleTo ? await this.orgs.resolveRange(ctx, opts.visibleTo) : defaultRange(ctx);
      const decision = decideOrgBind(ctx, range);
      if (!decision.ok) fail(decision.code, decision.message);
      let app: AppChoice | null = null;
      if (opts.enableApp) {
        const s = await this.db
          .selectFrom('model_bind_settings')
          .selectAll()
          .where('model_id', '=', d.model_id)
          .executeTakeFirst();
        if (!s?.app_key) fail('VALIDATION_FAILED', 'This device model associates no application');
        const existing = await this.db
          .selectFrom('applications')
          .select('id')
          .where('org_id', '=', owner.id)
          .where('app_key', '=', s.app_key)
          .executeTakeFirst();
        const ok = decideEnableApp(ctx, existing?.id ?? null);
        if (!ok.ok) fail(ok.code, ok.message);
        app = { id: existing?.id ?? null, key: s.app_key, name: s.app_name ?? s.app_key };
      }
      return { range, app };
    }
    if (owner.type !== 'user') fail('VALIDATION_FAILED', "owner.type must be 'org' or 'user'");
    if (!isOperator(actor) && !(actor.kind === 'user' && actor.userId === owner.id)) {
      fail('FORBIDDEN', 'You may bind devices only into your own personal space');
    }
    if (opts.visibleTo && ((opts.visibleTo.departments?.length ?? 0) > 0 || (opts.visibleTo.users?.length ?? 0) > 0)) {
      fail('VALIDATION_FAILED', 'A device in a personal space has no visibility range');
    }
    if (opts.enableApp) fail('VALIDATION_FAILED', 'Applications belong to organisations, not personal spaces');
    const u = await this.db.selectFrom('users').select('id').where('id', '=', owner.id).executeTakeFirst();
    if (!u) fail('NOT_FOUND', 'No such user');
    return { range: null, app: null };
  }

  ownerColumns(owner: Owner, now: number, by: string, remark: string | null) {
    return {
      owner_type: owner.type,
      owner_id: owner.id,
      bound_at: now,
      bound_by: by,
      remark_name: remark,
      // A fresh secret per owner: `active` hands it out; the previous owner's secret dies here.
      secret_enc: this.deps.secrets.seal(newSecretNo()),
    };
  }

  /** Everything that belonged to the previous binding: range, app, co-users, management codes. */
  async clearOwnership(trx: Trx, deviceId: number): Promise<void> {
    await trx.deleteFrom('device_visibility').where('device_id', '=', deviceId).execute();
    await trx.deleteFrom('device_apps').where('device_id', '=', deviceId).execute();
    await trx.deleteFrom('device_users').where('device_id', '=', deviceId).execute();
    await trx.deleteFrom('login_codes').where('device_id', '=', deviceId).execute();
  }

  async writeRange(trx: Trx, deviceId: number, range: DeviceRange): Promise<void> {
    await trx.deleteFrom('device_visibility').where('device_id', '=', deviceId).execute();
    const rows = [
      ...range.departments.map((department_id) => ({ device_id: deviceId, department_id, user_id: null })),
      ...range.users.map((u) => ({ device_id: deviceId, department_id: null, user_id: u.userId })),
    ];
    if (rows.length) await trx.insertInto('device_visibility').values(rows).execute();
  }

  async enableApp(trx: Trx, deviceId: number, orgId: string, app: AppChoice, by: string, now: number): Promise<void> {
    const appId = app.id ?? (await this.orgs.insertApplication(trx, orgId, app.key, app.name, now));
    await trx.deleteFrom('device_apps').where('device_id', '=', deviceId).execute();
    await trx.insertInto('device_apps').values({ device_id: deviceId, app_id: appId, enabled_by: by, enabled_at: now }).execute();
  }
}

function forbiddenMessage(action: DeviceAction): string {
  switch (action) {
    case 'reboot':
    case 'fetch_log':
      return 'Only an admin who manages this device may do this';
    case 'manage_app':
      return 'Only an admin of the associated application may manage it';
    case 'unbind':
      return 'Only an admin, or the member who bound it, may unbind this device';
    default:
      return 'You may not do this with this device';
  }
}
