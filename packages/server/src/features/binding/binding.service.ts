import { isValidSn } from '@bindery/protocol';
import type { Kysely, Selectable, Transaction } from 'kysely';
import type { Database, ModelsTable } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { audit, deviceOrg, principalLabel } from '../../shared/audit.js';
import type { BindMethod, DomainEvents, OwnerType } from '../../shared/domain-events.js';
import { newSecretNo, newToken, sha256Hex } from '../../shared/ids.js';
import { isOperator, type Principal, requireOperator } from '../../shared/principal.js';
import type { DeviceRow } from '../devices/devices.repo.js';
import type { DevicesService } from '../devices/devices.service.js';
import type { ModelsService } from '../models/models.service.js';
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
import { Lockout, type LockoutKeys } from '../people/lockout.js';
import {
  BIND_LOCKOUT,
  type BindSettingsInput,
  type BindSettingsView,
  ClaimBudget,
  type PossessionTickets,
  provesPossession,
  readBindSettings,
  writeBindSettings,
} from './bind-proof.js';
import { type ResolvedCode, ScanResolver, VALIDITY_MESSAGES, verifCodeFor } from './scan.js';
import { TypedSnProof } from './typed-sn.js';

export interface Owner {
  type: OwnerType;
  id: string;
}

export interface BindOptions {
  remarkName?: string | null;
  /** Who an organisation's device is visible to; the binder's own reach when absent. */
  visibleTo?: RangeInput;
  /** Add or enable the application the device's model associates (application admins only). */
  enableApp?: boolean;
  /** A verification code typed by the binder (checked when the model requires one, passed to vendors). */
  verifCode?: string | null;
  method?: BindMethod;
}

/** One bind as a person makes it: a typed SN (optionally with the model's product key) or scanned content. */
export interface BindRequest extends BindOptions {
  owner: Owner;
  sn?: string;
  productKey?: string;
  content?: string;
  /** A ticket from POST /api/v1/bluetooth/identity (features/bluetooth). */
  bluetoothTicket?: string;
}

export interface BindOutcome {
  sn: string;
  owner: Owner;
  /** bound: the device had no owner; shared: joined a shared-mode personal device; transferred: taken over. */
  result: 'bound' | 'shared' | 'transferred';
  method: BindMethod;
}

/**
 * Vendor callbacks hook in here (features/callbacks): the synchronous bind callback, which may
 * refuse a bind before it commits, and verify_device for SNs nobody registered.
 */
export interface BindGate {
  /** Throws to refuse the bind; returns what to call when the bind fails after all (or null). */
  beforeBind(input: {
    device: DeviceRow;
    owner: Owner;
    verifCode: string | null;
    method: BindMethod;
  }): Promise<(() => Promise<void>) | null>;
  /** True when a vendor vouched for the SN and it is registered now. */
  verifyUnknownSn(sn: string, modelId?: string): Promise<boolean>;
}

/** The requester's network address, for the per-address lockout. */
export interface NetContext {
  ip?: string | null;
}

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

export { BIND_LOCKOUT, type BindSettingsView } from './bind-proof.js';

const REMARK_MAX = 64;
type Trx = Transaction<Database> | Kysely<Database>;
const BIND_KINDS: Record<string, BindMethod> = { static_bind: 'static_qr', dynamic_bind: 'dynamic_qr', quectel: 'quectel' };

/** `bound_by` holds a principal label; a person's is `user:<id>`. */
export function boundByUser(boundBy: string | null): string | null {
  return boundBy?.startsWith('user:') ? boundBy.slice(5) : null;
}

function normaliseRemark(r: string | null | undefined): string | null {
  if (r === undefined || r === null) return null;
  if (typeof r !== 'string') fail('VALIDATION_FAILED', 'remark_name must be a string');
  const t = r.trim();
  if (t.length > REMARK_MAX) fail('VALIDATION_FAILED', `remark_name must be at most ${REMARK_MAX} characters`);
  return t.length ? t : null;
}

/**
 * The one binding service for every method (seeds 001, 004; §A11; Quectel §B4). A device belongs
 * to at most one owner — an organisation or a personal space — at a time; binding issues the
 * device's secret (returned by `active`), unbinding revokes it. Every change is one transaction
 * with its audit record and emits domain events after commit: the gateway turns them into
 * push_bind_corp / push_unbind_corp, notifications tell the binder and the admins, vendor
 * callbacks (issue 5) pick up the rest.
 *
 * Who may bind where follows organisations/permissions.ts; personal-space binds follow the model's
 * binding mode: owner_only, shared (further users join) or rotating (a new user's bind takes the
 * device over, Quectel mode 3). Wrong SNs and codes are counted per user and per address.
 */
