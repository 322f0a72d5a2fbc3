import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The WeCom callback crypto (§B4.1, "WXBizJsonMsgCrypt"): AES-256-CBC keyed by the 43-character
 * EncodingAESKey, IV = the key's first 16 bytes, PKCS#7 padding to 32-byte blocks (not AES's 16),
 * plaintext = 16 random bytes ‖ uint32 BE length ‖ message ‖ receiveId, and
 * msg_signature = sha1 of the sorted token, timestamp, nonce and ciphertext.
 */

const BLOCK = 32;

export class WecomCryptoError extends Error {
  override name = 'WecomCryptoError';
}

export function isEncodingAesKey(k: unknown): k is string {
  return typeof k === 'string' && /^[A-Za-z0-9+/]{43}$/.test(k) && Buffer.from(`${k}=`, 'base64').length === 32;
}

/** 43 base64 characters holding 32 random bytes (the trailing "=" is dropped, as WeCom does). */
export function newEncodingAesKey(): string {
  for (;;) {
    const k = randomBytes(32).toString('base64').slice(0, 43);
    // The 43rd character carries 4 padding bits; only keys that round-trip are valid.
    if (isEncodingAesKey(k)) return k;
  }
}

/** A callback Token: WeCom allows up to 32 letters and digits. */
export function newCallbackToken(): string {
  return randomBytes(24)
    .toString('base64')
    .replace(/[^A-Za-z0-9]/g, '')
    .slice(0, 24)
    .padEnd(24, '0');
}

export function aesKeyOf(encodingAesKey: string): Buffer {
  if (!isEncodingAesKey(encodingAesKey)) throw new WecomCryptoError('EncodingAESKey must be 43 base64 characters');
  return Buffer.from(`${encodingAesKey}=`, 'base64');
}

export function msgSignature(token: string, timestamp: string, nonce: string, encrypt: string): string {
  return createHash('sha1').update([token, timestamp, nonce, encrypt].sort().join('')).digest('hex');
}

export function verifySignature(signature: string, token: string, timestamp: string, nonce: string, encrypt: string): boolean {
  const want = Buffer.from(msgSignature(token, timestamp, nonce, encrypt), 'utf8');
  const got = Buffer.from(String(signature), 'utf8');
  return want.length === got.length && timingSafeEqual(want, got);
}

export function encryptMessage(encodingAesKey: string, message: string, receiveId: string, random = randomBytes(16)): string {
  const key = aesKeyOf(encodingAesKey);
  const msg = Buffer.from(message, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(msg.length);
  const plain = Buffer.concat([random, len, msg, Buffer.from(receiveId, 'utf8')]);
  const pad = BLOCK - (plain.length % BLOCK);
  const cipher = createCipheriv('aes-256-cbc', key, key.subarray(0, 16));
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(Buffer.concat([plain, Buffer.alloc(pad, pad)])), cipher.final()]).toString('base64');
}

export function decryptMessage(encodingAesKey: string, encrypt: string): { message: string; receiveId: string } {
  const key = aesKeyOf(encodingAesKey);
  let plain: Buffer;
  try {
    const d = createDecipheriv('aes-256-cbc', key, key.subarray(0, 16));
    d.setAutoPadding(false);
    plain = Buffer.concat([d.update(Buffer.from(encrypt, 'base64')), d.final()]);
  } catch {
    throw new WecomCryptoError('the ciphertext does not decrypt with this EncodingAESKey');
  }
  const pad = plain.at(-1) ?? 0;
  if (pad < 1 || pad > BLOCK || plain.length < 20 + pad) throw new WecomCryptoError('bad padding');
  const body = plain.subarray(16, plain.length - pad);
  const len = body.readUInt32BE(0);
  if (4 + len > body.length) throw new WecomCryptoError('bad message length');
  return {
    message: body.subarray(4, 4 + len).toString('utf8'),
    receiveId: body.subarray(4 + len).toString('utf8'),
  };
}

export interface CallbackCredentials {
  token: string;
  encodingAesKey: string;
  /** model_id for model URLs, the provider id (our vendor id) for the provider general URL. */
  receiveId: string;
}

export interface SealedCallback {
  query: { msg_signature: string; timestamp: string; nonce: string };
  body: { tousername: string; encrypt: string };
}

/** One outgoing callback: the outer JSON body and its query string. */
export function sealCallback(c: CallbackCredentials, plaintext: string, timestampSec: number): SealedCallback {
  const encrypt = encryptMessage(c.encodingAesKey, plaintext, c.receiveId);
  const timestamp = String(timestampSec);
  const nonce = randomBytes(8).toString('hex');
  return {
    query: { msg_signature: msgSignature(c.token, timestamp, nonce, encrypt), timestamp, nonce },
    body: { tousername: c.receiveId, encrypt },
  };
}

export type VendorReply =
  | { kind: 'empty' }
  | { kind: 'json'; value: Record<string, unknown>; encrypted: boolean }
  /** wrongKeys: an encrypted reply that does not verify under this endpoint's Token, EncodingAESKey and receiveId. */
  | { kind: 'invalid'; reason: string; wrongKeys?: true };

/**
 * Reads a vendor's passive reply as tolerantly as the reference allows: an empty body or `success`
 * means processed; an encrypted `{encrypt, msgsignature, timestamp, nonce}` is verified and opened;
 * any other JSON object is taken as the plain reply (vendors commonly answer `{"errcode":0}` unencrypted).
 * Whatever else comes back is invalid.
 */
export function readVendorReply(c: CallbackCredentials, raw: string): VendorReply {
  const text = raw.trim();
  if (text === '' || text.toLowerCase() === 'success') return { kind: 'empty' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { kind: 'invalid', reason: 'the reply is neither empty, "success" nor JSON' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { kind: 'invalid', reason: 'the reply is not a JSON object' };
  }
  const o = parsed as Record<string, unknown>;
  if (typeof o.encrypt !== 'string') return { kind: 'json', value: o, encrypted: false };
  const sig = o.msgsignature ?? o.msg_signature;
  if (typeof sig !== 'string' || !verifySignature(sig, c.token, String(o.timestamp ?? ''), String(o.nonce ?? ''), o.encrypt)) {
    return { kind: 'invalid', reason: 'the encrypted reply has a wrong msgsignature', wrongKeys: true };
  }
  let opened: { message: string; receiveId: string };
  try {
    opened = decryptMessage(c.encodingAesKey, o.encrypt);
  } catch (e) {
    return { kind: 'invalid', reason: `the encrypted reply does not decrypt: ${(e as Error).message}`, wrongKeys: true };
  }
  if (opened.receiveId !== c.receiveId)
    return { kind: 'invalid', reason: 'the encrypted reply names another receiver', wrongKeys: true };
  const inner = opened.message.trim();
  if (inner === '' || inner.toLowerCase() === 'success') return { kind: 'empty' };
  try {
    const v = JSON.parse(inner) as unknown;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
      return { kind: 'json', value: v as Record<string, unknown>, encrypted: true };
    }
  } catch {
    // fall through
  }
  return { kind: 'invalid', reason: 'the decrypted reply is not a JSON object' };
}
