import { createHmac } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { AttemptResult } from './outbox.js';
import { type CallbackCredentials, readVendorReply, sealCallback, type VendorReply } from './wecom-crypto.js';

/** A WeCom-style callback attempt, with the vendor's reply when there was a readable one. */
export interface WecomAttempt extends AttemptResult {
  vendorReply: VendorReply | null;
  timedOut: boolean;
}

const MAX_REPLY = 64 * 1024;

async function readCapped(res: Response): Promise<string> {
  const text = await res.text();
  return text.length > MAX_REPLY ? text.slice(0, MAX_REPLY) : text;
}

function networkError(e: unknown): { message: string; timedOut: boolean } {
  const err = e as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (err?.name === 'TimeoutError' || err?.name === 'AbortError') return { message: 'timed out', timedOut: true };
  const cause = err?.cause?.code ?? err?.cause?.message;
  return { message: `${err?.message ?? String(e)}${cause ? ` (${cause})` : ''}`, timedOut: false };
}

/**
 * POSTs one encrypted callback (§B4.1): query msg_signature/timestamp/nonce, body
 * `{tousername, encrypt}`. The attempt succeeds on HTTP 2xx with an empty/`success` reply or a
 * reply whose errcode is 0 or absent.
 */
export async function postWecom(
  url: string,
  creds: CallbackCredentials,
  plaintext: string,
  opts: { timestampSec: number; timeoutMs: number },
): Promise<WecomAttempt> {
  const sealed = sealCallback(creds, plaintext, opts.timestampSec);
  const target = new URL(url);
  for (const [k, v] of Object.entries(sealed.query)) target.searchParams.set(k, v);
  const t0 = performance.now();
  let res: Response;
  let text: string;
  try {
    res = await fetch(target, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(sealed.body),
      signal: AbortSignal.timeout(opts.timeoutMs),
      redirect: 'manual',
    });
    text = await readCapped(res);
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
    };
  }
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
    };
  }
  if (reply.kind === 'empty') {
    return { ok: true, httpStatus: res.status, errcode: null, error: null, durationMs, vendorReply: reply, timedOut: false };
  }
  const errcode = reply.value.errcode === undefined ? null : Number(reply.value.errcode);
  const errmsg = typeof reply.value.errmsg === 'string' ? reply.value.errmsg : null;
  const ok = errcode === null || errcode === 0;
  return {
    ok,
    httpStatus: res.status,
    errcode,
    error: ok ? null : `errcode ${errcode}${errmsg ? `: ${errmsg}` : ''}`,
    reply: JSON.stringify(reply.value).slice(0, 2000),
    durationMs,
    vendorReply: reply,
    timedOut: false,
  };
}

/** `v1=<hex hmac-sha256(secret, timestamp + "." + body)>` (docs/callbacks.md). */
export function webhookSignature(secret: string, timestampSec: string, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestampSec}.${body}`).digest('hex')}`;
}

/** POSTs one signed webhook; any 2xx is delivered. */
export async function postWebhook(
  url: string,
  secret: string,
  event: { id: string; body: string },
  opts: { timestampSec: number; timeoutMs: number },
): Promise<AttemptResult> {
  const ts = String(opts.timestampSec);
  const t0 = performance.now();
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'bindery-webhook-id': event.id,
        'bindery-webhook-timestamp': ts,
        'bindery-webhook-signature': webhookSignature(secret, ts, event.body),
      },
      body: event.body,
      signal: AbortSignal.timeout(opts.timeoutMs),
      redirect: 'manual',
    });
    await readCapped(res);
    const durationMs = performance.now() - t0;
    const ok = res.status >= 200 && res.status <= 299;
    return { ok, httpStatus: res.status, errcode: null, error: ok ? null : `HTTP ${res.status}`, durationMs };
  } catch (e) {
    return { ok: false, httpStatus: null, errcode: null, error: networkError(e).message, durationMs: performance.now() - t0 };
  }
}
