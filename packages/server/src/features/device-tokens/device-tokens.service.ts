import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import type { DomainEvents } from '../../shared/domain-events.js';
import { newToken, sha256Hex } from '../../shared/ids.js';
import type { Principal } from '../../shared/principal.js';
import type { DeviceRow } from '../devices/devices.repo.js';

/** §B4.3 bind callback: the auth_code is single use and valid for 10 minutes. */
export const AUTH_CODE_TTL_MS = 10 * 60_000;
/** §B1: device_access_token lifetime. */
export const DEVICE_TOKEN_TTL_SEC = 7200;
/** 64 random bytes → 86 base64url characters (§B1 asks for 64–512 bytes). */
const AUTH_CODE_BYTES = 64;
const SECRET_BYTES = 48;

/**
 * Bind auth codes, device secrets and device access tokens (§B1). Every bearer value is stored
 * as its SHA-256 only; the plain value exists once, in the answer that hands it out. A secret
 * belongs to one binding (devices.bound_at at issue time): when the device is unbound or bound
 * again the secret and its tokens stop working, whether or not the unbind listener has run yet.
 */
export class DeviceTokensService {
  constructor(
    private readonly deps: Pick<Deps, 'db' | 'clock' | 'logger'>,
    private readonly events: DomainEvents,
  ) {
    // The rows go with the binding; the bound_at check above already refuses them, this keeps no dead secrets.
    events.on('device.unbound', async (e) => {
      const d = await this.db.selectFrom('devices').select('id').where('sn', '=', e.sn).executeTakeFirst();
      if (d) await this.dropSecrets(d.id);
    });
  }

  private get db() {
    return this.deps.db.kysely;
  }

