import { WsErr } from '@bindery/protocol';
import { ConnState } from '../connection.js';
import { type CommandSpec, err, ok, optString, safeEqual } from './types.js';

/**
 * `subscribe_corp` (§A5.5): the login.
 * P-CMD-subscribe_corp-1: needs a registered connection (P-ST-3); `active` may be skipped by a
 *   device that kept its secret.
 * P-CMD-subscribe_corp-2: body secret (required), firmware_version (optional, ≤ 64 chars,
 *   stored), ext_args (accepted and ignored).
 * P-CMD-subscribe_corp-3: unbound device or wrong secret → NOT_AUTHORIZED (600004; the
 *   firmware wipes its secret and activates again).
 * P-CMD-subscribe_corp-4: subscribing again is answered 0 (never 600045).
 * P-CMD-subscribe_corp-5: after the reply, the device's pending durable commands follow, once
 *   (P-PUSH-5).
 */
export const subscribeCorp: CommandSpec = {
  name: 'subscribe_corp',
  needs: ConnState.Registered,
  async run(gw, conn, job) {
    const secret = optString(job.body.secret, 256);
    if (!secret) return err(WsErr.INVALID_PARAM, 'secret must be a string');
    const fw = optString(job.body.firmware_version, 64);
    if (fw === null) return err(WsErr.INVALID_PARAM, 'firmware_version must be a string of at most 64 characters');
    const device = conn.device!;
    // Right after `active` the connection knows the secret; otherwise it is read (P-PERF-1).
    let current = conn.secret;
    conn.secret = null;
    if (current === null) {
      const d = await gw.repo.authRow(device.id);
      current = d?.secret_enc ? gw.deps.secrets.open(d.secret_enc) : null;
    }
    if (current === null) return err(WsErr.NOT_AUTHORIZED, 'the device is not bound; activate it again');
    if (!safeEqual(current, secret)) {
      return err(WsErr.NOT_AUTHORIZED, 'the secret is not valid (the device was unbound or re-bound); activate again');
    }
    gw.setState(conn, ConnState.Subscribed);
    gw.markOnline(conn, fw ?? null);
    // Firmware campaigns judge an upgrade by the version a device comes back with (features/campaigns).
    void gw.services.events
      .emit({
        type: 'device.subscribed',
        firmwareVersion: fw ?? null,
        sn: device.sn,
        modelId: device.modelId,
        vendorId: device.vendorId,
        at: gw.now(),
      })
      .catch(() => {});
    return { ...ok(), after: () => gw.deliverPending(conn) };
  },
};
