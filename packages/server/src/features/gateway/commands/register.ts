import { hexEquals, isFresh, SignWindow, signRegister, snKey, WsErr } from '@bindery/protocol';
import { activeCodeColumns } from '../../../adapters/secrets/active-code.js';
import { newActiveCode } from '../../../shared/ids.js';
import { ConnState } from '../connection.js';
import { type CommandSpec, err, ok, REFUSED_ATTEMPT, signedRequest } from './types.js';

/**
 * `register` (§A5.3).
 * P-CMD-register-1: body sn, nonce, timestamp, device_signature (net_info optional, ignored).
 * P-CMD-register-2: timestamp within 300 s of server time (P-SIG-3), else STALE_TIMESTAMP.
 * P-CMD-register-3: signature = P-SIG-1 over (sn, SecretNo, timestamp, nonce, "register"),
 *   compared per P-SIG-2; unknown SN → UNKNOWN_SN, mismatch → BAD_SIGNATURE, each counted
 *   against the SN's failed-attempt budget (P-RATE-3).
 * P-CMD-register-4: a registered device registering again gets errcode 0 and the SAME
 *   active_code (never 600002): firmware that lost its cached code recovers, and Lombo treats
 *   both answers alike.
 * P-CMD-register-5: success names the connection's device (P-ST-2) and takes over any older
 *   connection of the same SN (P-CL-4).
 */
export const register: CommandSpec = {
  name: 'register',
  needs: ConnState.Anonymous,
  async run(gw, conn, job) {
    const f = signedRequest(job.body);
    if (typeof f === 'string') return err(WsErr.INVALID_PARAM, f);
    if (!isFresh(f.timestamp, Math.floor(gw.now() / 1000), SignWindow.register)) {
      return err(WsErr.STALE_TIMESTAMP, 'timestamp is more than 300 s away from server time; call get_timestamp');
    }
    const key = snKey(f.sn);
    if (gw.attemptsRefused(key)) return REFUSED_ATTEMPT;
    const d = await gw.repo.registerRow(key);
    if (!d) return gw.failedAttempt(key, err(WsErr.UNKNOWN_SN, 'this SN is not registered with the cloud'));
    // P-PERF-1: the SecretNo is decrypted once per register.
    const secretNo = gw.deps.secrets.open(d.secret_no_enc);
    if (!hexEquals(signRegister(f, secretNo), f.signature)) {
      return gw.failedAttempt(key, err(WsErr.BAD_SIGNATURE, 'device_signature does not match'));
    }
    if (!gw.freshNonce(`register|${key}|${f.nonce}|${f.timestamp}`, conn)) {
      return gw.failedAttempt(key, err(WsErr.BAD_SIGNATURE, 'this signed request was already used by another connection'));
    }
    // P-CMD-register-6: the code was minted with the device, so a fleet's first power-on only reads;
    // rows from before that (or inserted by other tools) get theirs here, once.
    // Finding 10: the database holds the code's hash and a sealed copy, never the code.
    let sealed = d.active_code_enc;
    if (sealed === null) {
      sealed = await gw.repo.issueActiveCode(d.id, activeCodeColumns(gw.deps.secrets, newActiveCode()), gw.now());
    } else if (d.registered_net_at === null) {
      // Written before the reply (finding 9): it ends the seed exchange (P-CMD-get_secret_no-3),
      // and a crash must not forget a registration the device was told about.
      await gw.repo.recordRegistered(d.id, gw.now());
    }
    await gw.adopt(conn, d);
    return ok({ active_code: gw.deps.secrets.open(sealed) });
  },
};
