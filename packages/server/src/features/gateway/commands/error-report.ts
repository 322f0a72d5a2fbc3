import { WsErr } from '@bindery/protocol';
import { ConnState } from '../connection.js';
import { GATEWAY_PRINCIPAL } from '../principal.js';
import { type CommandSpec, err, ok } from './types.js';

/** errcode as an integer: a JSON number or a digit string (firmware sends either). */
function intOf(v: unknown): number | null {
  if (typeof v === 'number') return Number.isSafeInteger(v) ? v : null;
  if (typeof v === 'string' && /^-?\d{1,15}$/.test(v)) return Number(v);
  return null;
}

/**
 * `error_report` (§A5.10).
 * P-CMD-error_report-1: needs a registered connection (P-ST-3); body errcode (integer,
 *   vendor-defined), errmsg (string; cut at 1024 characters; missing = "").
 * P-CMD-error_report-2: stored with the device (listed at /api/v1/devices/:sn/error-reports)
 *   and counted in bindery_device_error_reports_total.
 * P-RATE-4: at most 120 stored per SN per hour; more get RATE_LIMITED.
 */
export const errorReport: CommandSpec = {
  name: 'error_report',
  needs: ConnState.Registered,
  async run(gw, conn, job) {
    const code = intOf(job.body.errcode);
    if (code === null) return err(WsErr.INVALID_PARAM, 'errcode must be an integer');
    const msg = job.body.errmsg ?? '';
    if (typeof msg !== 'string') return err(WsErr.INVALID_PARAM, 'errmsg must be a string');
    const device = conn.device!;
    if (!(await gw.allowSn('gw-error-report', gw.limits.errorReportsPerHour, 3600, device.snKey))) {
      return err(WsErr.RATE_LIMITED, 'too many error reports for this device; retry later');
    }
    await gw.services.deviceLogs.recordError(GATEWAY_PRINCIPAL, device, code, msg);
    gw.metrics.errorReports.inc();
    return ok();
  },
};
