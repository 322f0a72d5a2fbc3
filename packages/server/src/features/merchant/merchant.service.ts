import { createCipheriv, createPublicKey, type KeyObject, randomInt } from 'node:crypto';
import { APP_SCENES, DEVICE_CATEGORIES, DEVICE_CLASSES, snKey } from '@bindery/protocol';
import type { Kysely } from 'kysely';
import type { LimitRule } from '../../adapters/ratelimit/rate-limiter.js';
import type { Database } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { audit } from '../../shared/audit.js';
import type { DomainEvents } from '../../shared/domain-events.js';
import { newId } from '../../shared/ids.js';
import { isOperator, type Principal, requireOperator } from '../../shared/principal.js';
import { type MerchantKeyRow, MerchantRepo, type OrgRow } from './merchant.repo.js';
import { type FleetIndex, loadFleetIndex, locate, reconcileMerchantFleet, syncMerchantFleet } from './merchant-fleet.js';
import {
  type PlatformKey,
  PlatformKeyStore,
  parseAuthorization,
  replyMessage,
  replyNonce,
  requestMessage,
  SIGNATURE_WINDOW_SEC,
  sign,
  signInformation,
  verifySignature,
} from './v3-auth.js';
import { readCertificate } from './x509.js';

export const KEY_MODES = ['public_key', 'platform_certificate'] as const;
export type KeyMode = (typeof KEY_MODES)[number];

/** The documented iotmanage limits (seed 002): per client per second, per merchant per day. */
export interface MerchantLimits {
  perClientPerSecond: number;
  perMerchantPerDay: number;
}
export const DEFAULT_LIMITS: MerchantLimits = { perClientPerSecond: 20, perMerchantPerDay: 50_000 };

/**
 * A nonce is remembered for as long as its timestamp could still pass the window: a request
 * stamped up to 300 s ahead stays acceptable for 600 s after it first arrives.
 */
const NONCE_RULE: LimitRule = { name: 'v3-nonce', points: 1, windowSec: 2 * SIGNATURE_WINDOW_SEC };

/** An authenticated merchant client on the /v3 surface: the v3 counterpart of a Principal. */
export interface MerchantCaller {
  kind: 'merchant';
  orgId: string;
  mchid: string;
  shortname: string;
  serialKey: string;
  keyMode: KeyMode;
  fleetVersion: number;
}

/** Filled in while a /v3 request is handled, so even an early error is signed as the merchant asked. */
export interface V3ReplyContext {
  keyMode: KeyMode;
  /** The request's own Wechatpay-Serial header: a client may ask for one of the platform's key names. */
  requestedSerial?: string;
}

export interface V3Device {
  device_sn: string;
  camera_sn?: string;
  device_category_code: string;
  device_category: string;
  device_class_code: string;
  device_class: string;
  device_model: string;
  app_scene_code?: string;
  app_scene?: string;
  operating_system?: string;
  activation_status: 'ACTIVATED' | 'INACTIVATED';
  activation_time?: string;
  mchid: string;
  merchant_shortname: string;
  sub_mchid?: string;
  sub_merchant_shortname?: string;
}

export interface V3DevicePage {
  data: V3Device[];
  offset: number;
  limit: number;
  total_count: number;
  links: { next: string; prev: string; self: string };
}

export interface MerchantKeyView {
  id: string;
  serial_no: string;
  kind: string;
  name: string;
  not_after: string | null;
  created_at: string;
  revoked_at: string | null;
}

export interface SubMerchantView {
  org_id: string;
  name: string;
  sub_mchid: string;
  sub_merchant_shortname: string;
}

export interface MerchantView {
  org_id: string;
  name: string;
  mchid: string;
  merchant_shortname: string;
  key_mode: KeyMode;
  has_apiv3_key: boolean;
  fleet_total: number;
  sub_merchants: SubMerchantView[];
  keys: MerchantKeyView[];
  created_at: string;
}

export interface PlatformKeyView {
  pub_key_id: string;
  public_key_pem: string;
  certificate_serial: string;
  certificate_pem: string;
  not_before: string;
  not_after: string;
}

const MCHID_RE = /^[0-9]{1,32}$/;
const SERIAL_RE = /^[0-9A-Za-z_-]{1,64}$/;
const APIV3_KEY_RE = /^[\x21-\x7e]{32}$/;
const NONCE_MAX = 128;
const DEVICES_PATH = '/v3/iotmanage/devices';
const BEIJING_MS = 8 * 3600 * 1000;

/** RFC 3339 in China time with milliseconds, as the platform prints it: 2020-03-31T19:38:00.120+08:00. */
export function rfc3339(ms: number, withMillis = true): string {
  const iso = new Date(ms + BEIJING_MS).toISOString();
  return `${withMillis ? iso.slice(0, 23) : iso.slice(0, 19)}+08:00`;
}

