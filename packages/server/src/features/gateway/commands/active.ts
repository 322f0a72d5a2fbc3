import { WsErr } from '@bindery/protocol';
import { hashActiveCode } from '../../../adapters/secrets/active-code.js';
import { ConnState } from '../connection.js';
import type { AuthRow } from '../gateway.repo.js';
import { type CommandSpec, err, ok, optString, safeEqual } from './types.js';

/**
 * `active` (§A5.4): the device trades its active_code for its secret once it is bound.
 * P-CMD-active-1: body active_code. A code that is not the device's → INVALID_ACTIVE_CODE
 *   (600003; firmware registers again).
 * P-CMD-active-2: not bound yet → NOT_YET_BOUND (600103); the device keeps polling every 5 s.
 * P-CMD-active-3: bound → errcode 0 and body.secret; the same secret on every call until the
 *   device is unbound (a new binding issues a new one).
 * P-CMD-active-4: allowed before `register` on this connection: the active_code names the
 *   device and the connection adopts it as register would (P-ST-2).
 */
export const active: CommandSpec = {
  name: 'active',
  needs: ConnState.Anonymous,
  async run(gw, conn, job) {
    const code = optString(job.body.active_code, 256);
    if (!code) return err(WsErr.INVALID_PARAM, 'active_code must be a string');
    let d: AuthRow | undefined;
    // Only the code's SHA-256 is stored (finding 10).
    const codeHash = hashActiveCode(code);
    if (conn.device) {
      d = await gw.repo.authRow(conn.device.id);
      if (!d?.active_code || !safeEqual(d.active_code, codeHash)) {
        return err(WsErr.INVALID_ACTIVE_CODE, 'active_code is not valid for this device; register again');
      }
    } else {
      d = await gw.repo.authRowByActiveCode(codeHash);
      if (!d) return err(WsErr.INVALID_ACTIVE_CODE, 'active_code is not valid; register again');
      await gw.adopt(conn, d);
    }
    if (d.secret_enc === null) return err(WsErr.NOT_YET_BOUND, 'the device is not bound yet; poll again in 5 s');
    const secret = gw.deps.secrets.open(d.secret_enc);
    // Recorded once per binding, not on every poll, and before the reply (finding 9): a crash
    // after the device got its secret must not leave activated_at empty.
    if (d.activated_at === null || (d.bound_at !== null && d.activated_at < d.bound_at)) {
      await gw.recordActivated(d.id);
      gw.fact('device.activated', { sn: d.sn, modelId: d.model_id, vendorId: d.vendor_id });
    }
    if (conn.state < ConnState.Active) gw.setState(conn, ConnState.Active);
    conn.secret = secret;
    return ok({ secret });
  },
};
