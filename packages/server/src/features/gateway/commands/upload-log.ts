import { WsErr } from '@bindery/protocol';
import { ConnState } from '../connection.js';
import { GATEWAY_PRINCIPAL } from '../principal.js';
import { type CommandSpec, err, ok } from './types.js';

/**
 * `upload_log` (§A5.8), the binary request of §A1.2.
 * P-CMD-upload_log-1: only as a binary frame (P-B-2); as a text frame → INVALID_PARAM.
 * P-CMD-upload_log-2: at most 4 MiB of log; more → PAYLOAD_TOO_LARGE and the connection stays.
 * P-CMD-upload_log-3: stored under BINDERY_DATA_DIR/device-logs; the newest 20 per device are
 *   kept; the JSON reply carries the binary frame's req_id.
 * P-RATE-4: at most 30 uploads per SN per hour.
 */
export const uploadLog: CommandSpec = {
  name: 'upload_log',
  needs: ConnState.Subscribed,
  async run(gw, conn, job) {
    if (job.data === null) return err(WsErr.INVALID_PARAM, 'upload_log is a binary frame (§A1.2), not JSON');
    if (job.data.length > gw.limits.maxLogBytes) {
      return err(WsErr.PAYLOAD_TOO_LARGE, `log files may be at most ${gw.limits.maxLogBytes} bytes`);
    }
    const device = conn.device!;
    if (!(await gw.allowSn('gw-upload', gw.limits.uploadsPerHour, 3600, device.snKey))) {
      return err(WsErr.RATE_LIMITED, 'too many log uploads for this device; retry later');
    }
    await gw.services.deviceLogs.storeLog(GATEWAY_PRINCIPAL, device, job.reqId, job.data, gw.limits.logsKeptPerDevice);
    gw.metrics.logsStored.inc();
    return ok();
  },
};
