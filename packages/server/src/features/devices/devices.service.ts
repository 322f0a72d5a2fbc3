import { APP_SCENES, isValidSn, type LabelFormat, labelContent, OPERATING_SYSTEMS, snKey } from '@bindery/protocol';
import { activeCodeColumns } from '../../adapters/secrets/active-code.js';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { audit } from '../../shared/audit.js';
import type { DomainEvents } from '../../shared/domain-events.js';
import { newActiveCode, newHwCode, newSecretNo } from '../../shared/ids.js';
import { type Principal, requireVendor, type VendorCapability } from '../../shared/principal.js';
import type { ModelsService } from '../models/models.service.js';
import { type DeviceState, deviceState } from './device-state.js';
import { type DeviceRow, KyselyDevicesRepo, type NewDevice, type OwnerKind } from './devices.repo.js';

export interface DeviceAttributes {
  camera_sn?: string | null;
  app_scene_code?: string | null;
  operating_system?: string | null;
}

export interface DeviceView {
  sn: string;
  model_id: string;
  vendor_id: string;
  batch_id: string | null;
  hw_code: string;
  qr_code: string;
  label_content: string;
  /** registered → activated → bound → online (device-state.ts). */
  state: DeviceState;
  registered_at: string;
  camera_sn: string | null;
  app_scene_code: string | null;
  operating_system: string | null;
  device_key: string | null;
  device_name: string | null;
  cert_fingerprint: string | null;
  paired_at: string | null;
  activated_at: string | null;
  online: boolean;
  last_seen_at: string | null;
  firmware_version: string | null;
  bound: boolean;
  owner_type: string | null;
  remark_name: string | null;
}

/** Problems with the optional seed-002 attributes, as sentences. */
export function validateAttributes(a: DeviceAttributes): string[] {
  const p: string[] = [];
  if (a.camera_sn != null && (typeof a.camera_sn !== 'string' || a.camera_sn.length > 64)) {
    p.push('camera_sn must be at most 64 characters');
  }
  if (a.app_scene_code != null && !(String(a.app_scene_code) in APP_SCENES)) {
    p.push(`app_scene_code must be one of ${Object.keys(APP_SCENES).join(', ')}`);
  }
  if (
    a.operating_system != null &&
    !(OPERATING_SYSTEMS as readonly string[]).includes(String(a.operating_system).toUpperCase())
  ) {
    p.push(`operating_system must be one of ${OPERATING_SYSTEMS.join(', ')}`);
  }
  return p;
}

/**
 * Registering devices (§B2 SN rules): each gets a SecretNo, sealed at rest, and an unguessable
 * hw_code for its static label. Shared-seed models still give every device its own SecretNo;
 * the seed only serves get_secret_no (§A3).
 */
export class DevicesService {
  readonly repo: KyselyDevicesRepo;
  constructor(
    private readonly deps: Pick<Deps, 'db' | 'clock' | 'secrets' | 'config' | 'metrics'>,
    private readonly models: ModelsService,
    /** Registrations are announced as device.registered (vendor webhooks); none in bare tools. */
    readonly events: DomainEvents | null = null,
  ) {
    this.repo = new KyselyDevicesRepo(deps.db.kysely, deps.db.caps);
  }

  /** A new device row (not yet stored), with its fresh SecretNo and hw_code. */
  newDeviceRow(
    model: { model_id: string; vendor_id: string },
    sn: string,
    now: number,
    attrs: DeviceAttributes = {},
    batchId: string | null = null,
  ): NewDevice {
    return {
      sn,
      sn_key: snKey(sn),
      model_id: model.model_id,
      vendor_id: model.vendor_id,
      batch_id: batchId,
      secret_no_enc: this.deps.secrets.seal(newSecretNo()),
      hw_code: newHwCode(),
      state: 'registered',
      registered_at: now,
      camera_sn: attrs.camera_sn ?? null,
      app_scene_code: attrs.app_scene_code != null ? String(attrs.app_scene_code) : null,
      operating_system: attrs.operating_system != null ? String(attrs.operating_system).toUpperCase() : null,
      device_key: null,
      device_key_norm: null,
      device_name: null,
      cert_fingerprint: null,
      paired_at: null,
      // Stored as its hash plus a sealed copy, never in clear (finding 10).
      ...activeCodeColumns(this.deps.secrets, newActiveCode()),
      registered_net_at: null,
      activated_at: null,
      secret_enc: null,
      online: 0,
      last_seen_at: null,
      firmware_version: null,
      remote_addr: null,
      node_id: null,
      owner_type: null,
      owner_id: null,
      bound_at: null,
      bound_by: null,
      remark_name: null,
    };
  }

