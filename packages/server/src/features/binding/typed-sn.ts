import { timingSafeEqual } from 'node:crypto';
import { hasValidCheckChar, isValidSn } from '@bindery/protocol';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import type { DeviceRow, KyselyDevicesRepo } from '../devices/devices.repo.js';
import type { Lockout, LockoutKeys } from '../people/lockout.js';
import { typedSnNeedsCode } from './bind-proof.js';
import type { BindGate } from './binding.service.js';
import { verifCodeFor } from './scan.js';

/**
 * What a typed SN (or a Quectel/custom label, which prove no more) must show (bind-proof.ts rule 2):
 * an SN that exists — with the model's check character and product key when given, or vouched for
 * by the vendor's verify_device — and the device's verification code unless the model is
 * `sn_only`. Every wrong answer counts towards the binding lockout. Moved out of binding.service.ts.
 */
export class TypedSnProof {
  constructor(
    private readonly deps: Pick<Deps, 'db' | 'secrets'>,
    private readonly repo: KyselyDevicesRepo,
    private readonly lockout: Lockout,
    private readonly gate: () => BindGate | null,
  ) {}

  /**
   * A typed SN. With the model's product key the check character is verified first (it catches
   * typos before any lookup); without one, it is verified when every model here uses them.
   */
  async device(sn: unknown, productKey: string | undefined, keys: LockoutKeys): Promise<DeviceRow> {
    if (!isValidSn(sn)) {
      await this.lockout.fail(keys);
      fail('INVALID_SN', undefined, { sn });
    }
    let modelId: string | undefined;
    if (productKey !== undefined) {
      const m = await this.deps.db.kysely
        .selectFrom('models')
        .select(['model_id', 'require_check_char'])
        .where('product_key', '=', productKey)
        .executeTakeFirst();
      if (!m) {
        await this.lockout.fail(keys);
        fail('MODEL_NOT_FOUND', `No device model has product key ${productKey}`);
      }
      if (m.require_check_char === 1 && !hasValidCheckChar(sn)) {
        await this.lockout.fail(keys);
        fail('SN_CHECK_FAILED');
      }
      modelId = m.model_id;
    }
    const d = await this.repo.findBySn(sn);
    if (d && (modelId === undefined || d.model_id === modelId)) return d;
    if (!d && (await this.gate()?.verifyUnknownSn(sn, modelId))) {
      const vouched = await this.repo.findBySn(sn);
      if (vouched && (modelId === undefined || vouched.model_id === modelId)) return vouched;
    }
    await this.lockout.fail(keys);
    if (modelId === undefined && !hasValidCheckChar(sn) && (await this.everyModelUsesCheckChars())) fail('SN_CHECK_FAILED');
    fail('DEVICE_NOT_FOUND', `No device has SN ${sn}; check it for typos`);
  }

  private async everyModelUsesCheckChars(): Promise<boolean> {
    const r = await this.deps.db.kysely
      .selectFrom('models')
      .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.sum<number>('require_check_char').as('cc')])
      .executeTakeFirstOrThrow();
    return Number(r.n) > 0 && Number(r.n) === Number(r.cc);
  }

  /** A typed SN's proof: the label's verification code, unless the model opted into `sn_only`. */
  async checkVerifCode(d: DeviceRow, given: string | null | undefined, keys: LockoutKeys): Promise<void> {
    const s = await this.deps.db.kysely
      .selectFrom('model_bind_settings')
      .select(['require_verif_code', 'typed_sn_mode'])
      .where('model_id', '=', d.model_id)
      .executeTakeFirst();
    // sn_only passes a given code on to the vendor's bind callback unchecked (vendors may have their own).
    if (!typedSnNeedsCode(s)) return;
    if (given === undefined || given === null || given === '') fail('VERIF_CODE_REQUIRED');
    const expected = Buffer.from(verifCodeFor(this.deps.secrets.open(d.secret_no_enc), d.sn));
    const got = Buffer.from(String(given).trim());
    if (expected.length !== got.length || !timingSafeEqual(expected, got)) {
      await this.lockout.fail(keys);
      fail('VERIF_CODE_WRONG');
    }
  }
}