export class BindingService {
  readonly scans: ScanResolver;
  readonly lockout: Lockout;
  /** Successful typed-SN claims per account (bind-proof.ts). */
  readonly claims: ClaimBudget;
  private readonly typedSn: TypedSnProof;

  constructor(
    private readonly deps: Pick<Deps, 'db' | 'clock' | 'secrets' | 'metrics' | 'limiter'>,
    private readonly devices: DevicesService,
    private readonly events: DomainEvents,
    private readonly orgs: OrganisationsService,
    private readonly models: ModelsService,
    /** Bluetooth tickets (features/bluetooth/tickets.ts), redeemed as proof of possession. */
    private readonly bluetoothTickets: PossessionTickets | null = null,
    /** The vendor's bind callback and verify_device (features/callbacks); none in bare tools. */
    private readonly bindGate: BindGate | null = null,
  ) {
    this.scans = new ScanResolver(deps, devices.repo);
    this.lockout = new Lockout(deps.limiter, BIND_LOCKOUT);
    this.claims = new ClaimBudget(deps.limiter);
    this.typedSn = new TypedSnProof(deps, devices.repo, this.lockout, () => this.bindGate);
  }

  private get db() {
    return this.deps.db.kysely;
  }

  // ── binding ───────────────────────────────────────────────────────────────

  /**
   * An operator binds a device named by SN (the operator route, the CLI): no proof of possession,
   * so only operators may, and it is audited apart (`device.bind.operator`). People use bindDevice.
   */
  async bind(actor: Principal, sn: string, owner: Owner, opts: BindOptions = {}): Promise<BindOutcome> {
    requireOperator(actor);
    const d = isValidSn(sn) ? await this.devices.repo.findBySn(sn) : undefined;
    if (!d) fail('DEVICE_NOT_FOUND', `No device with SN ${sn}`);
    return this.bindResolved(actor, d, owner, { ...opts, method: opts.method ?? 'operator' });
  }

  /**
   * A person binds: by typed SN or by scanned content (static label, dynamic QR, Quectel label).
   * Wrong SNs, unknown codes, forged signatures and wrong verification codes count towards the
   * lockout; while locked out even a right answer is refused. A typed SN or Quectel label needs
   * the verification code unless the model is `sn_only`, and its successful claims spend the
   * account's claim budget (bind-proof.ts).
   */
  async bindDevice(actor: Principal, req: BindRequest, net: NetContext = {}): Promise<BindOutcome> {
    const keys = this.lockoutKeys(actor, net);
    await this.lockout.check(keys);
    // Operators may bind anything through their own door anyway; the claim budget is for people.
    const budget = isOperator(actor) ? null : keys.user!;
    let d: DeviceRow;
    let method: BindMethod;
    let spend: ResolvedCode['spend'];
    if (req.content !== undefined && req.content !== null) {
      const r = await this.scans.resolve(req.content);
      await this.requireUsableCode(r, keys);
      method = BIND_KINDS[r.kind] ?? fail('VALIDATION_FAILED', notABindCode(r.kind));
      d = r.device!;
      spend = r.spend;
      // A Quectel label (pk + SN) proves no more than a typed SN does; the static hw_code and the
      // signed dynamic code prove the binder holds the device.
      if (method === 'quectel') {
        if (budget) await this.claims.check(budget);
        await this.typedSn.checkVerifCode(d, req.verifCode, keys);
      }
    } else if (req.bluetoothTicket !== undefined && req.bluetoothTicket !== null && this.bluetoothTickets) {
      ({ device: d, spend } = await this.bluetoothTickets.redeem(actor, req.bluetoothTicket, keys));
      method = 'bluetooth';
    } else if (req.sn !== undefined && req.sn !== null) {
      if (budget) await this.claims.check(budget);
      d = await this.typedSn.device(req.sn, req.productKey, keys);
      method = 'sn';
      await this.typedSn.checkVerifCode(d, req.verifCode, keys);
    } else {
      fail('VALIDATION_FAILED', 'Give the SN, the content of the scanned code, or a Bluetooth ticket');
    }
    const outcome = await this.bindResolved(actor, d, req.owner, { ...req, method }, spend);
    if (budget && !provesPossession(method)) await this.claims.spend(budget);
    return outcome;
  }