/** The calendar day in China time, which is when the platform's daily quota turns over. */
function beijingDay(ms: number): string {
  return new Date(ms + BEIJING_MS).toISOString().slice(0, 10);
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(Number(ms)).toISOString();
}

/**
 * The merchant tier. Operators make organisations merchants, attach sub-merchants, register the
 * merchant's API keys, pick the key mode and set the APIv3 key; the merchant organisation's super
 * admins do the same for their own mchid (all but creating it, its short name and reindexing).
 * Merchant clients then call the signed /v3 surface, which this service authenticates, limits and answers.
 */
export class MerchantService {
  readonly repo: MerchantRepo;
  readonly platformKeys: PlatformKeyStore;
  private readonly limits: MerchantLimits;
  private readonly clientRule: LimitRule;
  private readonly dailyRule: LimitRule;
  private readonly keyCache = new Map<string, KeyObject>();
  private readonly fleetCache = new Map<string, FleetIndex>();

  constructor(
    private readonly deps: Pick<Deps, 'db' | 'clock' | 'secrets' | 'limiter' | 'metrics'>,
    opts: { limits?: Partial<MerchantLimits>; events?: DomainEvents } = {},
  ) {
    this.repo = new MerchantRepo(deps.db.kysely);
    this.platformKeys = new PlatformKeyStore({ db: deps.db.kysely, secrets: deps.secrets, now: () => deps.clock.now() });
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.clientRule = { name: 'v3-client', points: this.limits.perClientPerSecond, windowSec: 1 };
    this.dailyRule = { name: 'v3-daily', points: this.limits.perMerchantPerDay, windowSec: 86_400 };
    // Binding emits after its commit; the fleet follows in its own transaction. A crash in
    // between leaves drift that reindexFleet repairs.
    opts.events?.on('device.bound', (e) => this.syncDevice(e.sn));
    opts.events?.on('device.unbound', (e) => this.syncDevice(e.sn));
  }

