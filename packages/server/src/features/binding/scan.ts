import { createHmac } from 'node:crypto';
import {
  type CompiledLabelTemplate,
  compileLabelTemplate,
  hexEquals,
  isFresh,
  isValidSn,
  parseScan,
  type ScanKind,
  SignWindow,
  signBindQr,
  signLoginQr,
  snKey,
  validateLabelTemplate,
} from '@bindery/protocol';
import type { Kysely, Selectable } from 'kysely';
import type { Database, ModelsTable } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { sha256Hex } from '../../shared/ids.js';
import { signCloudQr } from '../cloud-api/cloud-qr.js';
import type { DeviceRow, KyselyDevicesRepo } from '../devices/devices.repo.js';

/** What a scanned code turned out to be. `forged` and `unknown` count as failed attempts (lockout). */
export type CodeValidity = 'ok' | 'expired' | 'forged' | 'unknown' | 'used' | 'invalid';

export interface ResolvedCode {
  kind: ScanKind['kind'];
  validity: CodeValidity;
  /** Why an `invalid` code is not understood. */
  reason?: string;
  device?: DeviceRow;
  model?: Selectable<ModelsTable>;
  /** Dynamic bind codes: the record that refuses their replay until the signing window ends. */
  spend?: { hash: string; snKey: string; expiresAt: number };
  /** Login kinds: the state the device put in its QR, passed back in push_user_scan. */
  state?: string;
}

/** Plain-words explanation of a code's validity, for the landing page and the resolve API. */
export const VALIDITY_MESSAGES: Record<CodeValidity, string> = {
  ok: 'This code is valid.',
  expired:
    "This QR code has expired. Codes on a device's screen are valid for 30 minutes (management codes from the cloud for 5); refresh the code on the device and scan again.",
  forged: 'This QR code is not genuine: its signature does not match the device. Scan the code shown on the device itself.',
  unknown: 'This code does not belong to any device registered here.',
  used: 'This QR code has already been used (codes that bind or sign in work once). Show a fresh code on the device and scan again.',
  invalid: 'This is not a device code Bindery understands.',
};

/**
 * The verification code a model may require when an SN is typed: six digits derived from the
 * device's SecretNo, so the device can show it on its screen (it knows its SecretNo) and the vendor
 * can print it under the label, while nobody else can compute it.
 */
export function verifCodeFor(secretNo: string, sn: string): string {
  const mac = createHmac('sha256', secretNo)
    .update(`bindery-verif-code:${snKey(sn)}`)
    .digest();
  return String(mac.readUInt32BE(0) % 1_000_000).padStart(6, '0');
}

/** A dynamic code's identity for replay refusal: SN, timestamp, nonce and signature together. */
export function spentCodeHash(sn: string, timestamp: string, nonce: string, signature: string): string {
  return sha256Hex(`${snKey(sn)}|${timestamp}|${nonce}|${signature.toLowerCase()}`);
}

/**
 * Classifies anything a person scans (protocol/qr.ts) and checks it against the stored devices:
 * static labels by hw_code, Quectel labels by product key + SN, dynamic codes by their §A4
 * signature with the device's SecretNo and their window (1 800 s for device-made codes, 300 s for
 * cloud-made ones without a nonce), and spent dynamic bind codes.
 */
export class ScanResolver {
  constructor(
    private readonly deps: Pick<Deps, 'db' | 'secrets' | 'clock'>,
    private readonly repo: KyselyDevicesRepo,
  ) {}

  /** Compiled custom-label matchers by model, reused while the model's product key and template stay. */
  private readonly matchers = new Map<string, { key: string; m: CompiledLabelTemplate | null }>();

  async resolve(content: string): Promise<ResolvedCode> {
    const text = String(content ?? '').slice(0, 4096);
    const scan = parseScan(text);
    switch (scan.kind) {
      case 'unknown':
        return (await this.customLabel(text.trim())) ?? { kind: 'unknown', validity: 'invalid', reason: scan.reason };
      case 'add_device':
      case 'bluetooth_discovery':
        return { kind: scan.kind, validity: 'ok' };
      case 'static_bind':
        return this.withDevice('static_bind', await this.repo.findByHwCode(scan.hwCode));
      case 'quectel': {
        const model = await this.deps.db.kysely
          .selectFrom('models')
          .selectAll()
          .where('product_key', '=', scan.pk)
          .executeTakeFirst();
        const d = model ? await this.repo.findBySn(scan.sn) : undefined;
        return this.withDevice('quectel', d && d.model_id === model?.model_id ? d : undefined);
      }
      case 'static_login': {
        const row = await this.deps.db.kysely
          .selectFrom('login_codes')
          .select('device_id')
          .where('code_hash', '=', sha256Hex(scan.loginCode))
          .executeTakeFirst();
        const d = row
          ? await this.deps.db.kysely.selectFrom('devices').selectAll().where('id', '=', row.device_id).executeTakeFirst()
          : undefined;
        const r = await this.withDevice('static_login', d);
        return { ...r, state: scan.state };
      }
      case 'dynamic_bind':
      case 'dynamic_login':
        return this.dynamic(scan);
    }
  }