  lockoutKeys(actor: Principal, net: NetContext): LockoutKeys {
    return { user: actor.kind === 'user' ? actor.userId : principalLabel(actor), address: net.ip ?? null };
  }

  /** Turns a resolved code into its error, counting guesses (unknown, forged) towards the lockout. */
  async requireUsableCode(r: ResolvedCode, keys: LockoutKeys): Promise<void> {
    switch (r.validity) {
      case 'ok':
        return;
      case 'invalid':
        fail('VALIDATION_FAILED', `${VALIDITY_MESSAGES.invalid}${r.reason ? ` (${r.reason})` : ''}`);
        break;
      case 'unknown':
        await this.lockout.fail(keys);
        fail('QR_UNKNOWN');
        break;
      case 'forged':
        await this.lockout.fail(keys);
        fail('QR_FORGED');
        break;
      case 'expired':
        fail('QR_EXPIRED');
        break;
      case 'used':
        fail('QR_USED');
    }
  }

  /** Checks the target owner and everything the binder picked; returns what the transaction writes. */
  private async prepare(
    actor: Principal,
    d: DeviceRow,
    owner: Owner,
    opts: BindOptions,
  ): Promise<{ range: DeviceRange | null; app: { id: string | null; key: string; name: string } | null }> {
    if (owner.type === 'org') {
      const ctx = await this.orgs.context(actor, owner.id);
      const range = opts.visibleTo ? await this.orgs.resolveRange(ctx, opts.visibleTo) : defaultRange(ctx);
      const decision = decideOrgBind(ctx, range);
      if (!decision.ok) fail(decision.code, decision.message);
      let app: { id: string | null; key: string; name: string } | null = null;
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

  private async bindResolved(
    actor: Principal,
    d: DeviceRow,
    owner: Owner,
    opts: BindOptions & { method: BindMethod },
    spend?: ResolvedCode['spend'],
  ): Promise<BindOutcome> {
    // Independent reads go together: on PostgreSQL each is a round trip before the push can leave.
    const [{ range, app }, model] = await Promise.all([
      this.prepare(actor, d, owner, opts),
      this.db.selectFrom('models').selectAll().where('model_id', '=', d.model_id).executeTakeFirstOrThrow(),
    ]);
    // Taking over or joining someone's device needs its label or screen, never a typed SN; checked
    // here before the vendor hears of it, and again in the transaction against the row it locks.
    if (owner.type === 'user' && d.owner_type === 'user' && d.owner_id !== owner.id && model.binding_mode !== 'owner_only') {
      requirePossession(opts.method);
    }
    const remark = normaliseRemark(opts.remarkName);
    const by = principalLabel(actor);
    const byUserId = actor.kind === 'user' ? actor.userId : null;
    const now = this.deps.clock.now();
    let result = 'bound' as BindOutcome['result'];
    let previous: { ownerId: string; boundBy: string | null } | null = null;

    // The vendor hears of the bind (and may refuse it) before it commits, outside any transaction.
    const undoVendorBind = await this.vendorBindCallback(d, model, owner, opts);
    const committed = this.db.transaction().execute(async (trx) => {
      // An unowned device (the common case) is taken in one statement. The owner_id IS NULL guard
      // makes concurrent binds of one device resolve to one winner; the others read who won.
      const took = await trx
        .updateTable('devices')
        .set(this.ownerColumns(owner, now, by, remark))
        .where('id', '=', d.id)
        .where('owner_id', 'is', null)
        .executeTakeFirst();
      const cur =
        Number(took.numUpdatedRows) === 1
          ? null
          : await trx
              .selectFrom('devices')
              .select(['owner_type', 'owner_id', 'bound_by'])
              .where('id', '=', d.id)
              .executeTakeFirstOrThrow();
      if (cur !== null) {
        // Owned by someone (an owner_id seen NULL now was unbound meanwhile: that race loses too).
        if (cur.owner_id === null || owner.type !== 'user' || cur.owner_type !== 'user') fail('DEVICE_BOUND');
        if (cur.owner_id === owner.id) fail('DEVICE_BOUND', 'This device is already in your personal space');
        if (model.binding_mode !== 'owner_only') requirePossession(opts.method);
        result = await this.personalTakeover(trx, d, model, owner, cur.owner_id, now, by, remark);
        if (result === 'transferred') previous = { ownerId: cur.owner_id, boundBy: cur.bound_by };
      }
      if (range) await this.writeRange(trx, d.id, range);
      if (app) await this.enableApp(trx, d.id, owner.id, app, by, now);
      if (spend) await this.scans.spend(spend, now, trx);
      const data = {
        owner_type: owner.type,
        owner_id: owner.id,
        method: opts.method,
        ...(range ? { visible_to: { departments: range.departments, users: range.users.map((u) => u.userId) } } : {}),
        ...(app ? { app: app.key } : {}),
      };
      const org = owner.type === 'org' ? owner.id : null;
      // Operators bind without proof of possession; their binds are told apart in the audit log.
      if (opts.method === 'operator')
        await audit(trx, now, actor, 'device.bind.operator', `device:${d.sn}`, { ...data, result }, org);
      else if (result === 'bound') await audit(trx, now, actor, 'device.bind', `device:${d.sn}`, data, org);
      else if (result === 'shared') await audit(trx, now, actor, 'device.share', `device:${d.sn}`, data);
      else
        await audit(trx, now, actor, 'device.transfer', `device:${d.sn}`, {
          ...data,
          from: { owner_type: 'user', owner_id: previous!.ownerId },
          reason: 'rotating',
        });
    });
    await committed.catch(async (e: unknown) => {
      await undoVendorBind?.();
      throw e;
    });

    const base = { sn: d.sn, modelId: d.model_id, vendorId: d.vendor_id, by, at: now };
    if (result === 'shared') {
      this.deps.metrics.counter('bindery_device_shares_total', 'Users joining shared personal devices').inc();
      await this.events.emit({ type: 'device.shared', ...base, ownerId: (await this.ownerOf(d.id))!, userId: owner.id });
      return { sn: d.sn, owner, result, method: opts.method };
    }
    const p = previous as { ownerId: string; boundBy: string | null } | null;
    if (p) {
      await this.events.emit({
        type: 'device.unbound',
        ...base,
        ownerType: 'user',
        ownerId: p.ownerId,
        byUserId,
        boundByUserId: boundByUser(p.boundBy),
        transfer: true,
      });
    }
    this.deps.metrics
      .counter('bindery_binds_total', 'Devices bound', ['method'])
      .inc({ method: result === 'transferred' ? 'rotating' : opts.method });
    await this.events.emit({
      type: 'device.bound',
      ...base,
      ownerType: owner.type,
      ownerId: owner.id,
      method: result === 'transferred' ? 'rotating' : opts.method,
      byUserId,
      verifCode: opts.verifCode ?? null,
      remarkName: remark,
      ...(result === 'transferred' ? { transfer: true } : {}),
    });
    return { sn: d.sn, owner, result, method: result === 'transferred' ? 'rotating' : opts.method };
  }

  /** The bind callback, when the device gets a new owner (joining a shared device is no bind). */
  private async vendorBindCallback(
    d: DeviceRow,
    model: Selectable<ModelsTable>,
    owner: Owner,
    opts: BindOptions & { method: BindMethod },
  ): Promise<(() => Promise<void>) | null> {
    if (!this.bindGate) return null;
    const takesOver =
      d.owner_id === null ||
      (owner.type === 'user' && d.owner_type === 'user' && d.owner_id !== owner.id && model.binding_mode === 'rotating');
    if (!takesOver) return null;
    return this.bindGate.beforeBind({ device: d, owner, verifCode: opts.verifCode ?? null, method: opts.method });
  }

  /** A personal device owned by someone else: join it (shared), take it over (rotating) or refuse. */
  private async personalTakeover(
    trx: Trx,
    d: DeviceRow,
    model: Selectable<ModelsTable>,
    owner: Owner,
    currentOwner: string,
    now: number,
    by: string,
    remark: string | null,
  ): Promise<'shared' | 'transferred'> {
    if (model.binding_mode === 'shared') {
      const already = await trx
        .selectFrom('device_users')
        .select('user_id')
        .where('device_id', '=', d.id)
        .where('user_id', '=', owner.id)
        .executeTakeFirst();
      if (already) fail('DEVICE_BOUND', 'You already share this device');
      await trx.insertInto('device_users').values({ device_id: d.id, user_id: owner.id, added_at: now }).execute();
      return 'shared';
    }
    if (model.binding_mode === 'rotating') {
      const r = await trx
        .updateTable('devices')
        .set(this.ownerColumns(owner, now, by, remark))
        .where('id', '=', d.id)
        .where('owner_type', '=', 'user')
        .where('owner_id', '=', currentOwner)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) fail('DEVICE_BOUND');
      await this.clearOwnership(trx, d.id);
      return 'transferred';
    }
    fail('OWNER_ONLY');
  }

  private ownerColumns(owner: Owner, now: number, by: string, remark: string | null) {
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
  private async clearOwnership(trx: Trx, deviceId: number): Promise<void> {
    await trx.deleteFrom('device_visibility').where('device_id', '=', deviceId).execute();
    await trx.deleteFrom('device_apps').where('device_id', '=', deviceId).execute();
    await trx.deleteFrom('device_users').where('device_id', '=', deviceId).execute();
    await trx.deleteFrom('login_codes').where('device_id', '=', deviceId).execute();
  }

  private async writeRange(trx: Trx, deviceId: number, range: DeviceRange): Promise<void> {
    await trx.deleteFrom('device_visibility').where('device_id', '=', deviceId).execute();
    const rows = [
      ...range.departments.map((department_id) => ({ device_id: deviceId, department_id, user_id: null })),
      ...range.users.map((u) => ({ device_id: deviceId, department_id: null, user_id: u.userId })),
    ];
    if (rows.length) await trx.insertInto('device_visibility').values(rows).execute();
  }

  private async enableApp(
    trx: Trx,
    deviceId: number,
    orgId: string,
    app: { id: string | null; key: string; name: string },
    by: string,
    now: number,
  ): Promise<void> {
    const appId = app.id ?? (await this.orgs.insertApplication(trx, orgId, app.key, app.name, now));
    await trx.deleteFrom('device_apps').where('device_id', '=', deviceId).execute();
    await trx.insertInto('device_apps').values({ device_id: deviceId, app_id: appId, enabled_by: by, enabled_at: now }).execute();
  }

  private async ownerOf(deviceId: number): Promise<string | null> {
    const r = await this.db.selectFrom('devices').select('owner_id').where('id', '=', deviceId).executeTakeFirst();
    return r?.owner_id ?? null;
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

  // ── model settings, verification codes, management codes ──────────────────

  async getBindSettings(actor: Principal, modelId: string): Promise<BindSettingsView> {
    await this.models.getRow(actor, modelId, 'read');
    return readBindSettings(this.deps.db, modelId);
  }

  /** The vendor sets a model's binding options: typed-SN proof, associated application (bind-proof.ts). */
  async putBindSettings(actor: Principal, modelId: string, input: BindSettingsInput): Promise<BindSettingsView> {
    await this.models.getRow(actor, modelId, 'models');
    await writeBindSettings(this.deps.db, actor, this.deps.clock.now(), modelId, input);
    return this.getBindSettings(actor, modelId);
  }

  /** The device's verification code, for the vendor to print or flash (audited). */
  async verifCode(actor: Principal, sn: string): Promise<string> {
    const d = await this.devices.getRow(actor, sn, 'batches');
    await audit(this.db, this.deps.clock.now(), actor, 'device.reveal_verif_code', `device:${d.sn}`);
    return verifCodeFor(this.deps.secrets.open(d.secret_no_enc), d.sn);
  }

  /**
   * Issues a static management QR (type=static_login) for a bound device: for the gateway's
   * gen_login_qrcode and the cloud API. It stays valid until the device is unbound or moves.
   */
  async issueLoginCode(actor: Principal, sn: string): Promise<{ login_code: string }> {
    const d = await this.devices.getRow(actor, sn, 'devices.write');
    if (d.owner_id === null) fail('DEVICE_NOT_BOUND');
    const code = newToken(18);
    await this.db
      .insertInto('login_codes')
      .values({ code_hash: sha256Hex(code), device_id: d.id, created_at: this.deps.clock.now() })
      .execute();
    return { login_code: code };
  }
}

export function notABindCode(kind: string): string {
  if (kind === 'dynamic_login' || kind === 'static_login') {
    return 'This is a device management (login) code, not a binding code; open it to manage the device';
  }
  if (kind === 'add_device') return 'This is the add-device link; choose how to add the device';
  if (kind === 'bluetooth_discovery') return 'This is the Bluetooth discovery link; find the device over Bluetooth';
  return VALIDITY_MESSAGES.invalid;
}

function requirePossession(method: BindMethod): void {
  if (!provesPossession(method)) fail('POSSESSION_REQUIRED');
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
