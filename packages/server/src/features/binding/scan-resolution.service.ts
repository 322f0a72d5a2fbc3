import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { audit, deviceOrg } from '../../shared/audit.js';
import type { DomainEvents } from '../../shared/domain-events.js';
import type { Principal } from '../../shared/principal.js';
import type { DeviceRow } from '../devices/devices.repo.js';
import type { OrganisationsService } from '../organisations/organisations.service.js';
import { decideOrgBind, defaultRange, manageable, type Role } from '../organisations/permissions.js';
import { typedSnNeedsCode } from './bind-proof.js';
import type { BindingService, NetContext } from './binding.service.js';
import type { DevicePusher } from './manage.service.js';
import { type CodeValidity, type ResolvedCode, VALIDITY_MESSAGES } from './scan.js';

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

/**
 * Scanned codes for people: what a code is and where it leads (the landing page, the console's
 * scan page, a Bluetooth identity's bind options), and the confirmation of a login-QR scan that
 * sends push_user_scan. Unknown and forged codes count towards the bind lockout like wrong SNs.
 */
export class ScanResolutionService {
  constructor(
    private readonly deps: Pick<Deps, 'db' | 'clock'>,
    private readonly binding: BindingService,
    private readonly orgs: OrganisationsService,
    private readonly events: DomainEvents,
    private readonly pusher: Pick<DevicePusher, 'userScan'>,
  ) {}

  private get db(): Kysely<Database> {
    return this.deps.db.kysely;
  }

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
