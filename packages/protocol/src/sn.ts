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
 * Luhn mod 36 check character over the SN's characters, case-insensitively (P-SN-3).
 * It catches every single-character typo and most adjacent transpositions, and stays in
 * [0-9A-Z] so an SN with its check character still obeys the SN rules.
 */
export function checkChar(body: string): string {
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

/** True when the last character of `sn` is the check character of the rest. */
export function hasValidCheckChar(sn: string): boolean {
  if (sn.length < 2 || !SN_RE.test(sn)) return false;
  return checkChar(sn.slice(0, -1)) === sn.slice(-1).toUpperCase();
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
