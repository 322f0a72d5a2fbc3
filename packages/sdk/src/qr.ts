import { randomFillSync } from 'node:crypto';
import { dynamicBindUrl, dynamicLoginUrl, signBindQr, signLoginQr } from '@bindery/protocol';
import QRCode from 'qrcode';

/**
 * The QR codes a device shows on its screen (§A8), signed with its SecretNo (§A4). The server
 * accepts them for 1800 s from `timestamp`; firmware should refresh the bind code every 10 min
 * and the login code every 15 min.
 */
export interface QrSigningInput {
  /** Bindery's public URL (where the real platform has open.work.weixin.qq.com). */
  publicUrl: string;
  sn: string;
  secretNo: string;
  /** Unix seconds, ideally synced with get_timestamp. */
  timestampSec: number;
  /** uint64 as decimal text. */
  nonce?: string;
}

// Nonces are drawn from a pool of random bytes refilled 512 at a time: one randomBytes(8) call per
// signed request cost a simulated fleet as much CPU as its whole JSON encoding.
const NONCE_POOL = Buffer.alloc(4096);
let noncePoolAt = NONCE_POOL.length;

/** A uint64 nonce as decimal text (never a double: 64-bit values don't fit one). */
export function randomNonce(): string {
  if (noncePoolAt === NONCE_POOL.length) {
    randomFillSync(NONCE_POOL);
    noncePoolAt = 0;
  }
  const n = NONCE_POOL.readBigUInt64BE(noncePoolAt);
  noncePoolAt += 8;
  return n.toString();
}

/** Dynamic bind QR: `…/connect/hardware?sn&timestamp&nonce&signature&type=qrcode`. */
export function buildBindQrUrl(i: QrSigningInput): string {
  const f = { sn: i.sn, timestamp: String(Math.floor(i.timestampSec)), nonce: i.nonce ?? randomNonce() };
  return dynamicBindUrl(i.publicUrl, { ...f, signature: signBindQr(f, i.secretNo) });
}

/** Dynamic login QR: `…&type=dynamic_login&state=…`; scanning it sends `push_user_scan` with this state. */
export function buildLoginQrUrl(i: QrSigningInput & { state: string }): string {
  const f = { sn: i.sn, timestamp: String(Math.floor(i.timestampSec)), nonce: i.nonce ?? randomNonce(), state: i.state };
  return dynamicLoginUrl(i.publicUrl, { ...f, signature: signLoginQr(f, i.secretNo) });
}

/** The code drawn with half-block characters, for a terminal a phone can scan. */
export function renderTerminalQr(text: string): Promise<string> {
  return QRCode.toString(text, { type: 'terminal', small: true, errorCorrectionLevel: 'M' });
}
