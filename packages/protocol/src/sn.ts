import { randomBytes } from 'node:crypto';

/** SN rules of §B2 (docs/protocol.md P-SN-1): 1–128 chars of [0-9A-Za-z]; unique ignoring case. */
export const SN_RE = /^[0-9A-Za-z]{1,128}$/;

export function isValidSn(sn: unknown): sn is string {
  return typeof sn === 'string' && SN_RE.test(sn);
}

/** The key SNs are unique under: lookups and uniqueness ignore case (P-SN-2). */
export function snKey(sn: string): string {
  return sn.toLowerCase();
}

const ALNUM = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';

/**
 * The first check character (P-SN-3): Luhn mod 36 over the SN's characters, case-insensitively.
 * Its alphabet is all of [0-9A-Z], so it prints look-alikes (`BDG000018O`: O or 0?). New SNs use
 * `checkChar` (P-SN-4); SNs printed with this one keep validating (`hasValidCheckChar`).
 */
export function legacyCheckChar(body: string): string {
  const n = ALNUM.length;
  let factor = 2;
  let sum = 0;
  for (let i = body.length - 1; i >= 0; i--) {
    const cp = ALNUM.indexOf(body[i]!.toUpperCase());
    if (cp < 0) throw new Error(`character ${body[i]} is not alphanumeric`);
    let addend = factor * cp;
    factor = factor === 2 ? 1 : 2;
    addend = Math.floor(addend / n) + (addend % n);
    sum += addend;
  }
  return ALNUM[(n - (sum % n)) % n]!;
}

/**
 * The 31 characters a check character is drawn from (P-SN-4): Crockford base32 without Z, so no
 * I, L, O, U or Z — nothing to mistake for 1, 0 or 2. 31 is prime, which is what lets one
 * character catch the errors below.
 */
export const CHECK_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXY';
const CHECK_MOD = CHECK_ALPHABET.length;
/** Typed look-alikes of check characters, read as what they resemble (Crockford's decoding). */
const CHECK_LOOKALIKE: Record<string, string> = { O: '0', I: '1', L: '1', Z: '2' };

/** Σ value(c) · 3^(distance from the check position) mod 31; 3 generates every non-zero residue mod 31. */
function weightedSum(body: string): number {
  let sum = 0;
  let w = 3;
  for (let i = body.length - 1; i >= 0; i--) {
    const v = ALNUM.indexOf(body[i]!.toUpperCase());
    if (v < 0) throw new Error(`character ${body[i]} is not alphanumeric`);
    sum = (sum + v * w) % CHECK_MOD;
    w = (w * 3) % CHECK_MOD;
  }
  return sum;
}

/**
 * The check character of new SNs (P-SN-4): weighted sum mod 31 with weights 3^k, drawn from
 * CHECK_ALPHABET. Catches every single-character substitution and adjacent transposition except
 * between characters 31 apart in [0-9A-Z] (0/V, 1/W, 2/X, 3/Y, 4/Z — none of them look-alikes).
 */
export function checkChar(body: string): string {
  return CHECK_ALPHABET[(CHECK_MOD - weightedSum(body)) % CHECK_MOD]!;
}

/** Which rule the last character of `sn` satisfies as a check character, if any. */
export function checkCharScheme(sn: string): 'p-sn-4' | 'p-sn-3' | null {
  if (sn.length < 2 || !SN_RE.test(sn)) return null;
  const body = sn.slice(0, -1);
  const last = sn.slice(-1).toUpperCase();
  if (checkChar(body) === (CHECK_LOOKALIKE[last] ?? last)) return 'p-sn-4';
  if (legacyCheckChar(body) === last) return 'p-sn-3';
  return null;
}

/**
 * True when the last character of `sn` is the check character of the rest, by either rule: the
 * current one (P-SN-4) or the first one (P-SN-3), so SNs already printed keep validating.
 */
export function hasValidCheckChar(sn: string): boolean {
  return checkCharScheme(sn) !== null;
}

/** Crockford base32 alphabet: no I, L, O, U, so labels can't be misread. */
export const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

export function randomCrockford(length: number): string {
  const bytes = randomBytes(length);
  let s = '';
  for (let i = 0; i < length; i++) s += CROCKFORD[bytes[i]! & 31];
  return s;
}

export type SnPattern =
  | { kind: 'counter'; prefix: string; width: number; start?: number; checkChar?: boolean }
  | { kind: 'random'; prefix: string; length: number; checkChar?: boolean };

export function validateSnPattern(p: SnPattern): string[] {
  const problems: string[] = [];
  if (!/^[0-9A-Za-z]{0,64}$/.test(p.prefix)) problems.push('prefix must be 0–64 characters of [0-9A-Za-z]');
  if (p.kind === 'counter') {
    if (!Number.isInteger(p.width) || p.width < 1 || p.width > 20) problems.push('width must be 1–20');
    if (p.start !== undefined && (!Number.isSafeInteger(p.start) || p.start < 0)) problems.push('start must be ≥ 0');
  } else if (p.kind === 'random') {
    if (!Number.isInteger(p.length) || p.length < 6 || p.length > 40) problems.push('length must be 6–40');
  } else {
    problems.push("kind must be 'counter' or 'random'");
  }
  const total = p.prefix.length + (p.kind === 'counter' ? p.width : p.kind === 'random' ? p.length : 0) + (p.checkChar ? 1 : 0);
  if (total > 128) problems.push('an SN made by this pattern would exceed 128 characters');
  return problems;
}

/** Formats the SN for counter value `n` (counter patterns). */
export function counterSn(p: Extract<SnPattern, { kind: 'counter' }>, n: number): string {
  const digits = String(n);
  if (digits.length > p.width) throw new Error(`counter ${n} does not fit in ${p.width} digits`);
  const body = p.prefix + digits.padStart(p.width, '0');
  return p.checkChar ? body + checkChar(body) : body;
}

export function randomSn(p: Extract<SnPattern, { kind: 'random' }>): string {
  const body = p.prefix + randomCrockford(p.length);
  return p.checkChar ? body + checkChar(body) : body;
}
