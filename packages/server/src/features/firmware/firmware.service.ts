import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Selectable } from 'kysely';
import type { FirmwareTable } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { AppError, fail } from '../../errors.js';
import { audit, deviceOrg, principalLabel } from '../../shared/audit.js';
import type { DomainEvents } from '../../shared/domain-events.js';
import { newId } from '../../shared/ids.js';
import type { Principal } from '../../shared/principal.js';
import type { DevicesService } from '../devices/devices.service.js';
import type { DevicePushService, PushResult } from '../gateway/pushes.service.js';
import { sortableId } from '../gateway/sortable-id.js';
import type { ModelsService } from '../models/models.service.js';
import { linkQuery, signLink, verifyLink } from './download.js';

type FirmwareRow = Selectable<FirmwareTable>;

/** Largest firmware file accepted by upload. */
export const FIRMWARE_MAX_BYTES = 512 * 1024 * 1024;
const VERSION_RE = /^[\x21-\x7e]{1,32}$/;
const MD5_RE = /^[0-9a-fA-F]{32}$/;

export interface FirmwareView {
  id: string;
  model_id: string;
  version: string;
  md5sum: string;
  /** Computed for uploads; given (or null) for versions hosted at a URL. */
  sha256: string | null;
  size: number;
  download_url: string;
  source: 'url' | 'upload';
  notes: string | null;
  current: boolean;
  created_by: string;
  created_at: string;
}

/** What `get_firmware_info` answers (§A5.7). */
export interface FirmwareInfo {
  firmware_version: string;
  md5sum: string;
  size: number;
  download_url: string;
}

export interface PublishUrlInput {
  version: string;
  download_url: string;
  md5sum: string;
  sha256?: string;
  size: number;
  notes?: string;
  make_current?: boolean;
}

export interface PublishUploadInput {
  version: string;
  /** When given, the uploaded bytes must hash to it. */
  md5sum?: string;
  notes?: string;
  make_current?: boolean;
}

/**
 * Firmware published for a model (§A10): a version with its MD5 and size, hosted elsewhere
 * (a URL) or uploaded into BINDERY_DATA_DIR/firmware and served at a public, unguessable URL
 * (devices download it with plain HTTP clients, §A5.7). One version per model is current;
 * `get_firmware_info` answers from it and `requestUpgrade` sends push_update_firmware.
 */
export class FirmwareService {
  private readonly dir: string;

  constructor(
    private readonly deps: Pick<Deps, 'db' | 'clock' | 'config' | 'secrets'>,
    private readonly models: ModelsService,
    private readonly devices: DevicesService,
    private readonly pushes: DevicePushService,
    /** Upgrade requests become device.firmware_requested (vendor callbacks). */
    private readonly events: DomainEvents | null = null,
  ) {
    this.dir = path.join(deps.config.dataDir, 'firmware');
  }

  private get db() {
    return this.deps.db.kysely;
  }

  async publishUrl(actor: Principal, modelId: string, input: PublishUrlInput): Promise<FirmwareView> {
    const model = await this.models.getRow(actor, modelId, 'firmware');
    const problems = validateCommon(input);
    if (typeof input.download_url !== 'string' || !/^https?:\/\/\S{1,2040}$/.test(input.download_url)) {
      problems.push('download_url must be an http(s) URL');
    }
    if (typeof input.md5sum !== 'string' || !MD5_RE.test(input.md5sum)) problems.push('md5sum must be 32 hex characters');
    if (input.sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(input.sha256)) problems.push('sha256 must be 64 hex characters');
    if (!Number.isSafeInteger(input.size) || input.size < 1) problems.push('size must be a positive integer (bytes)');
    if (problems.length) fail('VALIDATION_FAILED', problems.join('; '), { problems });
    const row = this.newRow(actor, model, input, {
      md5: input.md5sum.toLowerCase(),
      sha256: input.sha256?.toLowerCase() ?? null,
      size: input.size,
      url: input.download_url,
      file_name: null,
    });
    await this.insert(actor, row, input.make_current !== false);
    return this.view(row);
  }