  /** Re-derives one device's fleet membership from its current owner (retried: it may race a reindex). */
  async syncDevice(sn: string): Promise<void> {
    const d = await this.db.selectFrom('devices').select('id').where('sn_key', '=', snKey(sn)).executeTakeFirst();
    if (!d) return;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.db.transaction().execute((trx) => syncMerchantFleet(trx, [d.id], this.deps.clock.now()));
        return;
      } catch (e) {
        if (attempt >= 3) throw e;
      }
    }
  }

  private get db(): Kysely<Database> {
    return this.deps.db.kysely;
  }

  // -------------------------------------------------------------------------------------------
  // Administration (operators; the merchant's own super admins where managed() lets them)

  /**
   * A bare organisation for the operator to make a merchant of. Organisation management proper
   * belongs to the binding feature; this exists so merchants can be set up before it does.
   */
  async createOrganisation(actor: Principal, input: { name: string; parent_id?: string | null }): Promise<OrgRow> {
    requireOperator(actor);
    return this.db.transaction().execute((trx) => this.insertOrganisation(trx, actor, input));
  }

  private async insertOrganisation(
    trx: Kysely<Database>,
    actor: Principal,
    input: { name: string; parent_id?: string | null },
  ): Promise<OrgRow> {
    const name = typeof input.name === 'string' ? input.name.trim() : '';
    if (!name || name.length > 128) fail('VALIDATION_FAILED', 'name must be 1–128 characters');
    if (input.parent_id && !(await this.repo.with(trx).orgById(input.parent_id))) {
      fail('NOT_FOUND', `No organisation ${input.parent_id}`);
    }
    const row: OrgRow = {
      id: newId('org'),
      name,
      parent_id: input.parent_id ?? null,
      mchid: null,
      merchant_shortname: null,
      created_at: this.deps.clock.now(),
    };
    await trx.insertInto('organisations').values(row).execute();
    await audit(trx, row.created_at, actor, 'organisation.create', row.id, { name }, row.id);
    return row;
  }

  /** Makes an existing organisation (org_id) or a new one (name) a merchant. */
  async createMerchant(
    actor: Principal,
    input: { org_id?: string; name?: string; mchid: string; merchant_shortname: string; key_mode?: string },
  ): Promise<MerchantView> {
    requireOperator(actor);
    const problems: string[] = [];
    if (!MCHID_RE.test(String(input.mchid ?? ''))) problems.push('mchid must be 1–32 digits');
    if (!validShortname(input.merchant_shortname)) problems.push('merchant_shortname must be 1–64 characters');
    if (input.key_mode !== undefined && !isKeyMode(input.key_mode))
      problems.push(`key_mode must be one of ${KEY_MODES.join(', ')}`);
    if (!input.org_id === !input.name) problems.push('give either org_id (an existing organisation) or name (a new one)');
    if (problems.length) fail('VALIDATION_FAILED', problems.join('; '), { problems });
    const now = this.deps.clock.now();
    try {
      await this.db.transaction().execute(async (trx) => {
        const repo = this.repo.with(trx);
        const org = input.org_id
          ? await repo.orgById(input.org_id)
          : await this.insertOrganisation(trx, actor, { name: input.name! });
        if (!org) fail('NOT_FOUND', `No organisation ${input.org_id}`);
        if (await repo.merchantRow(org.id)) fail('ALREADY_EXISTS', `Organisation ${org.id} is a merchant already`);
        if (org.parent_id && (await repo.merchantRow(org.parent_id))) {
          fail('VALIDATION_FAILED', `Organisation ${org.id} is a sub-merchant; detach it before making it a merchant`);
        }
        if (org.mchid !== null && org.mchid !== input.mchid) {
          fail('ALREADY_EXISTS', `Organisation ${org.id} already has mchid ${org.mchid}`);
        }
        await trx
          .updateTable('organisations')
          .set({ mchid: input.mchid, merchant_shortname: input.merchant_shortname.trim() })
          .where('id', '=', org.id)
          .execute();
        await trx
          .insertInto('merchants')
          .values({
            org_id: org.id,
            key_mode: input.key_mode ?? 'public_key',
            apiv3_key_enc: null,
            fleet_next_seq: 0,
            fleet_total: 0,
            fleet_version: 0,
            created_at: now,
            updated_at: now,
          })
          .execute();
        // The organisation may own devices already: they join the fleet now.
        await reconcileMerchantFleet(trx, org.id, now);
        await audit(trx, now, actor, 'merchant.create', org.id, { mchid: input.mchid }, org.id);
      });
    } catch (e) {
      if (this.deps.db.caps.isUniqueViolation(e)) fail('ALREADY_EXISTS', `mchid ${input.mchid} is taken`);
      throw e;
    }
    return this.get(actor, input.mchid);
  }

  async list(actor: Principal): Promise<MerchantView[]> {
    requireOperator(actor);
    const all = await this.repo.listMerchants();
    return Promise.all(all.map((m) => this.view(m.org, m.merchant)));
  }

  async get(actor: Principal, mchid: string): Promise<MerchantView> {
    const m = await this.managed(actor, mchid);
    return this.view(m.org, m.merchant);
  }

  /** The merchant an organisation is (for its super admins' console), or MERCHANT_NOT_FOUND. */
  async forOrg(actor: Principal, orgId: string): Promise<MerchantView> {
    const org = await this.repo.orgById(orgId);
    if (!isOperator(actor) && !(org && (await this.isSuperAdminOf(actor, org.id)))) {
      fail('FORBIDDEN', 'Only an operator or a super admin of the organisation may see its merchant');
    }
    if (!org) fail('ORG_NOT_FOUND');
    const merchant = await this.repo.merchantRow(org.id);
    if (!merchant) fail('MERCHANT_NOT_FOUND', `Organisation ${org.id} is not a merchant`);
    return this.view(org, merchant);
  }

  /**
   * The merchant behind `mchid`, when the actor may manage it: operators any, a super admin of the
   * merchant's organisation their own (merchant self-service). Others are refused before learning
   * whether the mchid exists.
   */
  async managed(actor: Principal, mchid: string) {
    if (isOperator(actor)) return this.need(mchid);
    const m = MCHID_RE.test(String(mchid)) ? await this.repo.merchantByMchid(String(mchid)) : undefined;
    if (!m || !(await this.isSuperAdminOf(actor, m.org.id))) {
      fail('FORBIDDEN', 'Only an operator or a super admin of the merchant organisation may do this');
    }
    return m;
  }

  private async isSuperAdminOf(actor: Principal, orgId: string): Promise<boolean> {
    return actor.kind === 'user' && (await this.repo.isSuperAdmin(orgId, actor.userId));
  }

  async update(
    actor: Principal,
    mchid: string,
    input: { merchant_shortname?: string; key_mode?: string },
  ): Promise<MerchantView> {
    const m = await this.managed(actor, mchid);
    // The short name is the merchant as WeChat Pay registered it: operators change it, the merchant its key mode.
    if (input.merchant_shortname !== undefined) requireOperator(actor);
    const problems: string[] = [];
    if (input.merchant_shortname !== undefined && !validShortname(input.merchant_shortname)) {
      problems.push('merchant_shortname must be 1–64 characters');
    }
    if (input.key_mode !== undefined && !isKeyMode(input.key_mode))
      problems.push(`key_mode must be one of ${KEY_MODES.join(', ')}`);
    if (problems.length) fail('VALIDATION_FAILED', problems.join('; '), { problems });
    const now = this.deps.clock.now();
    await this.db.transaction().execute(async (trx) => {
      if (input.merchant_shortname !== undefined) {
        await trx
          .updateTable('organisations')
          .set({ merchant_shortname: input.merchant_shortname.trim() })
          .where('id', '=', m.org.id)
          .execute();
      }
      if (input.key_mode !== undefined) {
        await trx
          .updateTable('merchants')
          .set({ key_mode: input.key_mode, updated_at: now })
          .where('org_id', '=', m.org.id)
          .execute();
      }
      await audit(trx, now, actor, 'merchant.update', m.org.id, { ...input }, m.org.id);
    });
    return this.get(actor, mchid);
  }

  /**
   * Sets the merchant's APIv3 key (32 bytes; it encrypts the certificates of GET /v3/certificates).
   * Without one, a key is generated and returned this once.
   */
  async setApiV3Key(actor: Principal, mchid: string, key?: string): Promise<{ apiv3_key?: string }> {
    const m = await this.managed(actor, mchid);
    if (key !== undefined && !APIV3_KEY_RE.test(key)) {
      fail('VALIDATION_FAILED', 'apiv3_key must be 32 printable ASCII characters (32 bytes)');
    }
    const generated = key === undefined ? randomAlnum(32) : undefined;
    const now = this.deps.clock.now();
    await this.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('merchants')
        .set({ apiv3_key_enc: this.deps.secrets.seal(key ?? generated!), updated_at: now })
        .where('org_id', '=', m.org.id)
        .execute();
      await audit(trx, now, actor, 'merchant.apiv3_key.set', m.org.id, { generated: generated !== undefined }, m.org.id);
    });
    return generated ? { apiv3_key: generated } : {};
  }

  /** Attaches an existing organisation (org_id) or a new child (name) as a sub-merchant. */
  async addSubMerchant(
    actor: Principal,
    mchid: string,
    input: { org_id?: string; name?: string; sub_mchid: string; sub_merchant_shortname: string },
  ): Promise<MerchantView> {
    const m = await this.managed(actor, mchid);
    // Attaching brings the organisation's devices into this merchant's list: a merchant's super
    // admin may attach only an organisation they are a super admin of too (or a new child).
    if (input.org_id !== undefined && !isOperator(actor) && !(await this.isSuperAdminOf(actor, String(input.org_id)))) {
      fail('FORBIDDEN', 'You may attach only an organisation you are a super admin of');
    }
    const problems: string[] = [];
    if (!MCHID_RE.test(String(input.sub_mchid ?? ''))) problems.push('sub_mchid must be 1–32 digits');
    if (!validShortname(input.sub_merchant_shortname)) problems.push('sub_merchant_shortname must be 1–64 characters');
    if (!input.org_id === !input.name) problems.push('give either org_id (an existing organisation) or name (a new one)');
    if (problems.length) fail('VALIDATION_FAILED', problems.join('; '), { problems });
    const now = this.deps.clock.now();
    try {
      await this.db.transaction().execute(async (trx) => {
        const repo = this.repo.with(trx);
        const org = input.org_id
          ? await repo.orgById(input.org_id)
          : await this.insertOrganisation(trx, actor, { name: input.name!, parent_id: m.org.id });
        if (!org) fail('NOT_FOUND', `No organisation ${input.org_id}`);
        if (org.id === m.org.id || (await repo.merchantRow(org.id))) {
          fail('VALIDATION_FAILED', `Organisation ${org.id} is a merchant; a merchant cannot be a sub-merchant`);
        }
        if (org.parent_id !== null && org.parent_id !== m.org.id) {
          fail('VALIDATION_FAILED', `Organisation ${org.id} belongs to another parent organisation`);
        }
        if (org.mchid !== null && org.mchid !== input.sub_mchid) {
          fail('ALREADY_EXISTS', `Organisation ${org.id} already has mchid ${org.mchid}`);
        }
        await trx
          .updateTable('organisations')
          .set({ parent_id: m.org.id, mchid: input.sub_mchid, merchant_shortname: input.sub_merchant_shortname.trim() })
          .where('id', '=', org.id)
          .execute();
        await reconcileMerchantFleet(trx, m.org.id, now);
        await audit(trx, now, actor, 'merchant.sub.attach', m.org.id, { org_id: org.id, sub_mchid: input.sub_mchid }, m.org.id);
      });
    } catch (e) {
      if (this.deps.db.caps.isUniqueViolation(e)) fail('ALREADY_EXISTS', `mchid ${input.sub_mchid} is taken`);
      throw e;
    }
    return this.get(actor, mchid);
  }

  async updateSubMerchant(
    actor: Principal,
    mchid: string,
    subMchid: string,
    input: { sub_merchant_shortname: string },
  ): Promise<MerchantView> {
    const m = await this.managed(actor, mchid);
    if (!validShortname(input.sub_merchant_shortname))
      fail('VALIDATION_FAILED', 'sub_merchant_shortname must be 1–64 characters');
    const sub = await this.needSub(m, subMchid);
    await this.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('organisations')
        .set({ merchant_shortname: input.sub_merchant_shortname.trim() })
        .where('id', '=', sub.id)
        .execute();
      await audit(trx, this.deps.clock.now(), actor, 'merchant.sub.update', sub.id, { ...input }, sub.id);
    });
    return this.get(actor, mchid);
  }

  /** Detaches a sub-merchant: the organisation stays, loses its sub_mchid, and its devices leave the fleet. */
  async removeSubMerchant(actor: Principal, mchid: string, subMchid: string): Promise<void> {
    const m = await this.managed(actor, mchid);
    const sub = await this.needSub(m, subMchid);
    const now = this.deps.clock.now();
    await this.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('organisations')
        .set({ parent_id: null, mchid: null, merchant_shortname: null })
        .where('id', '=', sub.id)
        .execute();
      await reconcileMerchantFleet(trx, m.org.id, now);
      await audit(trx, now, actor, 'merchant.sub.detach', m.org.id, { org_id: sub.id, sub_mchid: subMchid }, m.org.id);
    });
  }

  /**
   * Registers one of the merchant's API keys: its certificate (apiclient_cert.pem; the serial is
   * read from it) or its public key with the serial_no clients will send. Several may be active.
   */
  async addKey(
    actor: Principal,
    mchid: string,
    input: { certificate_pem?: string; public_key_pem?: string; serial_no?: string; name?: string },
  ): Promise<MerchantKeyView> {
    const m = await this.managed(actor, mchid);
    if (!input.certificate_pem === !input.public_key_pem) {
      fail('VALIDATION_FAILED', 'give either certificate_pem or public_key_pem (with serial_no)');
    }
    let serial: string;
    let publicKeyPem: string;
    let notAfter: number | null = null;
    if (input.certificate_pem) {
      const c = readCertificate(input.certificate_pem);
      if (!c.ok) fail('VALIDATION_FAILED', c.problem);
      if (input.serial_no && input.serial_no.toUpperCase() !== c.serial) {
        fail('VALIDATION_FAILED', `serial_no ${input.serial_no} is not the certificate's serial ${c.serial}`);
      }
      serial = c.serial;
      publicKeyPem = c.publicKeyPem;
      notAfter = c.notAfter;
    } else {
      if (!input.serial_no || !SERIAL_RE.test(input.serial_no)) {
        fail('VALIDATION_FAILED', 'serial_no is required with a public key: 1–64 of 0-9, A-Z, a-z, _ and -');
      }
      try {
        const k = createPublicKey(input.public_key_pem!);
        if (k.asymmetricKeyType !== 'rsa') fail('VALIDATION_FAILED', 'public_key_pem must be an RSA key');
        publicKeyPem = k.export({ type: 'spki', format: 'pem' }).toString();
      } catch (e) {
        if (e instanceof Error && e.name === 'AppError') throw e;
        fail('VALIDATION_FAILED', 'public_key_pem is not a PEM public key');
      }
      serial = input.serial_no;
    }
    const now = this.deps.clock.now();
    const row: MerchantKeyRow = {
      id: newId('mkey'),
      merchant_org_id: m.org.id,
      serial_no: serial,
      serial_key: serial.toUpperCase(),
      kind: input.certificate_pem ? 'certificate' : 'public_key',
      public_key_pem: publicKeyPem,
      certificate_pem: input.certificate_pem ?? null,
      not_after: notAfter,
      name: (input.name ?? 'api key').slice(0, 128),
      created_at: now,
      revoked_at: null,
    };
    try {
      await this.db.transaction().execute(async (trx) => {
        await trx.insertInto('merchant_keys').values(row).execute();
        await audit(trx, now, actor, 'merchant.key.add', m.org.id, { serial_no: serial, kind: row.kind }, m.org.id);
      });
    } catch (e) {
      if (this.deps.db.caps.isUniqueViolation(e)) fail('ALREADY_EXISTS', `An active key with serial_no ${serial} exists already`);
      throw e;
    }
    return keyView(row);
  }

  async listKeys(actor: Principal, mchid: string, includeRevoked = false): Promise<MerchantKeyView[]> {
    const m = await this.managed(actor, mchid);
    return (await this.repo.keys(m.org.id, includeRevoked)).map(keyView);
  }

  async revokeKey(actor: Principal, mchid: string, serialNo: string): Promise<void> {
    const m = await this.managed(actor, mchid);
    const now = this.deps.clock.now();
    await this.db.transaction().execute(async (trx) => {
      const r = await trx
        .updateTable('merchant_keys')
        .set({ revoked_at: now })
        .where('merchant_org_id', '=', m.org.id)
        .where('serial_key', '=', String(serialNo).toUpperCase())
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) fail('NOT_FOUND', `No active key with serial_no ${serialNo}`);
      await audit(trx, now, actor, 'merchant.key.revoke', m.org.id, { serial_no: serialNo }, m.org.id);
    });
  }

  /** The platform's public key and certificate, which merchant clients configure to verify replies. */
  async platformKey(_actor: Principal): Promise<PlatformKeyView> {
    const k = await this.platformKeys.current();
    return {
      pub_key_id: k.pubKeyId,
      public_key_pem: k.publicKeyPem,
      certificate_serial: k.certSerial,
      certificate_pem: k.certificatePem,
      not_before: new Date(k.notBefore).toISOString(),
      not_after: new Date(k.notAfter).toISOString(),
    };
  }

  /** Rebuilds the merchant's fleet order from the owner columns (repairs drift; positions are kept). */
  async reindexFleet(actor: Principal, mchid: string): Promise<{ removed: number; added: number; total: number }> {
    requireOperator(actor);
    const m = await this.need(mchid);
    const now = this.deps.clock.now();
    return this.db.transaction().execute(async (trx) => {
      const r = await reconcileMerchantFleet(trx, m.org.id, now);
      await audit(trx, now, actor, 'merchant.fleet.reindex', m.org.id, r, m.org.id);
      return r;
    });
  }

  private async need(mchid: string) {
    const m = MCHID_RE.test(String(mchid)) ? await this.repo.merchantByMchid(String(mchid)) : undefined;
    if (!m) fail('MERCHANT_NOT_FOUND', `No merchant with mchid ${mchid}`);
    return m;
  }

  private async needSub(m: { org: OrgRow }, subMchid: string): Promise<OrgRow> {
    const sub = MCHID_RE.test(String(subMchid)) ? await this.repo.orgByMchid(String(subMchid)) : undefined;
    if (!sub || sub.parent_id !== m.org.id) fail('NOT_FOUND', `Merchant ${m.org.mchid} has no sub-merchant ${subMchid}`);
    return sub;
  }

  private async view(
    org: OrgRow,
    merchant: { key_mode: string; apiv3_key_enc: string | null; fleet_total: number; created_at: number },
  ) {
    const [subs, keys] = await Promise.all([this.repo.subMerchants(org.id), this.repo.keys(org.id)]);
    return {
      org_id: org.id,
      name: org.name,
      mchid: org.mchid!,
      merchant_shortname: org.merchant_shortname ?? '',
      key_mode: merchant.key_mode as KeyMode,
      has_apiv3_key: merchant.apiv3_key_enc !== null,
      fleet_total: Number(merchant.fleet_total),
      sub_merchants: subs.map((s) => ({
        org_id: s.id,
        name: s.name,
        sub_mchid: s.mchid!,
        sub_merchant_shortname: s.merchant_shortname ?? '',
      })),
      keys: keys.map(keyView),
      created_at: new Date(Number(merchant.created_at)).toISOString(),
    } satisfies MerchantView;
  }

  // -------------------------------------------------------------------------------------------
  // The /v3 surface

  /**
   * Authenticates a /v3 request exactly as §A1: the signature over the raw request target and
   * body, the 5-minute window, a nonce seen in the window refused; then the frequency limits.
   * Every refusal is a SIGN_ERROR whose detail shows what the server reconstructed.
   */
  async authenticate(
    req: { method: string; url: string; authorization: string | undefined; body: string; endpoint: string },
    ctx: V3ReplyContext,
  ): Promise<MerchantCaller> {
    const parsed = parseAuthorization(req.authorization);
    if (!parsed.ok) {
      fail('SIGN_ERROR', 'The Authorization header is missing or malformed', {
        field: 'authorization',
        location: 'authorization',
        detail: { issue: parsed.issue },
      });
    }
    const a = parsed.params;
    const message = requestMessage(req.method, req.url, a.timestamp, a.nonce_str, req.body);
    const refuse = (msg: string, field: string, issue: string): never =>
      fail('SIGN_ERROR', msg, {
        field,
        location: 'authorization',
        detail: { issue },
        sign_information: signInformation(req.method, req.url, message),
      });

    const serialKey = a.serial_no.toUpperCase();
    const row = await this.repo.callerKey(a.mchid, serialKey);
    if (!row) refuse('The mchid is not a merchant here', 'mchid', `no merchant has mchid ${a.mchid}`);
    ctx.keyMode = row!.key_mode as KeyMode;
    if (!row!.public_key_pem) {
      refuse('No active API key of this merchant has this serial_no', 'serial_no', `serial_no ${a.serial_no} is not registered`);
    }
    const nowSec = this.deps.clock.now() / 1000;
    if (!/^[0-9]{1,12}$/.test(a.timestamp)) refuse('The timestamp must be Unix time in seconds', 'timestamp', 'not a number');
    if (Math.abs(nowSec - Number(a.timestamp)) > SIGNATURE_WINDOW_SEC) {
      refuse(
        'The Authorization timestamp must be within 5 minutes of the request time',
        'timestamp',
        `timestamp ${a.timestamp} is ${Math.round(nowSec - Number(a.timestamp))} s from the server time ${Math.floor(nowSec)}`,
      );
    }
    if (a.nonce_str.length > NONCE_MAX) refuse('The nonce_str is too long', 'nonce_str', `longer than ${NONCE_MAX} characters`);
    if (!verifySignature(message, a.signature, this.publicKey(row!.public_key_pem!))) {
      refuse('The signature does not match', 'signature', 'sign not match');
    }
    // Only a verified request may spend a nonce, so nobody can burn a merchant's nonces.
    const fresh = await this.deps.limiter.consume(NONCE_RULE, `${row!.org_id}:${a.nonce_str}`);
    if (!fresh.allowed) refuse('This nonce_str was already used', 'nonce_str', 'nonce_str replayed within the time window');

    const caller: MerchantCaller = {
      kind: 'merchant',
      orgId: row!.org_id,
      mchid: row!.mchid,
      shortname: row!.merchant_shortname ?? '',
      serialKey,
      keyMode: row!.key_mode as KeyMode,
      fleetVersion: row!.fleet_version,
    };
    await this.checkLimits(caller, req.endpoint);
    return caller;
  }

  /**
   * Seed 002 counts per endpoint: 20/s per merchant client (a merchant API key) and endpoint (rule
   * 20000730), and 50 000 per merchant and endpoint per China calendar day (rule 20000731).
   * `endpoint` is the matched route (`GET /v3/iotmanage/device-inspections/:device_sn`), so every
   * SN of one endpoint shares its budget.
   */
  private async checkLimits(caller: MerchantCaller, endpoint: string): Promise<void> {
    const perClient = await this.deps.limiter.consume(this.clientRule, `${caller.orgId}:${caller.serialKey}:${endpoint}`);
    if (!perClient.allowed) {
      fail(
        'FREQUENCY_LIMITED',
        `At most ${this.limits.perClientPerSecond} requests per second per merchant client and endpoint`,
        {
          retry_after_ms: perClient.retryAfterMs,
        },
      );
    }
    const day = beijingDay(this.deps.clock.now());
    const daily = await this.deps.limiter.consume(this.dailyRule, `${caller.orgId}:${endpoint}:${day}`);
    if (!daily.allowed) {
      fail('FREQUENCY_LIMITED', `At most ${this.limits.perMerchantPerDay} requests per day per merchant and endpoint`, {
        retry_after_ms: daily.retryAfterMs,
      });
    }
  }

  private publicKey(pem: string): KeyObject {
    let k = this.keyCache.get(pem);
    if (!k) {
      if (this.keyCache.size > 1000) this.keyCache.clear();
      k = createPublicKey(pem);
      this.keyCache.set(pem, k);
    }
    return k;
  }

  /** Signs a reply body (the exact string sent) with the platform key under the name the merchant uses. */
  async signReply(
    body: string,
    ctx: V3ReplyContext,
  ): Promise<{ timestamp: string; nonce: string; serial: string; signature: string }> {
    const key = await this.platformKeys.current();
    const timestamp = String(Math.floor(this.deps.clock.now() / 1000));
    const nonce = replyNonce();
    return {
      timestamp,
      nonce,
      serial: replySerial(key, ctx),
      signature: sign(replyMessage(timestamp, nonce, body), key.privateKey),
    };
  }

  /** GET /v3/iotmanage/devices: one page of the merchant's fleet in its stable (joining) order. */
  async listDevices(caller: MerchantCaller, offset: number, limit: number): Promise<V3DevicePage> {
    assertCaller(caller);
    let index = this.fleetCache.get(caller.orgId);
    if (!index || index.version !== caller.fleetVersion) {
      index = await loadFleetIndex(this.db, caller.orgId, caller.fleetVersion);
      this.fleetCache.set(caller.orgId, index);
    }
    const at = locate(index, offset);
    const rows = at ? await this.repo.fleetPage(caller.orgId, at.fromSeq, at.skip, limit) : [];
    const data = rows.map((r): V3Device => {
      const sub = r.owner_id !== caller.orgId;
      const d: V3Device = {
        device_sn: r.sn,
        device_category_code: r.category_code,
        device_category: DEVICE_CATEGORIES[r.category_code] ?? '',
        device_class_code: r.class_code,
        device_class: DEVICE_CLASSES[r.class_code] ?? '',
        device_model: r.model_name,
        activation_status: r.activated_at !== null ? 'ACTIVATED' : 'INACTIVATED',
        mchid: caller.mchid,
        merchant_shortname: caller.shortname,
      };
      // v3 JSON carries no nulls: absent facts are left out.
      if (r.camera_sn) d.camera_sn = r.camera_sn;
      if (r.app_scene_code) {
        d.app_scene_code = r.app_scene_code;
        d.app_scene = APP_SCENES[r.app_scene_code] ?? '';
      }
      if (r.operating_system) d.operating_system = r.operating_system;
      if (r.activated_at !== null) d.activation_time = rfc3339(Number(r.activated_at));
      if (sub && r.owner_mchid) {
        d.sub_mchid = r.owner_mchid;
        d.sub_merchant_shortname = r.owner_shortname ?? '';
      }
      return d;
    });
    const link = (o: number) => `${DEVICES_PATH}?offset=${o}&limit=${limit}`;
    return {
      data,
      offset,
      limit,
      total_count: index.total,
      links: {
        next: offset + limit < index.total ? link(offset + limit) : '',
        prev: offset > 0 ? link(Math.max(0, Math.min(offset, index.total) - limit)) : '',
        self: link(offset),
      },
    };
  }

  /** GET /v3/certificates: the platform certificate, encrypted under the merchant's APIv3 key (§A2). */
  async certificates(caller: MerchantCaller) {
    assertCaller(caller);
    const m = await this.repo.merchantRow(caller.orgId);
    if (!m?.apiv3_key_enc) fail('NO_AUTH', 'The merchant has no APIv3 key; an operator must set one first');
    const apiKey = Buffer.from(this.deps.secrets.open(m.apiv3_key_enc), 'utf8');
    const key = await this.platformKeys.current();
    const nonce = randomAlnum(12);
    const associated = 'certificate';
    const c = createCipheriv('aes-256-gcm', apiKey, Buffer.from(nonce, 'utf8'));
    c.setAAD(Buffer.from(associated, 'utf8'));
    const ct = Buffer.concat([c.update(key.certificatePem, 'utf8'), c.final(), c.getAuthTag()]);
    return {
      data: [
        {
          serial_no: key.certSerial,
          effective_time: rfc3339(key.notBefore, false),
          expire_time: rfc3339(key.notAfter, false),
          encrypt_certificate: {
            algorithm: 'AEAD_AES_256_GCM',
            nonce,
            associated_data: associated,
            ciphertext: ct.toString('base64'),
          },
        },
      ],
    };
  }
}