  /**
   * Issued for the bind callback before the bind commits, so the device need not be bound yet;
   * get_device_secret checks the binding when the code is exchanged.
   */
  async issueAuthCode(input: { sn: string; modelId: string }): Promise<string> {
    const code = newToken(AUTH_CODE_BYTES);
    const now = this.deps.clock.now();
    await this.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('device_auth_codes')
        .values({
          code_hash: sha256Hex(code),
          sn_key: input.sn.toLowerCase(),
          model_id: input.modelId,
          issued_at: now,
          expires_at: now + AUTH_CODE_TTL_MS,
          used_at: null,
        })
        .execute();
      // Spent and expired codes have no further use; keep the table small.
      await trx.deleteFrom('device_auth_codes').where('expires_at', '<', now).execute();
    });
    return code;
  }

  /** Used when a bind fails after its callback went out: the code must never buy a secret. */
  async revokeAuthCode(code: string): Promise<void> {
    await this.db.deleteFrom('device_auth_codes').where('code_hash', '=', sha256Hex(code)).execute();
  }

  /**
   * §B1 get_device_secret: an unused, unexpired auth_code of the caller's model, for a device bound
   * now → a new device_secret (replacing any earlier one) and a device_access_token. The code is
   * spent by a conditional UPDATE in the same transaction, so of two concurrent exchanges one wins;
   * a refused exchange (device no longer bound) rolls back and spends nothing.
   */
  async exchangeAuthCode(
    model: Principal & { kind: 'model' },
    authCode: unknown,
  ): Promise<{ device_secret: string; device_access_token: string; expires_in: number }> {
    if (typeof authCode !== 'string' || authCode.length < 1 || authCode.length > 512) {
      fail('VALIDATION_FAILED', 'auth_code is required (a string of at most 512 bytes)');
    }
    const now = this.deps.clock.now();
    const secret = newToken(SECRET_BYTES);
    const token = newToken(SECRET_BYTES);
    await this.db.transaction().execute(async (trx) => {
      const hash = sha256Hex(authCode);
      const spent = await trx
        .updateTable('device_auth_codes')
        .set({ used_at: now })
        .where('code_hash', '=', hash)
        .where('model_id', '=', model.modelId)
        .where('used_at', 'is', null)
        .where('expires_at', '>', now)
        .executeTakeFirst();
      if (Number(spent.numUpdatedRows) !== 1) fail('AUTH_CODE_INVALID');
      const code = await trx
        .selectFrom('device_auth_codes')
        .select('sn_key')
        .where('code_hash', '=', hash)
        .executeTakeFirstOrThrow();
      const d = await trx
        .selectFrom('devices')
        .select(['id', 'model_id', 'owner_id', 'bound_at'])
        .where('sn_key', '=', code.sn_key)
        .executeTakeFirst();
      if (!d || d.model_id !== model.modelId) fail('AUTH_CODE_INVALID');
      if (d.owner_id === null || d.bound_at === null) fail('DEVICE_NOT_BOUND');
      await trx.deleteFrom('device_access_tokens').where('device_id', '=', d.id).execute();
      await trx.deleteFrom('device_secrets').where('device_id', '=', d.id).execute();
      await trx
        .insertInto('device_secrets')
        .values({ device_id: d.id, secret_hash: sha256Hex(secret), bound_at: d.bound_at, created_at: now })
        .execute();
      await trx
        .insertInto('device_access_tokens')
        .values({ token_hash: sha256Hex(token), device_id: d.id, expires_at: now + DEVICE_TOKEN_TTL_SEC * 1000 })
        .execute();
    });
    return { device_secret: secret, device_access_token: token, expires_in: DEVICE_TOKEN_TTL_SEC };
  }

  /** §B1 get_device_token: device_sn + device_secret of the caller's model → a fresh device_access_token. */
  async issueDeviceToken(
    model: Principal & { kind: 'model' },
    sn: unknown,
    secret: unknown,
  ): Promise<{ device_access_token: string; expires_in: number }> {
    if (typeof sn !== 'string' || typeof secret !== 'string' || sn.length === 0 || secret.length === 0) {
      fail('VALIDATION_FAILED', 'device_sn and device_secret are required strings');
    }
    const row = await this.db
      .selectFrom('devices')
      .innerJoin('device_secrets', 'device_secrets.device_id', 'devices.id')
      .select(['devices.id', 'devices.model_id', 'devices.bound_at', 'devices.owner_id', 'device_secrets.secret_hash'])
      .select('device_secrets.bound_at as secret_bound_at')
      .where('devices.sn_key', '=', sn.toLowerCase())
      .executeTakeFirst();
    const valid =
      row !== undefined &&
      row.model_id === model.modelId &&
      row.secret_hash === sha256Hex(secret) &&
      row.owner_id !== null &&
      row.bound_at === row.secret_bound_at;
    if (!valid) fail('DEVICE_SECRET_INVALID');
    const now = this.deps.clock.now();
    const token = newToken(SECRET_BYTES);
    await this.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('device_access_tokens')
        .values({ token_hash: sha256Hex(token), device_id: row.id, expires_at: now + DEVICE_TOKEN_TTL_SEC * 1000 })
        .execute();
      await trx.deleteFrom('device_access_tokens').where('device_id', '=', row.id).where('expires_at', '<', now).execute();
    });
    return { device_access_token: token, expires_in: DEVICE_TOKEN_TTL_SEC };
  }

  /**
   * device_access_token → the device, refused once the token expired or the binding it was issued
   * under ended. The first use under a binding whose device is not yet active activates it
   * (device.activated), as `active` does for WSS devices.
   */
  async authenticateDevice(token: unknown): Promise<DeviceRow> {
    if (typeof token !== 'string' || token.length === 0) fail('INVALID_ACCESS_TOKEN', 'device_access_token is missing');
    const row = await this.db
      .selectFrom('device_access_tokens')
      .innerJoin('device_secrets', 'device_secrets.device_id', 'device_access_tokens.device_id')
      .select(['device_access_tokens.device_id', 'device_access_tokens.expires_at', 'device_secrets.bound_at'])
      .where('device_access_tokens.token_hash', '=', sha256Hex(token))
      .executeTakeFirst();
    if (!row) fail('INVALID_ACCESS_TOKEN');
    const now = this.deps.clock.now();
    if (row.expires_at <= now) fail('ACCESS_TOKEN_EXPIRED');
    const d = await this.db.selectFrom('devices').selectAll().where('id', '=', row.device_id).executeTakeFirst();
    if (!d || d.owner_id === null || d.bound_at !== row.bound_at)
      fail('INVALID_ACCESS_TOKEN', 'The binding this token belonged to has ended');
    if (d.activated_at === null || d.activated_at < d.bound_at) {
      // Conditional, so of several first calls (any process) exactly one reports the activation.
      const r = await this.db
        .updateTable('devices')
        .set({ activated_at: now })
        .where('id', '=', d.id)
        .where((eb) => eb.or([eb('activated_at', 'is', null), eb('activated_at', '<', d.bound_at!)]))
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) === 1) {
        d.activated_at = now;
        await this.events.emit({ type: 'device.activated', sn: d.sn, modelId: d.model_id, vendorId: d.vendor_id, at: now });
      }
    }
    return d;
  }

  private async dropSecrets(deviceId: number): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('device_access_tokens').where('device_id', '=', deviceId).execute();
      await trx.deleteFrom('device_secrets').where('device_id', '=', deviceId).execute();
    });
  }
}
