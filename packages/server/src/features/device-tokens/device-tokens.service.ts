import type { Deps } from '../../deps.js';
import { newToken, sha256Hex } from '../../shared/ids.js';

/** §B4.3 bind callback: the auth_code is single use and valid for 10 minutes. */
export const AUTH_CODE_TTL_MS = 10 * 60_000;
/** 64 random bytes → 86 base64url characters. */
const AUTH_CODE_BYTES = 64;

/**
 * Bind auth codes, device secrets and device access tokens (§B1). Every bearer value is
 * stored as its SHA-256 only; the plain value exists once, in the answer that hands it out.
 */
export class DeviceTokensService {
  constructor(private readonly deps: Pick<Deps, 'db' | 'clock'>) {}

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
}