/** The serial a reply is signed under: the one the request asked for, else the merchant's mode. */
export function replySerial(key: PlatformKey, ctx: V3ReplyContext): string {
  if (ctx.requestedSerial === key.pubKeyId) return key.pubKeyId;
  if (ctx.requestedSerial && ctx.requestedSerial.toUpperCase() === key.certSerial) return key.certSerial;
  return ctx.keyMode === 'platform_certificate' ? key.certSerial : key.pubKeyId;
}

export function assertCaller(caller: MerchantCaller): void {
  if (caller?.kind !== 'merchant') fail('SIGN_ERROR', 'This call needs a signed merchant request');
}

function isKeyMode(v: unknown): v is KeyMode {
  return (KEY_MODES as readonly unknown[]).includes(v);
}

function validShortname(v: unknown): v is string {
  return typeof v === 'string' && v.trim().length >= 1 && v.trim().length <= 64;
}

function randomAlnum(n: number): string {
  const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let s = '';
  for (let i = 0; i < n; i++) s += abc[randomInt(abc.length)];
  return s;
}

function keyView(k: MerchantKeyRow): MerchantKeyView {
  return {
    id: k.id,
    serial_no: k.serial_no,
    kind: k.kind,
    name: k.name,
    not_after: iso(k.not_after),
    created_at: new Date(Number(k.created_at)).toISOString(),
    revoked_at: iso(k.revoked_at),
  };
}
