import { createHash } from 'node:crypto';
import { cloudIdentityUrl, dynamicLoginUrl, staticLoginUrl } from '@bindery/protocol';
import type { LimitRule } from '../../adapters/ratelimit/rate-limiter.js';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { audit, deviceOrg } from '../../shared/audit.js';
import type { DomainEvents } from '../../shared/domain-events.js';
import { sha256Hex } from '../../shared/ids.js';
import type { Principal } from '../../shared/principal.js';
import type { BindingService } from '../binding/binding.service.js';
import type { DeviceRow } from '../devices/devices.repo.js';
import { staticLoginCode } from '../gateway/commands/gen-login-qrcode.js';
import type { OrganisationsService } from '../organisations/organisations.service.js';
import { CLOUD_QR_TTL_SEC, signCloudQr } from './cloud-qr.js';

/** §B3: "after about 1 h without a report the app shows the device offline". */
export const CLOUD_OFFLINE_AFTER_MS = 60 * 60_000;

/**
 * Seed 000: one code per SN per minute for each type; the dynamic login code shares its budget
 * with the identity code of gen_id_dynamic_qrcode, the static one has its own.
 */
export const QR_LIMITS = {
  staticLogin: { name: 'cloud_qr_static', points: 1, windowSec: 60 },
  dynamic: { name: 'cloud_qr_dynamic', points: 1, windowSec: 60 },
} as const satisfies Record<string, LimitRule>;

const USERINFO_DEFAULT_LIMIT = 100;
const USERINFO_MAX_LIMIT = 200;

export interface UserItem {
  open_userid: string;
  user_name: string;
  /** 0 ordinary member, 1 admin (as in user_scan). */
  user_type: 0 | 1;
  pass_rule: { rule_list: unknown[] };
}

type Body = Record<string, unknown>;
const asUser = (userId: string): Principal => ({ kind: 'user', userId, isOperator: false });

/**
 * The §B3 device-scoped API for devices whose vendor cloud speaks for them, and the §B2 identity
 * code. Callers have authenticated the device (DeviceTokensService.authenticateDevice) or the model.
 */
export class CloudDevicesService {
  constructor(
    private readonly deps: Pick<Deps, 'db' | 'clock' | 'secrets' | 'limiter' | 'config'>,
    private readonly events: DomainEvents,
    private readonly binding: BindingService,
    private readonly orgs: OrganisationsService,
  ) {}

  private get db() {
    return this.deps.db.kysely;
  }

  // ── presence ───────────────────────────────────────────────────────────────

