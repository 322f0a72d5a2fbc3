import { timingSafeEqual } from 'node:crypto';
import { isValidSn, numericText, WsErr } from '@bindery/protocol';
import type { Connection, ConnState, Job } from '../connection.js';
import type { Gateway } from '../gateway.js';

export interface CommandResult {
  errcode: number;
  errmsg: string;
  body?: Record<string, unknown>;
  /** A binary reply frame (§A1.2) sent instead of a JSON reply. */
  binary?: Buffer;
  /** Runs after the reply has been sent (e.g. pending commands after subscribe_corp). */
  after?: () => Promise<void> | void;
}

/** One device→cloud command (§A5). Each lives in its own file and cites its rules. */
export interface CommandSpec {
  name: string;
  /** The lowest connection state the command needs (P-ST-3). */
  needs: ConnState;
  /** Answered at once even while an earlier command of the connection runs: it touches no state. */
  immediate?: boolean;
  run(gw: Gateway, conn: Connection, job: Job): Promise<CommandResult> | CommandResult;
}

export function ok(body?: Record<string, unknown>): CommandResult {
  return body === undefined ? { errcode: WsErr.OK, errmsg: 'ok' } : { errcode: WsErr.OK, errmsg: 'ok', body };
}

export function err(errcode: number, errmsg: string): CommandResult {
  return { errcode, errmsg };
}

/** P-RATE-3: the answer while an SN's failed-attempt budget is used up, whatever the signature. */
export const REFUSED_ATTEMPT: CommandResult = {
  errcode: WsErr.RATE_LIMITED,
  errmsg: 'too many failed attempts for this SN; retry in a minute',
};

export interface SignedRequest {
  sn: string;
  nonce: string;
  timestamp: string;
  signature: string;
}

/**
 * The signed body of get_secret_no and register (P-SIG-4): nonce and timestamp as numbers or
 * digit strings, used as their exact decimal text (P-F-4); a 40-hex signature in either case.
 */
export function signedRequest(body: Record<string, unknown>): SignedRequest | string {
  if (!isValidSn(body.sn)) return 'sn must be 1–128 characters of 0-9, A-Z, a-z';
  const nonce = numericText(body.nonce, 20);
  if (nonce === null) return 'nonce must be a non-negative integer of at most 20 digits (number or string)';
  const timestamp = numericText(body.timestamp, 12);
  if (timestamp === null) return 'timestamp must be unix seconds (number or string)';
  const sig = body.device_signature;
  if (typeof sig !== 'string' || !/^[0-9a-fA-F]{40}$/.test(sig)) return 'device_signature must be 40 hex characters';
  return { sn: body.sn, nonce, timestamp, signature: sig };
}

/** An optional string field: undefined when absent, the string when valid, null when invalid. */
export function optString(v: unknown, max: number): string | undefined | null {
  if (v === undefined || v === null) return undefined;
  return typeof v === 'string' && v.length <= max ? v : null;
}

/** Constant-time, case-sensitive comparison of two credentials (active_code, secret). */
export function safeEqual(expected: string, given: string): boolean {
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(given, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}