  /**
   * A custom-format label (docs/labels.md): text no built-in grammar reads, matched against the
   * templates of the models that print one, each with its own product key in place of `{pk}`
   * (save-time rules keep two models from reading the same text). It carries no signature, so it
   * resolves as a Quectel label and binds under exactly the Quectel rule (bind-proof.ts).
   * The list of custom models is read on each such scan (one small query, so a save on any process
   * counts at once); compiled matchers are kept until the model's template or product key changes.
   */
  private async customLabel(text: string): Promise<ResolvedCode | null> {
    if (text.length === 0 || text.length > 1024) return null;
    const rows = await this.deps.db.kysely
      .selectFrom('models')
      .select(['model_id', 'product_key', 'label_template'])
      .where('label_format', '=', 'custom')
      .where('label_template', 'is not', null)
      .orderBy('created_at')
      .orderBy('model_id')
      .execute();
    let matched = false;
    let device: DeviceRow | undefined;
    for (const r of rows) {
      if (r.label_template === null) continue;
      const key = `${r.product_key}\u0000${r.label_template}`;
      let c = this.matchers.get(r.model_id);
      if (!c || c.key !== key) {
        // Templates saved before the read-back rules (no {pk}, or ambiguous) are printed but never read.
        const readable = validateLabelTemplate(r.label_template).length === 0;
        c = { key, m: readable ? compileLabelTemplate(r.label_template, { pk: r.product_key }) : null };
        this.matchers.set(r.model_id, c);
      }
      if (device) continue;
      const m = c.m?.match(text);
      if (!m?.sn || m.pk !== r.product_key || !isValidSn(m.sn)) continue;
      matched = true;
      const d = await this.repo.findBySn(m.sn);
      // The product key must be the device's model's; a printed hw_code must be the device's.
      if (d && d.model_id === r.model_id && (m.hw_code === undefined || m.hw_code === d.hw_code)) device = d;
    }
    if (this.matchers.size > rows.length) {
      const live = new Set(rows.map((r) => r.model_id));
      for (const id of this.matchers.keys()) if (!live.has(id)) this.matchers.delete(id);
    }
    if (!matched) return null;
    return this.withDevice('quectel', device);
  }

  private async withDevice(kind: ScanKind['kind'], d: DeviceRow | undefined): Promise<ResolvedCode> {
    if (!d) return { kind, validity: 'unknown' };
    const model = await this.deps.db.kysely
      .selectFrom('models')
      .selectAll()
      .where('model_id', '=', d.model_id)
      .executeTakeFirstOrThrow();
    return { kind, validity: 'ok', device: d, model };
  }

  private async dynamic(scan: Extract<ScanKind, { kind: 'dynamic_bind' | 'dynamic_login' }>): Promise<ResolvedCode> {
    const base = await this.withDevice(scan.kind, await this.repo.findBySn(scan.sn));
    if (!base.device) return base;
    const secretNo = this.deps.secrets.open(base.device.secret_no_enc);
    const nonce = scan.nonce ?? '';
    const f = { sn: scan.sn, timestamp: scan.timestamp, nonce };
    // No nonce: issued by the cloud API (gen_login_qrcode type 1, gen_id_dynamic_qrcode), signed as cloud-qr.ts says.
    const cloud = scan.nonce === undefined;
    const cloudFields = { sn: scan.sn, timestamp: scan.timestamp, state: scan.state ?? '' };
    const expected = cloud
      ? signCloudQr(scan.kind === 'dynamic_bind' ? 'qrcode' : 'dynamic_login', cloudFields, secretNo)
      : scan.kind === 'dynamic_bind'
        ? signBindQr(f, secretNo)
        : signLoginQr({ ...f, state: scan.state }, secretNo);
    // A forged code says nothing about the device beyond that it exists: the page names no model or SN.
    if (!hexEquals(expected, scan.signature)) return { kind: scan.kind, validity: 'forged' };
    const windowSec = scan.nonce === undefined ? SignWindow.cloudQr : SignWindow.qr;
    const nowSec = Math.floor(this.deps.clock.now() / 1000);
    if (!isFresh(scan.timestamp, nowSec, windowSec)) return { ...base, validity: 'expired' };
    // Device-made login codes may be shown again while fresh; cloud-made ones are single use (replay refusal below).
    if (scan.kind === 'dynamic_login' && !cloud) return { ...base, state: scan.state };
    const hash = spentCodeHash(scan.sn, scan.timestamp, nonce, scan.signature);
    const spent = await this.deps.db.kysely
      .selectFrom('used_qr_codes')
      .select('code_hash')
      .where('code_hash', '=', hash)
      .executeTakeFirst();
    const spend = { hash, snKey: snKey(scan.sn), expiresAt: (Number(scan.timestamp) + windowSec) * 1000 };
    return { ...base, validity: spent ? 'used' : 'ok', spend, ...(scan.state !== undefined ? { state: scan.state } : {}) };
  }

  /**
   * Records a single-use code as used until its window ends; a second (or concurrent) use fails
   * with QR_USED. Inside the caller's transaction when one is given (a bind spends its code there).
   */
  async spend(spend: NonNullable<ResolvedCode['spend']>, now: number, db: Kysely<Database> = this.deps.db.kysely): Promise<void> {
    await db.deleteFrom('used_qr_codes').where('expires_at', '<', now).execute();
    try {
      await db
        .insertInto('used_qr_codes')
        .values({ code_hash: spend.hash, sn_key: spend.snKey, used_at: now, expires_at: spend.expiresAt })
        .execute();
    } catch (e) {
      if (this.deps.db.caps.isUniqueViolation(e)) fail('QR_USED');
      throw e;
    }
  }
}