  /** Streams the body to disk while hashing it; nothing is kept when anything is wrong. */
  async publishUpload(
    actor: Principal,
    modelId: string,
    input: PublishUploadInput,
    body: Readable | Buffer,
  ): Promise<FirmwareView> {
    const model = await this.models.getRow(actor, modelId, 'firmware');
    const problems = validateCommon(input);
    if (input.md5sum !== undefined && !MD5_RE.test(input.md5sum)) problems.push('md5sum must be 32 hex characters');
    if (problems.length) fail('VALIDATION_FAILED', problems.join('; '), { problems });
    if (!Buffer.isBuffer(body) && typeof (body as Readable | undefined)?.pipe !== 'function') {
      fail('UNSUPPORTED_MEDIA_TYPE', 'Send the file as Content-Type: application/octet-stream');
    }
    await mkdir(this.dir, { recursive: true });
    // Sorts by creation; 96 random bits keep the public download URL unguessable.
    const id = sortableId('fw', this.deps.clock.now(), 12);
    const fileName = `${id}.bin`;
    const tmp = path.join(this.dir, `${fileName}.${randomBytes(4).toString('hex')}.part`);
    const md5 = createHash('md5');
    const sha256 = createHash('sha256');
    let size = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        size += chunk.length;
        if (size > FIRMWARE_MAX_BYTES) {
          cb(new AppError('PAYLOAD_TOO_LARGE', `firmware files may be at most ${FIRMWARE_MAX_BYTES} bytes`));
          return;
        }
        md5.update(chunk);
        sha256.update(chunk);
        cb(null, chunk);
      },
    });
    try {
      const source = Buffer.isBuffer(body) ? [body] : body;
      await pipeline(source, meter, createWriteStream(tmp, { flags: 'wx' }));
      const digest = md5.digest('hex');
      if (size === 0) fail('VALIDATION_FAILED', 'the firmware file is empty');
      if (input.md5sum !== undefined && input.md5sum.toLowerCase() !== digest) {
        fail('VALIDATION_FAILED', `md5sum does not match the uploaded bytes (they hash to ${digest})`);
      }
      const row = this.newRow(actor, model, input, {
        md5: digest,
        sha256: sha256.digest('hex'),
        size,
        url: null,
        file_name: fileName,
      });
      await rename(tmp, path.join(this.dir, fileName));
      try {
        await this.insert(actor, row, input.make_current !== false);
      } catch (e) {
        await rm(path.join(this.dir, fileName), { force: true });
        throw e;
      }
      return this.view(row);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async list(actor: Principal, modelId: string): Promise<FirmwareView[]> {
    await this.models.getRow(actor, modelId, 'firmware');
    const rows = await this.db
      .selectFrom('firmware')
      .selectAll()
      .where('model_id', '=', modelId)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .execute();
    return rows.map((r) => this.view(r));
  }

  /**
   * The versions a model's fleet runs (each device's last reported firmware_version), most devices
   * first; `version` null for devices that never reported one.
   */
  async fleetVersions(
    actor: Principal,
    modelId: string,
  ): Promise<Array<{ version: string | null; devices: number; online: number }>> {
    await this.models.getRow(actor, modelId, 'firmware');
    const rows = await this.db
      .selectFrom('devices')
      .select((eb) => [
        'firmware_version',
        eb.fn.countAll<string | number>().as('n'),
        eb.fn.sum<string | number | null>('online').as('on'),
      ])
      .where('model_id', '=', modelId)
      .groupBy('firmware_version')
      .execute();
    return rows
      .map((r) => ({ version: r.firmware_version, devices: Number(r.n), online: Number(r.on ?? 0) }))
      .sort((a, b) => b.devices - a.devices || String(a.version).localeCompare(String(b.version)));
  }

  async makeCurrent(actor: Principal, modelId: string, firmwareId: string): Promise<FirmwareView> {
    await this.models.getRow(actor, modelId, 'firmware');
    const row = await this.db
      .selectFrom('firmware')
      .selectAll()
      .where('id', '=', firmwareId)
      .where('model_id', '=', modelId)
      .executeTakeFirst();
    if (!row) fail('FIRMWARE_NOT_FOUND');
    await this.db.transaction().execute(async (trx) => {
      await trx.updateTable('firmware').set({ is_current: 0 }).where('model_id', '=', modelId).execute();
      await trx.updateTable('firmware').set({ is_current: 1 }).where('id', '=', firmwareId).execute();
      await audit(trx, this.deps.clock.now(), actor, 'firmware.make_current', modelId, { firmware_id: firmwareId });
    });
    return this.view({ ...row, is_current: 1 });
  }

  /**
   * The current firmware of a model, as get_firmware_info answers it; null when none is published.
   * With `forSn`, an uploaded file's download_url is a short-lived link signed for that device.
   */
  async currentInfo(actor: Principal, modelId: string, forSn?: string): Promise<FirmwareInfo | null> {
    await this.models.getRow(actor, modelId, 'firmware');
    const row = await this.db
      .selectFrom('firmware')
      .selectAll()
      .where('model_id', '=', modelId)
      .where('is_current', '=', 1)
      .executeTakeFirst();
    if (!row) return null;
    return this.deviceInfo(row, forSn);
  }

  /**
   * A firmware row as get_firmware_info answers it (the model's current image, or a campaign's): with
   * `forSn`, an uploaded file's download_url is a short-lived link signed for that device.
   */
  deviceInfo(row: Selectable<FirmwareTable>, forSn?: string): FirmwareInfo {
    const v = this.view(row);
    let url = v.download_url;
    if (forSn !== undefined && row.file_name)
      url += `?${linkQuery(signLink(this.linkKey, row.id, forSn, this.deps.clock.now()))}`;
    return { firmware_version: v.version, md5sum: v.md5sum, size: v.size, download_url: url };
  }

  /** Checks a device link's sn/exp/sig (download.ts) on the service's clock. */
  verifyDeviceLink(firmwareId: string, q: { sn?: string; exp?: string; sig?: string }): 'ok' | 'forged' | 'expired' {
    return verifyLink(this.linkKey, firmwareId, q, this.deps.clock.now());
  }

  /** The HMAC key of device download links, derived from the master key. */
  private get linkKey(): Buffer {
    this.linkKeyCache ??= this.deps.secrets.deriveKey('firmware-download-link');
    return this.linkKeyCache;
  }
  private linkKeyCache: Buffer | undefined;

  /** An uploaded file for the public download route; null for unknown ids and URL-hosted firmware. */
  async file(firmwareId: string): Promise<{ path: string; size: number; version: string; md5: string; mtimeMs: number } | null> {
    const row = await this.db
      .selectFrom('firmware')
      .select(['file_name', 'size', 'version', 'md5'])
      .where('id', '=', firmwareId)
      .executeTakeFirst();
    if (!row?.file_name) return null;
    const p = path.join(this.dir, row.file_name);
    let mtimeMs: number;
    try {
      mtimeMs = (await stat(p)).mtimeMs;
    } catch {
      return null;
    }
    return { path: p, size: row.size, version: row.version, md5: row.md5, mtimeMs };
  }

  /**
   * P-PUSH-4: asks the device to upgrade. Durable: an offline device gets push_update_firmware
   * when it next subscribes. Refused when its model has no current firmware.
   */
  async requestUpgrade(actor: Principal, sn: string, opts: { ttlSec?: number } = {}): Promise<PushResult> {
    const d = await this.devices.getRow(actor, sn, 'firmware');
    const current = await this.currentInfo(actor, d.model_id);
    if (!current) fail('FIRMWARE_NOT_FOUND', "The device's model has no current firmware; publish one first");
    const r = await this.pushes.push(d.sn, 'push_update_firmware', undefined, {
      durable: true,
      ttlSec: opts.ttlSec,
      by: principalLabel(actor),
    });
    await audit(
      this.db,
      this.deps.clock.now(),
      actor,
      'device.command.update_firmware',
      `device:${d.sn}`,
      { version: current.firmware_version, command_id: r.command_id, outcome: r.outcome },
      deviceOrg(d),
    );
    await this.events?.emit({
      type: 'device.firmware_requested',
      sn: d.sn,
      modelId: d.model_id,
      vendorId: d.vendor_id,
      operId: r.command_id ?? newId('op'),
      version: current.firmware_version,
      at: this.deps.clock.now(),
    });
    return r;
  }

  private newRow(
    actor: Principal,
    model: { model_id: string; vendor_id: string },
    input: { version: string; notes?: string },
    f: { md5: string; sha256: string | null; size: number; url: string | null; file_name: string | null },
  ): FirmwareRow {
    return {
      id: f.file_name ? f.file_name.replace(/\.bin$/, '') : sortableId('fw', this.deps.clock.now(), 12),
      model_id: model.model_id,
      vendor_id: model.vendor_id,
      version: input.version,
      md5: f.md5,
      sha256: f.sha256,
      size: f.size,
      url: f.url,
      file_name: f.file_name,
      notes: input.notes ?? null,
      is_current: 0,
      created_by: principalLabel(actor),
      created_at: this.deps.clock.now(),
    };
  }

  private async insert(actor: Principal, row: FirmwareRow, makeCurrent: boolean): Promise<void> {
    try {
      await this.db.transaction().execute(async (trx) => {
        if (makeCurrent) {
          await trx.updateTable('firmware').set({ is_current: 0 }).where('model_id', '=', row.model_id).execute();
          row.is_current = 1;
        }
        await trx.insertInto('firmware').values(row).execute();
        await audit(trx, row.created_at, actor, 'firmware.publish', row.model_id, {
          firmware_id: row.id,
          version: row.version,
          current: makeCurrent,
        });
      });
    } catch (e) {
      row.is_current = 0;
      if (this.deps.db.caps.isUniqueViolation(e)) fail('FIRMWARE_VERSION_EXISTS', `Version ${row.version} is already published`);
      throw e;
    }
  }

  private view(r: FirmwareRow): FirmwareView {
    return {
      id: r.id,
      model_id: r.model_id,
      version: r.version,
      md5sum: r.md5,
      sha256: r.sha256,
      size: r.size,
      download_url: r.url ?? `${this.deps.config.publicUrl}/api/v1/firmware/${r.id}/file`,
      source: r.url ? 'url' : 'upload',
      notes: r.notes,
      current: r.is_current === 1,
      created_by: r.created_by,
      created_at: new Date(r.created_at).toISOString(),
    };
  }
}

function validateCommon(input: { version?: unknown; notes?: unknown }): string[] {
  const p: string[] = [];
  if (typeof input.version !== 'string' || !VERSION_RE.test(input.version)) {
    p.push('version must be 1–32 printable ASCII characters without spaces');
  }
  if (input.notes !== undefined && (typeof input.notes !== 'string' || input.notes.length > 2000)) {
    p.push('notes must be at most 2000 characters');
  }
  return p;
}
