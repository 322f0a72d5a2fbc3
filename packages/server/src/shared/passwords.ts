import { randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const scrypt = promisify(scryptCb) as (pw: string, salt: Buffer, len: number, opts: object) => Promise<Buffer>;
const N = 16384;
const R = 8;
const P = 1;

/**
 * The key derivation behind every hash and check. An object rather than a bare function so a test
 * can count the derivations a login runs (an unknown username must cost one, like a known one).
 */
export const kdf = {
  derive(password: string, salt: Buffer, len: number, opts: { N: number; r: number; p: number }): Promise<Buffer> {
    return scrypt(password, salt, len, opts);
  },
};

/** scrypt$N$r$p$salt$hash, all parameters stored so they can be raised later. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await kdf.derive(password, salt, 32, { N, r: R, p: P });
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64url')}$${hash.toString('base64url')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [alg, n, r, p, salt, hash] = stored.split('$');
  if (alg !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64url');
  const got = await kdf.derive(password, Buffer.from(salt, 'base64url'), expected.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
  });
  return timingSafeEqual(expected, got);
}

let dummy: Promise<string> | undefined;

/**
 * A hash of a random password nobody knows, made once per process with the current parameters.
 * Checking a password for an unknown username against it costs the same scrypt as a real check,
 * so the answer's timing does not tell which usernames exist.
 */
export function dummyPasswordHash(): Promise<string> {
  dummy ??= hashPassword(randomBytes(24).toString('base64url'));
  return dummy;
}
