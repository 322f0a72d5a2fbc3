import { createRequire } from 'node:module';

/**
 * The mask penalty of ISO/IEC 18004 (N1–N4), scored exactly as qrcode 1.5 scores it, fast:
 * qr-encode.ts chooses each symbol's mask with it. `fastGetBestMask` is the same choice as a
 * drop-in for qrcode's own `MaskPattern.getBestMask` (same penalties, same tie-break: the first
 * lowest), so labels.test.ts can check on thousands of symbols that it picks qrcode's mask.
 */

interface BitMatrixLike {
  size: number;
  data: Uint8Array;
  reservedBit: Uint8Array;
}

type GetBestMask = (data: BitMatrixLike, setupFormatFunc: (pattern: number) => void) => number;

interface MaskPatternModule {
  Patterns: Record<string, number>;
  getBestMask: GetBestMask;
  applyMask: (pattern: number, data: BitMatrixLike) => void;
  getPenaltyN1: (data: BitMatrixLike) => number;
}

const N1 = 3;
const N2 = 3;
const N3 = 40;
const N4 = 10;

/** Whether mask pattern `p` inverts the module at row i, column j (ISO/IEC 18004 table 10). */
export function maskAt(p: number, i: number, j: number): boolean {
  switch (p) {
    case 0:
      return (i + j) % 2 === 0;
    case 1:
      return i % 2 === 0;
    case 2:
      return j % 3 === 0;
    case 3:
      return (i + j) % 3 === 0;
    case 4:
      return (Math.floor(i / 2) + Math.floor(j / 3)) % 2 === 0;
    case 5:
      return ((i * j) % 2) + ((i * j) % 3) === 0;
    case 6:
      return (((i * j) % 2) + ((i * j) % 3)) % 2 === 0;
    default:
      return (((i * j) % 3) + ((i + j) % 2)) % 2 === 0;
  }
}

/** N1 points for a run that ended at length r (index by run length; 0 for runs under 5). */
const RUN_PENALTY = Uint16Array.from({ length: 256 }, (_, r) => (r >= 5 ? N1 + r - 5 : 0));
/** 1 for the two 11-module windows N3 counts: 1011101 after or before 4 light modules. */
const FINDER = Uint8Array.from({ length: 2048 }, (_, b) => (b === 0x5d0 || b === 0x05d ? 1 : 0));
/** 1 for a 2×2 block of one colour (sum of its four modules 0 or 4). */
const BLOCK = Uint8Array.of(1, 0, 0, 0, 1);

/*
 * The penalty loops are branch-free (table lookups and masks instead of ifs): module colours
 * are close to random, so every data-dependent branch was a coin flip the CPU mispredicted
 * about half the time, and that, not the arithmetic, was most of the penalty's cost.
 */

/** N1 points plus N3 finds × N3 along one line of `n` modules: m[at], m[at + step], … */
function scanLine(m: Uint8Array, at: number, step: number, n: number): number {
  let last = m[at]!;
  let run = 1;
  let bits = last;
  let n1 = 0;
  let finds = 0;
  let k = at + step;
  // The first 10 modules: no complete 11-module window yet.
  for (let c = 1; c < 10; c++, k += step) {
    const v = m[k]!;
    const same = 1 ^ v ^ last; // 1 when this module continues the run
    n1 += RUN_PENALTY[run & (same - 1)]!; // the run's points when it just ended, else 0
    run = (run & -same) + 1;
    last = v;
    bits = (bits << 1) | v;
  }
  for (let c = 10; c < n; c++, k += step) {
    const v = m[k]!;
    const same = 1 ^ v ^ last;
    n1 += RUN_PENALTY[run & (same - 1)]!;
    run = (run & -same) + 1;
    last = v;
    bits = ((bits << 1) & 0x7ff) | v;
    finds += FINDER[bits]!;
  }
  return n1 + RUN_PENALTY[run]! + finds * N3;
}

/**
 * The penalty of a masked matrix `m` (size n, 0/1 per module), scored as qrcode's
 * getPenaltyN1..N4 do: N1 runs of ≥ 5 same-colour modules in rows and columns, N2 one-colour
 * 2×2 blocks, N3 1:1:3:1:1 finder-like patterns beside 4 light modules, N4 the dark
 * proportion's distance from 50 % in 5 % steps. (Symbols are at least 21 modules wide.)
 */
export function penalty(m: Uint8Array, n: number): number {
  let lines = 0;
  let blocks = 0;
  let dark = 0;
  for (let r = 0; r < n; r++) {
    lines += scanLine(m, r * n, 1, n) + scanLine(m, r, n, n);
  }
  for (let i = 0; i < n * n; i++) dark += m[i]!;
  for (let a = 0; a < n * (n - 1); a += n) {
    const b = a + n;
    let left = m[a]! + m[b]!;
    for (let c = 1; c < n; c++) {
      const right = m[a + c]! + m[b + c]!;
      blocks += BLOCK[left + right]!;
      left = right;
    }
  }
  return lines + blocks * N2 + Math.abs(Math.ceil((dark * 100) / (n * n) / 5) - 10) * N4;
}

/** Precomputed masks per (pattern, size): 1 where the pattern flips a module. */
const maskCache = new Map<number, Uint8Array[]>();

function masksFor(n: number): Uint8Array[] {
  let masks = maskCache.get(n);
  if (!masks) {
    masks = Array.from({ length: 8 }, (_, p) => {
      const mk = new Uint8Array(n * n);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) mk[i * n + j] = maskAt(p, i, j) ? 1 : 0;
      return mk;
    });
    maskCache.set(n, masks);
  }
  return masks;
}

/** Reused between calls (a worker renders one symbol at a time): no allocation per symbol. */
let scratch = new Uint8Array(0);

export const fastGetBestMask: GetBestMask = (data, setupFormatFunc) => {
  const n = data.size;
  const masks = masksFor(n);
  if (scratch.length < n * n) scratch = new Uint8Array(n * n);
  const s = scratch;
  let best = 0;
  let lowest = Number.POSITIVE_INFINITY;
  for (let p = 0; p < 8; p++) {
    // As qrcode does: the pattern's format bits go into the (reserved) format area first.
    setupFormatFunc(p);
    const mk = masks[p]!;
    const d = data.data;
    const reserved = data.reservedBit;
    // Reserved modules (finders, timing, format…) are never masked: ~1 & flip = 0.
    for (let i = 0; i < n * n; i++) s[i] = d[i]! ^ (mk[i]! & ~reserved[i]!);
    const score = penalty(s, n);
    if (score < lowest) {
      lowest = score;
      best = p;
    }
  }
  return best;
};

/** The mask-pattern module of the qrcode package this process loads. */
export function qrcodeMaskModule(): MaskPatternModule | null {
  try {
    const mod = createRequire(import.meta.url)('qrcode/lib/core/mask-pattern.js') as Partial<MaskPatternModule>;
    const ok =
      typeof mod.getBestMask === 'function' &&
      typeof mod.applyMask === 'function' &&
      typeof mod.getPenaltyN1 === 'function' &&
      Object.keys(mod.Patterns ?? {}).length === 8;
    return ok ? (mod as MaskPatternModule) : null;
  } catch {
    return null;
  }
}