  /**
   * report_device_status. The device's online flag is the one WSS devices use, so lists, the device
   * page and merchant views show cloud devices alike; node_id stays null, which keeps the gateway's
   * stale-connection sweep off them (sweepOffline below applies the 1 h window instead).
   */
  async reportStatus(d: DeviceRow, body: Body): Promise<void> {
    const status = body.online_status;
    const problems: string[] = [];
    if (status !== 1 && status !== 2) problems.push('online_status must be 1 (online) or 2 (offline)');
    const cur = optText(body.cur_version, 32, 'cur_version', problems);
    const up = optText(body.upgradable_version, 32, 'upgradable_version', problems);
    const upDesc = optText(body.upgradable_version_desc, 256, 'upgradable_version_desc', problems);
    if (problems.length) fail('VALIDATION_FAILED', problems.join('; '), { problems });
    // §B3: the two upgradable fields count only together; one alone is ignored, and a report
    // without them leaves the last known pair as it was.
    const both = up !== null && upDesc !== null;
    const now = this.deps.clock.now();
    const online = status === 1 ? 1 : 0;
    const statusRow = {
      device_id: d.id,
      online,
      last_report_at: now,
      cur_version: cur,
      upgradable_version: both ? up : null,
      upgradable_version_desc: both ? upDesc : null,
    };
    let changed = false;
    await this.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('cloud_device_status')
        .values(statusRow)
        .onConflict((oc) =>
          oc.column('device_id').doUpdateSet({
            online,
            last_report_at: now,
            ...(cur !== null ? { cur_version: cur } : {}),
            ...(both ? { upgradable_version: up, upgradable_version_desc: upDesc } : {}),
          }),
        )
        .execute();
      // Conditional on the old value, so only the report that flips the state announces it.
      const flip = await trx
        .updateTable('devices')
        .set({ online })
        .where('id', '=', d.id)
        .where('online', '=', 1 - online)
        .executeTakeFirst();
      changed = Number(flip.numUpdatedRows) === 1;
      await trx
        .updateTable('devices')
        .set({ last_seen_at: now, ...(cur !== null ? { firmware_version: cur } : {}) })
        .where('id', '=', d.id)
        .execute();
    });
    if (changed) {
      await this.events.emit({
        type: online ? 'device.online' : 'device.offline',
        via: 'cloud',
        sn: d.sn,
        modelId: d.model_id,
        vendorId: d.vendor_id,
        at: now,
      });
    }
  }

  /**
   * Cloud devices silent for CLOUD_OFFLINE_AFTER_MS become offline. Each row flips by a
   * conditional update, so with several processes sweeping each device.offline is emitted once.
   */
  async sweepOffline(now = this.deps.clock.now()): Promise<number> {
    const stale = await this.db
      .selectFrom('cloud_device_status')
      .innerJoin('devices', 'devices.id', 'cloud_device_status.device_id')
      .select(['devices.id', 'devices.sn', 'devices.model_id', 'devices.vendor_id'])
      .where('devices.online', '=', 1)
      .where('devices.node_id', 'is', null)
      .where('cloud_device_status.last_report_at', '<', now - CLOUD_OFFLINE_AFTER_MS)
      .execute();
    let n = 0;
    for (const d of stale) {
      const r = await this.db
        .updateTable('devices')
        .set({ online: 0 })
        .where('id', '=', d.id)
        .where('online', '=', 1)
        .where('node_id', 'is', null)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) continue;
      await this.db.updateTable('cloud_device_status').set({ online: 0 }).where('device_id', '=', d.id).execute();
      n++;
      await this.events.emit({
        type: 'device.offline',
        via: 'cloud',
        sn: d.sn,
        modelId: d.model_id,
        vendorId: d.vendor_id,
        at: now,
      });
    }
    return n;
  }

  // ── firmware ───────────────────────────────────────────────────────────────

  /**
   * report_firmware_upgrade_result (§B3): errcode ≠ 0 failed; 0 with a new version succeeded (the
   * device's version becomes it); 0 with the same version leaves the upgrade in progress.
   */
  async firmwareResult(d: DeviceRow, body: Body): Promise<void> {
    const problems: string[] = [];
    const operId = optText(body.oper_id, 128, 'oper_id', problems);
    const errcode = body.errcode ?? 0;
    if (typeof errcode !== 'number' || !Number.isInteger(errcode)) problems.push('errcode must be an integer');
    const errmsg = optText(body.errmsg, 256, 'errmsg', problems) ?? '';
    const cur = optText(body.cur_version, 32, 'cur_version', problems);
    if (problems.length) fail('VALIDATION_FAILED', problems.join('; '), { problems });
    const now = this.deps.clock.now();
    const code = errcode as number;
    await this.db.transaction().execute(async (trx) => {
      if (code === 0 && cur !== null) {
        await trx.updateTable('devices').set({ firmware_version: cur }).where('id', '=', d.id).execute();
        await trx.updateTable('cloud_device_status').set({ cur_version: cur }).where('device_id', '=', d.id).execute();
      }
      await audit(
        trx,
        now,
        { kind: 'system', name: 'cloud' },
        'device.firmware_result',
        `device:${d.sn}`,
        { oper_id: operId, errcode: code, errmsg, cur_version: cur },
        deviceOrg(d),
      );
    });
    await this.events.emit({
      type: 'device.firmware_result',
      sn: d.sn,
      modelId: d.model_id,
      vendorId: d.vendor_id,
      at: now,
      operId,
      errcode: code,
      errmsg,
      curVersion: cur,
    });
  }

  // ── QR codes ───────────────────────────────────────────────────────────────

  /** gen_login_qrcode (seed 000): type 0 static management code, type 1 dynamic (300 s, single use). */
  async genLoginQrcode(d: DeviceRow, body: Body): Promise<{ qrcode_content: string; expires_in?: number }> {
    const problems: string[] = [];
    const state = optText(body.state, 128, 'state', problems) ?? '';
    const type = body.type === undefined ? 0 : Number(body.type);
    if (type !== 0 && type !== 1) problems.push('type must be 0 (static) or 1 (dynamic)');
    if (problems.length) fail('VALIDATION_FAILED', problems.join('; '), { problems });
    if (d.owner_id === null || d.secret_enc === null) fail('DEVICE_NOT_BOUND');
    if (type === 0) {
      await this.consume(QR_LIMITS.staticLogin, d);
      // The gateway's derivation, so WSS and cloud answers agree and the landing page resolves it.
      const code = staticLoginCode(this.deps.secrets.open(d.secret_enc));
      await this.db
        .insertInto('login_codes')
        .values({ code_hash: sha256Hex(code), device_id: d.id, created_at: this.deps.clock.now() })
        .onConflict((oc) => oc.column('code_hash').doNothing())
        .execute();
      return { qrcode_content: staticLoginUrl(this.deps.config.publicUrl, code, state) };
    }
    await this.consume(QR_LIMITS.dynamic, d);
    const timestamp = String(Math.floor(this.deps.clock.now() / 1000));
    const signature = signCloudQr('dynamic_login', { sn: d.sn, timestamp, state }, this.deps.secrets.open(d.secret_no_enc));
    return {
      qrcode_content: dynamicLoginUrl(this.deps.config.publicUrl, { sn: d.sn, timestamp, signature, state }),
      expires_in: CLOUD_QR_TTL_SEC,
    };
  }

  /** gen_id_dynamic_qrcode (§B2): a dynamic identity (bind) code for an SN of the caller's model. */
  async genIdDynamicQrcode(
    model: Principal & { kind: 'model' },
    body: Body,
  ): Promise<{ qrcode_content: string; expires_in: number }> {
    const problems: string[] = [];
    const sn = body.device_sn;
    if (typeof sn !== 'string' || sn.length === 0 || sn.length > 128) problems.push('device_sn is required');
    const state = optText(body.state, 128, 'state', problems) ?? '';
    if (problems.length) fail('VALIDATION_FAILED', problems.join('; '), { problems });
    const d = await this.db
      .selectFrom('devices')
      .selectAll()
      .where('sn_key', '=', (sn as string).toLowerCase())
      .executeTakeFirst();
    if (!d || d.model_id !== model.modelId) fail('DEVICE_NOT_FOUND');
    await this.consume(QR_LIMITS.dynamic, d);
    const timestamp = String(Math.floor(this.deps.clock.now() / 1000));
    const signature = signCloudQr('qrcode', { sn: d.sn, timestamp, state }, this.deps.secrets.open(d.secret_no_enc));
    return {
      qrcode_content: cloudIdentityUrl(this.deps.config.publicUrl, { sn: d.sn, timestamp, signature, state }),
      expires_in: CLOUD_QR_TTL_SEC,
    };
  }

  private async consume(rule: LimitRule, d: DeviceRow): Promise<void> {
    const r = await this.deps.limiter.consume(rule, d.sn_key);
    if (!r.allowed) fail('QR_RATE_LIMITED', undefined, { retry_after_ms: r.retryAfterMs });
  }

  // ── people ─────────────────────────────────────────────────────────────────

  /**
   * get_userinfo_by_page: the people who may use the device now — members of the owning
   * organisation the binding rules let see it (binding.access), or the owner and co-users of a
   * personal device — ordered by id, paged by an opaque cursor. perm_version changes whenever that
   * set or anyone's user_type changes.
   */
  async userinfoByPage(
    d: DeviceRow,
    body: Body,
  ): Promise<{ next_cursor: string; perm_version: string; userinfo: { useritems: UserItem[] } }> {
    const rawLimit = body.limit === undefined ? USERINFO_DEFAULT_LIMIT : body.limit;
    if (typeof rawLimit !== 'number' || !Number.isInteger(rawLimit) || rawLimit < 1) {
      fail('VALIDATION_FAILED', 'limit must be a positive integer');
    }
    const limit = Math.min(rawLimit, USERINFO_MAX_LIMIT);
    let after: string | null = null;
    if (body.cursor !== undefined && body.cursor !== '') {
      if (typeof body.cursor !== 'string') fail('VALIDATION_FAILED', 'cursor must be a string');
      after = decodeCursor(body.cursor);
    }
    const all = await this.users(d);
    const perm_version = permVersion(all);
    if (body.only_perm_version === true) return { next_cursor: '', perm_version, userinfo: { useritems: [] } };
    const rest = after === null ? all : all.filter((u) => u.open_userid > after);
    const page = rest.slice(0, limit);
    const next_cursor = rest.length > limit ? encodeCursor(page[page.length - 1]!.open_userid) : '';
    return { next_cursor, perm_version, userinfo: { useritems: page } };
  }

  /** get_userinfo_by_ids: the listed people, those of them who may use the device. */
  async userinfoByIds(d: DeviceRow, body: Body): Promise<{ userinfo: { useritems: UserItem[] } }> {
    const items = body.user_item;
    if (!Array.isArray(items) || items.length > USERINFO_MAX_LIMIT) {
      fail('VALIDATION_FAILED', `user_item must be an array of at most ${USERINFO_MAX_LIMIT} entries`);
    }
    const ids = new Set(
      items.map((i) => (i && typeof i === 'object' ? (i as Body).open_userid : undefined)).filter((x) => typeof x === 'string'),
    );
    const all = await this.users(d);
    return { userinfo: { useritems: all.filter((u) => ids.has(u.open_userid)) } };
  }

  private async users(d: DeviceRow): Promise<UserItem[]> {
    if (d.owner_id === null) return [];
    let candidates: Array<{ id: string; display_name: string; department_id?: string }>;
    // Members use a device its visibility range reaches (departments with their subtrees, or by name).
    let reaches = (_c: (typeof candidates)[number]) => false;
    if (d.owner_type === 'org') {
      candidates = await this.db
        .selectFrom('org_members')
        .innerJoin('users', 'users.id', 'org_members.user_id')
        .select(['users.id', 'users.display_name', 'org_members.department_id'])
        .where('org_members.org_id', '=', d.owner_id)
        .execute();
      const range = await this.orgs.deviceRange(d.id, d.owner_id);
      const departments = (await this.orgs.tree(d.owner_id)).closure(range.departments);
      const named = new Set(range.users.map((u) => u.userId));
      reaches = (c) => named.has(c.id) || (c.department_id !== undefined && departments.has(c.department_id));
    } else {
      const co = this.db.selectFrom('device_users').select('user_id').where('device_id', '=', d.id);
      candidates = await this.db
        .selectFrom('users')
        .select(['id', 'display_name'])
        .where((eb) => eb.or([eb('id', '=', d.owner_id!), eb('id', 'in', co)]))
        .execute();
    }
    const out: UserItem[] = [];
    for (const c of candidates) {
      const acc = await this.binding.access(asUser(c.id), d);
      // Those who may manage it (admins, its binder, a personal owner or co-user) use it too.
      if (!acc.actions.has('view') && !reaches(c)) continue;
      out.push({ open_userid: c.id, user_name: c.display_name, user_type: acc.userType, pass_rule: { rule_list: [] } });
    }
    return out.sort((a, b) => (a.open_userid < b.open_userid ? -1 : a.open_userid > b.open_userid ? 1 : 0));
  }
}

function optText(v: unknown, max: number, name: string, problems: string[]): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string' || Buffer.byteLength(v, 'utf8') > max) {
    problems.push(`${name} must be a string of at most ${max} bytes`);
    return null;
  }
  return v;
}

/** Opaque to callers: the last id of the page, tagged so a foreign string is refused, not misread. */
function encodeCursor(lastId: string): string {
  return Buffer.from(`u1:${lastId}`, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!text.startsWith('u1:') || text.length < 4) fail('VALIDATION_FAILED', 'cursor is invalid');
  return text.slice(3);
}

function permVersion(users: UserItem[]): string {
  const h = createHash('sha256');
  for (const u of users) h.update(`${u.open_userid}\u0000${u.user_type}\u0000${u.user_name}\n`);
  return h.digest('hex').slice(0, 16);
}
