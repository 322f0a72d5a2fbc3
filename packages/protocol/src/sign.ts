import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * WeCom hardware signature (docs/protocol.md P-SIG-1): sha1 over the *values* sorted in
 * byte order and joined with no separator, as lowercase hex. Numbers enter as their
 * decimal text, so callers pass strings only (a 64-bit nonce must never be a double).
 */
export function wecomSign(values: readonly string[]): string {
  // Default JS sort compares UTF-16 code units, which equals byte order for ASCII values.
  const joined = [...values].sort().join('');
  return createHash('sha1').update(joined, 'utf8').digest('hex');
}

/** Constant-time, case-insensitive comparison of two hex signatures (P-SIG-2). */
export function hexEquals(expected: string, given: string): boolean {
  if (typeof given !== 'string' || expected.length !== given.length) return false;
  const a = Buffer.from(expected.toLowerCase(), 'latin1');
  const b = Buffer.from(given.toLowerCase(), 'latin1');
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The purpose constants that keep a signature from being replayed for another use. */
export const SignPurpose = {
  secretNo: 'secret_no',
  register: 'register',
  bindQr: 'qrcode',
  loginQr: 'dynamic_login',
} as const;

export interface SignedFields {
  sn: string;
  timestamp: string;
  nonce: string;
}

export function signSecretNoRequest(f: SignedFields, seedSecretNo: string): string {
  return wecomSign([f.sn, seedSecretNo, f.timestamp, f.nonce, SignPurpose.secretNo]);
}

export function signRegister(f: SignedFields, secretNo: string): string {
  return wecomSign([f.sn, secretNo, f.timestamp, f.nonce, SignPurpose.register]);
}

export function signBindQr(f: SignedFields, secretNo: string): string {
  return wecomSign([f.sn, secretNo, f.timestamp, f.nonce, SignPurpose.bindQr]);
}

export function signLoginQr(f: SignedFields & { state: string }, secretNo: string): string {
  return wecomSign([f.sn, secretNo, f.timestamp, f.nonce, SignPurpose.loginQr, f.state]);
}

/** Freshness windows in seconds (P-SIG-3). */
export const SignWindow = {
  register: 300,
  secretNo: 300,
  qr: 1800,
  cloudQr: 300,
} as const;

/** True when |now - ts| is within the window. `ts` is decimal text. */
export function isFresh(ts: string, nowSec: number, windowSec: number): boolean {
  if (!/^\d{1,12}$/.test(ts)) return false;
  return Math.abs(nowSec - Number(ts)) <= windowSec;
}
