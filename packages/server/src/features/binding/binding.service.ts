import { isValidSn } from '@bindery/protocol';
import type { Kysely, Selectable, Transaction } from 'kysely';
import type { Database, ModelsTable } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { audit, principalLabel } from '../../shared/audit.js';
import type { BindMethod, DomainEvents, OwnerType } from '../../shared/domain-events.js';
import { newToken, sha256Hex } from '../../shared/ids.js';
import { isOperator, type Principal, requireOperator } from '../../shared/principal.js';
import type { DeviceRow } from '../devices/devices.repo.js';
import type { DevicesService } from '../devices/devices.service.js';
import type { ModelsService } from '../models/models.service.js';
import type { RangeInput } from '../organisations/organisations.service.js';
import type { DeviceAction, DeviceRange } from '../organisations/permissions.js';
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
import { boundByUser, type DeviceAccess, type DeviceOwnershipService, normaliseRemark } from './ownership.service.js';
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

export { BIND_LOCKOUT, type BindSettingsView } from './bind-proof.js';
export { boundByUser, type DeviceAccess } from './ownership.service.js';

const BIND_KINDS: Record<string, BindMethod> = { static_bind: 'static_qr', dynamic_bind: 'dynamic_qr', quectel: 'quectel' };

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
    private readonly models: ModelsService,
    /** Access, and every ownership change after the bind (ownership.service.ts). */
    private readonly ownership: DeviceOwnershipService,
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

  private async bindResolved(
    actor: Principal,
    d: DeviceRow,
    owner: Owner,
    opts: BindOptions & { method: BindMethod },
    spend?: ResolvedCode['spend'],
  ): Promise<BindOutcome> {
    // Independent reads go together: on PostgreSQL each is a round trip before the push can leave.
    const [{ range, app }, model] = await Promise.all([
      this.ownership.prepare(actor, d, owner, opts),
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
        .set(this.ownership.ownerColumns(owner, now, by, remark))
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
      if (range) await this.ownership.writeRange(trx, d.id, range);
      if (app) await this.ownership.enableApp(trx, d.id, owner.id, app, by, now);
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
    trx: Transaction<Database> | Kysely<Database>,
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
        .set(this.ownership.ownerColumns(owner, now, by, remark))
        .where('id', '=', d.id)
        .where('owner_type', '=', 'user')
        .where('owner_id', '=', currentOwner)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) fail('DEVICE_BOUND');
      await this.ownership.clearOwnership(trx, d.id);
      return 'transferred';
    }
    fail('OWNER_ONLY');
  }

  private async ownerOf(deviceId: number): Promise<string | null> {
    const r = await this.db.selectFrom('devices').select('owner_id').where('id', '=', deviceId).executeTakeFirst();
    return r?.owner_id ?? null;
  }

  // ── after the bind: leaving, unbinding, transfer, range (ownership.service.ts) ──

  removeUser(actor: Principal, sn: string, userId: string): Promise<void> {
    return this.ownership.removeUser(actor, sn, userId);
  }

  unbind(actor: Principal, sn: string): Promise<{ result: 'unbound' | 'left' }> {
    return this.ownership.unbind(actor, sn);
  }

  transfer(actor: Principal, sn: string, to: Owner, opts: BindOptions = {}): Promise<BindOutcome> {
    return this.ownership.transfer(actor, sn, to, opts);
  }

  setRange(actor: Principal, sn: string, visibleTo: RangeInput): Promise<DeviceRange> {
    return this.ownership.setRange(actor, sn, visibleTo);
  }

  deviceOrFail(sn: string): Promise<DeviceRow> {
    return this.ownership.deviceOrFail(sn);
  }

  access(actor: Principal, d: DeviceRow): Promise<DeviceAccess> {
    return this.ownership.access(actor, d);
  }

  requireAction(actor: Principal, sn: string, action: DeviceAction): Promise<{ device: DeviceRow; access: DeviceAccess }> {
    return this.ownership.requireAction(actor, sn, action);
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
