import { createHash, randomBytes } from 'node:crypto';

const ID_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

/** Random, prefixed, lowercase ids: `ven_8k2q…`. 16 chars of base32 = 80 bits. */
export function newId(prefix: string, length = 16): string {
  const b = randomBytes(length);
  let s = '';
  for (let i = 0; i < length; i++) s += ID_ALPHABET[b[i]! & 31];
  return `${prefix}_${s}`;
}

/** A bearer secret: URL-safe and unguessable. */
export function newToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** High-entropy secrets (tokens, tickets) are stored as their SHA-256. */
export function sha256Hex(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}

/** Per-device SecretNo: 32 lowercase hex characters (§A3). */
export function newSecretNo(): string {
  return randomBytes(16).toString('hex');
}

/** Static bind code: 128 random bits, URL-safe. */
export function newHwCode(): string {
  return randomBytes(16).toString('base64url');
}

/**
 * §A3: active_code looks like 64 URL-safe base64 characters (48 random bytes). Minted with the
 * device (P-CMD-register-6), so `register` answers it without a write.
 */
export function newActiveCode(): string {
  return randomBytes(48).toString('base64url');
}
