import type { LimitRule, RateLimiter } from '../../adapters/ratelimit/rate-limiter.js';
import type { Db } from '../../adapters/storage/database.js';
import { AppError, fail } from '../../errors.js';
import { audit } from '../../shared/audit.js';
import type { BindMethod } from '../../shared/domain-events.js';
import type { Principal } from '../../shared/principal.js';
import type { DeviceRow } from '../devices/devices.repo.js';
import type { LockoutKeys, LockoutPolicy } from '../people/lockout.js';

/**
 * Proof of possession (issue 11, docs/binding.md). A bind is only as strong as what the binder
 * showed: a scanned static label (its random hw_code) or the device's own signed dynamic QR proves
 * they hold the device; a typed SN or a Quectel label (`pk&sn&v=1`, unsigned, derivable from the
 * SN) proves nothing, so it needs the label's verification code unless the model opts into
 * `sn_only`, and it never takes over or joins someone else's device.
 */
export type TypedSnMode = 'verif_code' | 'sn_only';
export const TYPED_SN_MODES: readonly TypedSnMode[] = ['verif_code', 'sn_only'];

/**
 * Methods whose content only the device (or its label) can give. Operators' binds are audited apart.
 * `bluetooth`: a ticket from an identity proof the device signed with its SecretNo (BT-11).
 */
const POSSESSION: ReadonlySet<BindMethod> = new Set<BindMethod>(['static_qr', 'dynamic_qr', 'bluetooth', 'operator']);

export function provesPossession(method: BindMethod): boolean {
  return POSSESSION.has(method);
}

/**
 * Guessing: a wrong SN, code or signature counts per account and per address. The account limit is
 * what stops one attacker; the address limit (failures from that address only) is high enough that
 * one office or proxy of honest people does not reach it in normal use.
 */
export const BIND_LOCKOUT: LockoutPolicy = {
  name: 'bind',
  perUser: 10,
  perAddress: 100,
  windowSec: 15 * 60,
  blockSec: 15 * 60,
  what: 'Too many wrong SNs or codes from this account or network, so binding is paused to stop guessing.',
};

/**
 * Successful claims by typed SN (or Quectel label) spend a per-account budget: right answers must
 * not let one account harvest a run of guessable SNs. Scans are not counted; each needs its label.
 */
export const CLAIM_BUDGET: LimitRule = { name: 'bind_typed_claims', points: 20, windowSec: 60 * 60 };

export class ClaimBudget {
  constructor(
    private readonly limiter: RateLimiter,
    readonly rule: LimitRule = CLAIM_BUDGET,
  ) {}

  /** Throws BIND_LIMIT_REACHED when the account has no claim left in the window. Spends nothing. */
  async check(account: string): Promise<void> {
    const r = await this.limiter.consume(this.rule, account, 0);
    if (!r.allowed || r.remaining <= 0) this.refuse(r.retryAfterMs);
  }

  /** Counts one successful claim. */
  async spend(account: string): Promise<void> {
    await this.limiter.consume(this.rule, account, 1);
  }

  private refuse(retryAfterMs: number): never {
    const minutes = Math.max(1, Math.ceil(retryAfterMs / 60_000));
    throw new AppError(
      'BIND_LIMIT_REACHED',
      `This account claimed ${this.rule.points} devices by typed SN within the hour. Scan their labels instead, or try again in about ${minutes} minute${minutes === 1 ? '' : 's'}.`,
      { retry_after_sec: Math.ceil(retryAfterMs / 1000) },
    );
  }
}

export interface BindSettingsView {
  model_id: string;
  /** How a typed SN (or Quectel label) binds: with the verification code, or by SN alone (low security). */
  typed_sn_mode: TypedSnMode;
  /** Derived: true unless `typed_sn_mode` is `sn_only`. */
  require_verif_code: boolean;
  app_key: string | null;
  app_name: string | null;
}

