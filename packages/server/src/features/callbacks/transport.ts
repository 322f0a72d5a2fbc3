import { createHmac } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { OutboundError, type OutboundReply, outboundRequest } from '../../adapters/outbound/client.js';
import type { OutboundPolicy } from '../../adapters/outbound/policy.js';
import type { AttemptResult } from './outbox.js';
import { type CallbackCredentials, readVendorReply, sealCallback, type VendorReply } from './wecom-crypto.js';

/** A WeCom-style callback attempt, with the vendor's reply when there was a readable one. */
export interface WecomAttempt extends AttemptResult {
  vendorReply: VendorReply | null;
  timedOut: boolean;
  /** The policy refused the URL (OUTBOUND_URL_REFUSED). */
  refused: boolean;
}

/** Reply bytes read from a target at most (a WeCom reply is a small JSON object). */
const MAX_REPLY = 64 * 1024;
/**
 * What the delivery log keeps of a reply: at most this many bytes of a JSON object the vendor
 * answered with (user_scan's online_status). Raw bodies are never logged: a target's reply is
 * shown to whoever set its URL.
 */
export const REPLY_EXCERPT_BYTES = 256;
const ERRMSG_CHARS = 100;

function excerpt(text: string, max: number): string {
  const b = Buffer.from(text, 'utf8');
  return b.length <= max
    ? text
    : b
        .subarray(0, max)
        .toString('utf8')
        .replace(/\uFFFD$/, '');
}

/** A failure in the log's words: the refusal code and reason, or 'timed out' / 'connection failed'. */
function networkError(e: unknown): { message: string; timedOut: boolean; refused: boolean } {
  if (e instanceof OutboundError) return { message: e.message, timedOut: e.kind === 'timeout', refused: e.kind === 'refused' };
  return { message: 'connection failed', timedOut: false, refused: false };
}

/**
 * POSTs one encrypted callback (§B4.1): query msg_signature/timestamp/nonce, body
 * `{tousername, encrypt}`. The attempt succeeds on HTTP 2xx with an empty/`success` reply or a
 * reply whose errcode is 0 or absent.
 */
export async function postWecom(
  policy: OutboundPolicy,
  url: string,
  creds: CallbackCredentials,
  plaintext: string,
  opts: { timestampSec: number; timeoutMs: number },
): Promise<WecomAttempt> {
  const sealed = sealCallback(creds, plaintext, opts.timestampSec);
  const target = new URL(url);
  for (const [k, v] of Object.entries(sealed.query)) target.searchParams.set(k, v);
  const t0 = performance.now();
  let res: OutboundReply;
  try {
    res = await outboundRequest(policy, target.toString(), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(sealed.body),
      timeoutMs: opts.timeoutMs,
      maxBytes: MAX_REPLY,
    });
  } catch (e) {
    const n = networkError(e);
    return {
      ok: false,
      httpStatus: null,
      errcode: null,
      error: n.message,
      durationMs: performance.now() - t0,
      vendorReply: null,
      timedOut: n.timedOut,
      refused: n.refused,
    };
  }
  const text = res.body;
  const durationMs = performance.now() - t0;
  // The deadline counts the whole exchange; a reply that arrives late is a failure (§B4.1).
  if (durationMs > opts.timeoutMs) {
    return {
      ok: false,
      httpStatus: res.status,
      errcode: null,
      error: 'timed out',
      durationMs,
      vendorReply: null,
      timedOut: true,
      refused: false,
    };
  }
  if (res.status < 200 || res.status > 299) {
    return {
      ok: false,
      httpStatus: res.status,
      errcode: null,
      error: `HTTP ${res.status}`,
      durationMs,
      vendorReply: null,
      timedOut: false,
      refused: false,
    };
  }
  const reply = readVendorReply(creds, text);
  if (reply.kind === 'invalid') {
    return {
      ok: false,
      httpStatus: res.status,
      errcode: null,
      error: reply.reason,
      durationMs,
      vendorReply: reply,
      timedOut: false,
      refused: false,
    };
  }
  if (reply.kind === 'empty') {
    return {
      ok: true,
      httpStatus: res.status,
      errcode: null,
      error: null,
      durationMs,
      vendorReply: reply,
      timedOut: false,
      refused: false,
    };
  }
  const errcode = reply.value.errcode === undefined ? null : Number(reply.value.errcode);
  const errmsg = typeof reply.value.errmsg === 'string' ? reply.value.errmsg.slice(0, ERRMSG_CHARS) : null;
  const ok = errcode === null || errcode === 0;
  return {
    ok,
    httpStatus: res.status,
    errcode,
    error: ok ? null : `errcode ${errcode}${errmsg ? `: ${errmsg}` : ''}`,
    reply: excerpt(JSON.stringify(reply.value), REPLY_EXCERPT_BYTES),
    durationMs,
    vendorReply: reply,
    timedOut: false,
    refused: false,
  };
}

/** `v1=<hex hmac-sha256(secret, timestamp + "." + body)>` (docs/callbacks.md). */
export function webhookSignature(secret: string, timestampSec: string, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestampSec}.${body}`).digest('hex')}`;
}

/** POSTs one signed webhook; any 2xx is delivered. */
export async function postWebhook(
  policy: OutboundPolicy,
  url: string,
  secret: string,
  event: { id: string; body: string },
  opts: { timestampSec: number; timeoutMs: number },
): Promise<AttemptResult> {
  const ts = String(opts.timestampSec);
  const t0 = performance.now();
  try {
    const res = await outboundRequest(policy, url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'bindery-webhook-id': event.id,
        'bindery-webhook-timestamp': ts,
        'bindery-webhook-signature': webhookSignature(secret, ts, event.body),
      },
      body: event.body,
      timeoutMs: opts.timeoutMs,
      maxBytes: MAX_REPLY,
    });
    const durationMs = performance.now() - t0;
    const ok = res.status >= 200 && res.status <= 299;
    return { ok, httpStatus: res.status, errcode: null, error: ok ? null : `HTTP ${res.status}`, durationMs };
  } catch (e) {
    return { ok: false, httpStatus: null, errcode: null, error: networkError(e).message, durationMs: performance.now() - t0 };
  }
}
