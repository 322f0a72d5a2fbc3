import type { Connection } from '../connection.js';
import type { Gateway } from '../gateway.js';

/** A device's answer to a push: reply-shaped (P-F-3), keyed by the push's req_id. */
export interface PushReply {
  reqId: string;
  errcode: number;
  errmsg: string;
}

/** Durable commands' ids (`cmd_…`, P-PUSH-0) are about 30 characters; longer req_ids name nothing stored. */
const MAX_COMMAND_ID = 64;

/** errcode as an integer: a JSON number or a digit string (firmware sends either, as for error_report). */
function intOf(v: unknown): number | null {
  if (typeof v === 'number') return Number.isSafeInteger(v) ? v : null;
  if (typeof v === 'string' && /^-?\d{1,15}$/.test(v)) return Number(v);
  return null;
}

/**
 * P-PUSH-7: the frame as a device's answer to a push, or null when it is not one (P-F-5 then answers
 * it MALFORMED_FRAME as before): no `cmd` — firmware tells replies from requests by that alone, as it
 * does our replies (P-F-3) — a string `headers.req_id` and an integer `errcode`; `errmsg` is optional
 * (anything but a string reads as none).
 */
export function asPushReply(v: unknown): PushReply | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const f = v as Record<string, unknown>;
  if (f.cmd !== undefined) return null;
  const h = f.headers as Record<string, unknown> | undefined;
  if (typeof h !== 'object' || h === null || typeof h.req_id !== 'string') return null;
  const errcode = intOf(f.errcode);
  if (errcode === null) return null;
  return { reqId: h.req_id, errcode, errmsg: typeof f.errmsg === 'string' ? f.errmsg : '' };
}

/**
 * The one handler of a device's answer to a push (P-PUSH-7). The reference asks no device to answer
 * pushes and Lombo never does (§A1.1, UNCONFIRMED whether the real cloud expects it), so an answer is
 * optional and never awaited (P-PUSH-0), and it is never answered itself: firmware routes a cmd-less
 * frame by req_id, and a reply to its reply would be one it never asked for.
 * - errcode 0: the device took the command; it stays `delivered`.
 * - non-zero: if the req_id is a durable command delivered to this device (P-PUSH-5), the command
 *   ends `failed` with the errcode and the errmsg (cut at 256 characters; the first failure counts).
 *   Pushes that are not stored (`push_…` ids), other devices' commands, commands not delivered yet
 *   and connections that have not named their device change nothing.
 */
export const pushReply = {
  name: 'push reply',
  async run(gw: Gateway, conn: Connection, r: PushReply): Promise<void> {
    const device = conn.device;
    if (r.errcode === 0 || !device) return;
    if (!r.reqId.startsWith('cmd_') || r.reqId.length > MAX_COMMAND_ID) return;
    const reason = r.errmsg === '' ? `errcode ${r.errcode}` : r.errmsg;
    const cmd = await gw.services.pushes.commands.fail(r.reqId, device.id, gw.now(), r.errcode, reason);
    if (cmd === null) return;
    gw.metrics.pushes.inc({ cmd, outcome: 'failed' });
    gw.announceCommands(device.sn, 'command.failed');
  },
};