  async register(
    actor: Principal,
    modelId: string,
    sn: unknown,
    attrs: DeviceAttributes = {},
  ): Promise<{ device: DeviceView; secret_no: string }> {
    const model = await this.models.getActiveRow(actor, modelId, 'devices.write');
    if (!isValidSn(sn)) fail('INVALID_SN', undefined, { sn });
    // The model's app scene is the default for devices registered without one.
    const a = attrs.app_scene_code == null && model.app_scene_code ? { ...attrs, app_scene_code: model.app_scene_code } : attrs;
    const problems = validateAttributes(a);
    if (problems.length) fail('VALIDATION_FAILED', problems.join('; '), { problems });
    const now = this.deps.clock.now();
    const row = this.newDeviceRow(model, sn, now, a);
    let stored: DeviceRow;
    try {
      stored = await this.deps.db.kysely.transaction().execute(async (trx) => {
        const r = await this.repo.with(trx).insert(row);
        await audit(trx, now, actor, 'device.register', `device:${r.sn}`, { model_id: modelId });
        return r;
      });
    } catch (e) {
      if (this.deps.db.caps.isUniqueViolation(e)) fail('SN_TAKEN', `SN ${sn} is already registered (SNs ignore case)`);
      throw e;
    }
    this.deps.metrics.counter('bindery_devices_registered_total', 'Devices registered').inc();
    await this.events?.emit({
      type: 'device.registered',
      sn: stored.sn,
      modelId: stored.model_id,
      vendorId: stored.vendor_id,
      at: now,
    });
    return { device: this.view(stored, model), secret_no: this.deps.secrets.open(stored.secret_no_enc) };
  }

  /**
   * device.registered for SNs stored in bulk (label batches), in the background: a batch of
   * 100 000 must not wait on webhook bookkeeping.
   */
  announceRegistered(model: { model_id: string; vendor_id: string }, sns: readonly string[], at: number): void {
    const events = this.events;
    if (!events) return;
    // Tracked: a CLI run awaits events.settled() before it closes the database.
    void events.track(
      (async () => {
        for (const sn of sns) {
          await events.emit({ type: 'device.registered', sn, modelId: model.model_id, vendorId: model.vendor_id, at });
        }
      })(),
    );
  }

  /** §B2 unregister_sn: only devices that are not bound may be deleted. */
  async unregister(actor: Principal, sn: unknown): Promise<void> {
    const d = await this.getRow(actor, sn, 'devices.write');
    if (d.owner_id !== null) fail('DEVICE_BOUND');
    await this.deps.db.kysely.transaction().execute(async (trx) => {
      await this.repo.with(trx).deleteById(d.id);
      await audit(trx, this.deps.clock.now(), actor, 'device.unregister', `device:${d.sn}`);
    });
  }

  /** The device row, after checking the actor may act for its vendor in `cap` (none: vendor admins only). */
  async getRow(actor: Principal, sn: unknown, cap?: VendorCapability): Promise<DeviceRow> {
    if (!isValidSn(sn)) fail('INVALID_SN', undefined, { sn });
    const d = await this.repo.findBySn(sn);
    if (!d) fail('DEVICE_NOT_FOUND', `No device with SN ${sn}`);
    requireVendor(actor, d.vendor_id, cap);
    if (actor.kind === 'model' && actor.modelId !== d.model_id)
      fail('DEVICE_NOT_FOUND', `No device with SN ${sn} under this model`);
    return d;
  }

  async get(actor: Principal, sn: unknown): Promise<DeviceView> {
    const d = await this.getRow(actor, sn, 'devices');
    return this.view(d, await this.models.getRow(actor, d.model_id, 'devices'));
  }

  async secretNo(actor: Principal, sn: unknown): Promise<string> {
    // The SecretNo is flashed on the line: production's, like the batch secrets file.
    const d = await this.getRow(actor, sn, 'batches');
    await audit(this.deps.db.kysely, this.deps.clock.now(), actor, 'device.reveal_secret_no', `device:${d.sn}`);
    return this.deps.secrets.open(d.secret_no_enc);
  }

