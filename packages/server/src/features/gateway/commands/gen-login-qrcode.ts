import { createHmac } from 'node:crypto';
import { encodeBinaryReply, staticLoginUrl, WsErr } from '@bindery/protocol';
import QRCode from 'qrcode';
import { sha256Hex } from '../../../shared/ids.js';
import { ConnState } from '../connection.js';
import { type CommandSpec, err, optString } from './types.js';

/**
 * The static login code of a device for its current binding: derived from the device secret,
 * so it is the same on every call while the binding lasts and changes when the device is
 * bound again (§A5.9: "invalid only after the device is re-bound").
 */
export function staticLoginCode(secret: string): string {
  return createHmac('sha256', secret).update('static_login').digest('base64url').slice(0, 32);
}

/**
 * `gen_login_qrcode` (§A5.9).
 * P-CMD-gen_login_qrcode-1: needs a subscribed connection (P-ST-3); body state (string,
 *   ≤ 128 chars, default ""), format_version (accepted; the reply is format 1).
 * P-CMD-gen_login_qrcode-2: replies with the binary frame of P-B-3 carrying a PNG whose QR
 *   encodes staticLoginUrl(BINDERY_PUBLIC_URL, login_code, state) (P-Q-2).
 * P-CMD-gen_login_qrcode-3: the login_code is stored (as SHA-256, in login_codes) for the
 *   landing page, which sends push_user_scan when a person who may manage the device scans it.
 */
export const genLoginQrcode: CommandSpec = {
  name: 'gen_login_qrcode',
  needs: ConnState.Subscribed,
  async run(gw, conn, job) {
    const state = optString(job.body.state, 128);
    if (state === null) return err(WsErr.INVALID_PARAM, 'state must be a string of at most 128 characters');
    const device = conn.device!;
    const d = await gw.repo.authRow(device.id);
    if (!d?.secret_enc) return err(WsErr.NOT_AUTHORIZED, 'the device is not bound');
    const code = staticLoginCode(gw.deps.secrets.open(d.secret_enc));
    await gw.repo.storeLoginCode(device.id, sha256Hex(code), gw.now());
    const url = staticLoginUrl(gw.deps.config.publicUrl, code, state ?? '');
    const png = await QRCode.toBuffer(url, { type: 'png', errorCorrectionLevel: 'M', margin: 2, scale: 6 });
    return { errcode: WsErr.OK, errmsg: 'ok', binary: encodeBinaryReply(job.reqId, png) };
  },
};
