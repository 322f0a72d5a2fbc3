import { createHmac } from 'node:crypto';
import { snKey } from '@bindery/protocol';

/** Seed 000 / §B2: cloud-issued dynamic codes live 300 s. */
export const CLOUD_QR_TTL_SEC = 300;

/** What the code is for; part of the signed text so a login code never passes as a bind code. */
export type CloudQrPurpose = 'dynamic_login' | 'qrcode';

/**
 * The signature of a cloud-issued dynamic code (gen_login_qrcode type 1, gen_id_dynamic_qrcode).
 * §A8 leaves it open and the URL carries no nonce, so Bindery uses
 *
 *   hex(HMAC-SHA256(key = the device's SecretNo,
 *                   "bindery-cloud-qr-v1\n" + purpose + "\n" + lower-case SN + "\n" + timestamp + "\n" + state))
 *
 * The SecretNo never leaves the server and the vendor's production line, so nobody else can mint a
 * code; the purpose keeps a login code from being used as a bind code; the fields are separated
 * (only state, the last one, may hold arbitrary text), so no two field sets sign the same text;
 * 64 hex characters tell it apart from a device-made §A4 sha1 signature (40). Replays within the
 * 300 s are refused by recording each used code (used_qr_codes), as for device-made bind codes.
 */
export function signCloudQr(
  purpose: CloudQrPurpose,
  f: { sn: string; timestamp: string; state: string },
  secretNo: string,
): string {
  return createHmac('sha256', secretNo)
    .update(['bindery-cloud-qr-v1', purpose, snKey(f.sn), f.timestamp, f.state].join('\n'), 'utf8')
    .digest('hex');
}