  async list(
    actor: Principal,
    q: {
      vendorId: string;
      modelId?: string;
      batchId?: string;
      search?: string;
      state?: DeviceState;
      online?: boolean;
      ownerKind?: OwnerKind;
      firmwareVersion?: string;
      cursor?: string;
      limit?: number;
    },
  ): Promise<{ devices: DeviceView[]; next_cursor: string | null }> {
    requireVendor(actor, q.vendorId, 'devices');
    const limit = Math.min(Math.max(q.limit ?? 50, 1), 500);
    // The cursor is the last SN key of the previous page (the list is ordered by it).
    const after = q.cursor ? Buffer.from(q.cursor, 'base64url').toString() : undefined;
    if (after !== undefined && (after.length === 0 || after.length > 128)) fail('VALIDATION_FAILED', 'cursor is invalid');
    const { cursor: _c, limit: _l, ...filters } = q;
    // The models (for each row's label) are read beside the page, not after it: on PostgreSQL a
    // round trip less, which under load is most of a page's time (bench/vendor-devices.ts). A
    // vendor has few models; a device's model is always its vendor's.
    const kysely = this.deps.db.kysely;
    const modelCols = ['model_id', 'product_key', 'label_format', 'label_template'] as const;
    const [rows, models] = await Promise.all([
      this.repo.list({ ...filters, after, limit: limit + 1 }),
      q.modelId
        ? kysely.selectFrom('models').select(modelCols).where('model_id', '=', q.modelId).execute()
        : kysely.selectFrom('models').select(modelCols).where('vendor_id', '=', q.vendorId).execute(),
    ]);
    const page = rows.slice(0, limit);
    const byId = new Map(models.map((m) => [m.model_id, m]));
    const missing = [...new Set(page.map((r) => r.model_id))].filter((id) => !byId.has(id));
    if (missing.length) {
      for (const m of await kysely.selectFrom('models').select(modelCols).where('model_id', 'in', missing).execute()) {
        byId.set(m.model_id, m);
      }
    }
    return {
      devices: page.map((r) => this.view(r, byId.get(r.model_id)!)),
      next_cursor: rows.length > limit ? Buffer.from(page[page.length - 1]!.sn_key).toString('base64url') : null,
    };
  }

  /** §B2 get_device_detail for a model token (or any vendor principal). */
  async detail(actor: Principal, sn: unknown) {
    const d = await this.getRow(actor, sn, 'devices');
    const model = await this.models.getRow(actor, d.model_id, 'devices');
    const bound = d.owner_id !== null;
    let corp: { open_corpid: string; corp_name: string } | undefined;
    if (bound && d.owner_type === 'org') {
      const org = await this.deps.db.kysely
        .selectFrom('organisations')
        .select(['id', 'name'])
        .where('id', '=', d.owner_id!)
        .executeTakeFirst();
      if (org) corp = { open_corpid: org.id, corp_name: org.name };
    }
    return {
      model_name: model.name,
      default_name: d.device_name ?? `${model.name} ${d.sn}`,
      qr_code: this.qrCode(d.hw_code),
      bind_status: bound ? 1 : 0,
      ...(corp ? { auth_corp_info: corp } : {}),
      remark_name: d.remark_name ?? '',
    };
  }

  /** The static WeCom bind URL of a device (what register_sn returns as qr_code). */
  qrCode(hwCode: string): string {
    return labelContent(this.deps.config.publicUrl, 'wecom', null, { pk: '', sn: '', hwCode });
  }

  view(d: DeviceRow, model: { product_key: string; label_format: string; label_template: string | null }): DeviceView {
    const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
    return {
      sn: d.sn,
      model_id: d.model_id,
      vendor_id: d.vendor_id,
      batch_id: d.batch_id,
      hw_code: d.hw_code,
      qr_code: this.qrCode(d.hw_code),
      label_content: labelContent(this.deps.config.publicUrl, model.label_format as LabelFormat, model.label_template, {
        pk: model.product_key,
        sn: d.sn,
        hwCode: d.hw_code,
      }),
      state: deviceState(d),
      registered_at: new Date(d.registered_at).toISOString(),
      camera_sn: d.camera_sn,
      app_scene_code: d.app_scene_code,
      operating_system: d.operating_system,
      device_key: d.device_key,
      device_name: d.device_name,
      cert_fingerprint: d.cert_fingerprint,
      paired_at: iso(d.paired_at),
      activated_at: iso(d.activated_at),
      online: d.online === 1,
      last_seen_at: iso(d.last_seen_at),
      firmware_version: d.firmware_version,
      bound: d.owner_id !== null,
      owner_type: d.owner_id !== null ? d.owner_type : null,
      remark_name: d.remark_name,
    };
  }
}
