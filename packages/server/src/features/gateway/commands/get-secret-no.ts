import { hexEquals, isFresh, SignWindow, signSecretNoRequest, snKey, WsErr } from '@bindery/protocol';
import { ConnState } from '../connection.js';
import { type CommandSpec, err, ok, REFUSED_ATTEMPT, signedRequest } from './types.js';

/**
 * `get_secret_no` (§A5.1): a device flashed with its model's seed SecretNo exchanges it for
 * its own.
 * P-CMD-get_secret_no-1: body sn, nonce, timestamp, device_signature; 300 s window (P-SIG-3).
 * P-CMD-get_secret_no-2: signature = P-SIG-1 over (sn, seedSecretNo, timestamp, nonce, "secret_no").
 * P-CMD-get_secret_no-3: refused with SECRET_NO_REFUSED once the device has registered over the
 *   network (registered_net_at is set), and for models without a shared seed.
 */
export const getSecretNo: CommandSpec = {
  name: 'get_secret_no',
  needs: ConnState.Anonymous,
  async run(gw, conn, job) {
    const f = signedRequest(job.body);
    if (typeof f === 'string') return err(WsErr.INVALID_PARAM, f);
    if (!isFresh(f.timestamp, Math.floor(gw.now() / 1000), SignWindow.secretNo)) {
      return err(WsErr.STALE_TIMESTAMP, 'timestamp is more than 300 s away from server time; call get_timestamp');
    }
    const key = snKey(f.sn);
    if (gw.attemptsRefused(key)) return REFUSED_ATTEMPT;
    const d = await gw.repo.registerRow(key);
    if (!d) return gw.failedAttempt(key, err(WsErr.UNKNOWN_SN, 'this SN is not registered with the cloud'));
    if (!d.seed_secret_no_enc) return err(WsErr.SECRET_NO_REFUSED, "this device's model has no shared seed SecretNo");
    const seed = gw.deps.secrets.open(d.seed_secret_no_enc);
    if (!hexEquals(signSecretNoRequest(f, seed), f.signature)) {
      return gw.failedAttempt(key, err(WsErr.BAD_SIGNATURE, 'device_signature does not match'));
    }
    if (d.registered_net_at !== null) {
      return err(WsErr.SECRET_NO_REFUSED, 'the device has registered; get_secret_no is no longer allowed');
    }
    if (!gw.freshNonce(`secret_no|${key}|${f.nonce}|${f.timestamp}`, conn)) {
      return err(WsErr.BAD_SIGNATURE, 'this signed request was already used by another connection');
    }
    return ok({ secret_no: gw.deps.secrets.open(d.secret_no_enc) });
  },
};