export interface BindSettingsInput {
  typedSnMode?: TypedSnMode;
  /** Legacy switch: true means `verif_code`; turning the code off must name `typed_sn_mode: 'sn_only'`. */
  requireVerifCode?: boolean;
  appKey?: string | null;
  appName?: string | null;
}

/** Whether a typed SN on this model needs the verification code (no settings row: yes). */
export function typedSnNeedsCode(s: { typed_sn_mode?: string | null; require_verif_code?: number } | undefined): boolean {
  return s?.require_verif_code === 1 || s?.typed_sn_mode !== 'sn_only';
}

export async function readBindSettings(db: Db, modelId: string): Promise<BindSettingsView> {
  const s = await db.kysely.selectFrom('model_bind_settings').selectAll().where('model_id', '=', modelId).executeTakeFirst();
  const needs = typedSnNeedsCode(s);
  return {
    model_id: modelId,
    typed_sn_mode: needs ? 'verif_code' : 'sn_only',
    require_verif_code: needs,
    app_key: s?.app_key ?? null,
    app_name: s?.app_name ?? null,
  };
}

/** Writes a model's bind settings (the caller checked the vendor right) with its audit record. */
export async function writeBindSettings(
  db: Db,
  actor: Principal,
  now: number,
  modelId: string,
  input: BindSettingsInput,
): Promise<void> {
  const cur = await readBindSettings(db, modelId);
  if (input.typedSnMode !== undefined && !TYPED_SN_MODES.includes(input.typedSnMode)) {
    fail('VALIDATION_FAILED', "typed_sn_mode must be 'verif_code' or 'sn_only'");
  }
  if (input.requireVerifCode === false && input.typedSnMode !== 'sn_only') {
    fail(
      'VALIDATION_FAILED',
      "To let a typed SN bind without the verification code, set typed_sn_mode: 'sn_only' (low security)",
    );
  }
  if (input.requireVerifCode === true && input.typedSnMode === 'sn_only') {
    fail('VALIDATION_FAILED', "require_verif_code: true contradicts typed_sn_mode: 'sn_only'");
  }
  const mode: TypedSnMode = input.typedSnMode ?? (input.requireVerifCode ? 'verif_code' : cur.typed_sn_mode);
  const appKey = input.appKey === undefined ? cur.app_key : input.appKey;
  let appName = input.appName === undefined ? cur.app_name : input.appName;
  if (appKey !== null && !/^[A-Za-z0-9_.-]{1,64}$/.test(appKey))
    fail('VALIDATION_FAILED', 'app_key must be 1–64 of [A-Za-z0-9_.-]');
  if (appName !== null && (appName.length === 0 || appName.length > 128))
    fail('VALIDATION_FAILED', 'app_name must be 1–128 characters');
  if (appKey === null) appName = null;
  const row = {
    require_verif_code: mode === 'verif_code' ? 1 : 0,
    typed_sn_mode: mode,
    app_key: appKey,
    app_name: appName,
    updated_at: now,
  };
  await db.kysely.transaction().execute(async (trx) => {
    await trx
      .insertInto('model_bind_settings')
      .values({ model_id: modelId, ...row })
      .onConflict((oc) => oc.column('model_id').doUpdateSet(row))
      .execute();
    await audit(trx, now, actor, 'model.bind_settings', `model:${modelId}`, {
      typed_sn_mode: mode,
      require_verif_code: mode === 'verif_code',
      app_key: appKey,
      ...(mode !== cur.typed_sn_mode ? { typed_sn_mode_was: cur.typed_sn_mode } : {}),
    });
  });
}

/**
 * Tickets that stand for a proof of possession obtained elsewhere (features/bluetooth): redeemed by
 * POST /api/v1/bind. `spend` makes the ticket single-use inside the bind's transaction.
 */
export interface PossessionTickets {
  /** Throws BT_TICKET_INVALID for an unknown, expired, used or another account's ticket. */
  redeem(
    actor: Principal,
    ticket: string,
    keys: LockoutKeys,
  ): Promise<{ device: DeviceRow; spend: { hash: string; snKey: string; expiresAt: number } }>;
}
