import { createRequire } from 'node:module';

/**
 * A faster drop-in for qrcode's mask choice (`MaskPattern.getBestMask`), which is about half of
 * the CPU time of a label: it scores each of the 8 masks with per-module method calls and
 * masks the matrix twice per pattern. This computes the very same penalties (N1–N4 exactly as
 * qrcode 1.5 scores them, same tie-break: the first lowest) on a typed-array copy, so the
 * chosen mask — and so every symbol — is identical; labels.test.ts compares the two on
 * thousands of symbols.
 *
 * It is installed only in the render worker threads (each has its own module instances), so
 * nothing else in the process sees a patched library.
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

function maskAt(p: number, i: number, j: number): boolean {
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

/** N1 and N3 over the rows of `a` (pass the transpose for the columns). Returns N1 points and N3 finds. */
function scanRows(a: Uint8Array, n: number): [number, number] {
  let n1 = 0;
  let finds = 0;
  for (let base = 0; base < n * n; base += n) {
    let run = 0;
    let last = -1;
    let bits = 0;
    for (let c = 0; c < n; c++) {
      const v = a[base + c]!;
      if (v === last) run++;
      else {
        if (run >= 5) n1 += N1 + run - 5;
        last = v;
        run = 1;
      }
      bits = ((bits << 1) & 0x7ff) | v;
      if (c >= 10 && (bits === 0x5d0 || bits === 0x05d)) finds++;
    }
    if (run >= 5) n1 += N1 + run - 5;
  }
  return [n1, finds];
}

/**
 * The penalty of a masked matrix `m` (size n), scored as qrcode's getPenaltyN1..N4 do:
 * N1 runs of ≥ 5 same-colour modules in rows and columns, N2 one-colour 2×2 blocks, N3
 * 1:1:3:1:1 finder-like patterns beside 4 light modules, N4 the dark proportion's distance
 * from 50 % in 5 % steps. `t` is scratch space for the transpose.
 */
export function penalty(m: Uint8Array, n: number, t: Uint8Array = new Uint8Array(n * n)): number {
  let dark = 0;
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      const v = m[r * n + c]!;
      t[c * n + r] = v;
      dark += v;
    }
  }
  const [rowN1, rowFinds] = scanRows(m, n);
  const [colN1, colFinds] = scanRows(t, n);
  let blocks = 0;
  for (let r = 0; r < n - 1; r++) {
    const a = r * n;
    const b = a + n;
    for (let c = 0; c < n - 1; c++) {
      const s = m[a + c]! + m[a + c + 1]! + m[b + c]! + m[b + c + 1]!;
      if (s === 4 || s === 0) blocks++;
    }
  }
  return rowN1 + colN1 + blocks * N2 + (rowFinds + colFinds) * N3 + Math.abs(Math.ceil((dark * 100) / (n * n) / 5) - 10) * N4;
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

export const fastGetBestMask: GetBestMask = (data, setupFormatFunc) => {
  const n = data.size;
  const masks = masksFor(n);
  const scratch = new Uint8Array(n * n);
  const transposed = new Uint8Array(n * n);
  let best = 0;
  let lowest = Number.POSITIVE_INFINITY;
  for (let p = 0; p < 8; p++) {
    // As qrcode does: the pattern's format bits go into the (reserved) format area first.
    setupFormatFunc(p);
    const mk = masks[p]!;
    const d = data.data;
    const reserved = data.reservedBit;
    for (let i = 0; i < scratch.length; i++) scratch[i] = reserved[i] ? d[i]! : d[i]! ^ mk[i]!;
    const score = penalty(scratch, n, transposed);
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

/**
 * Swaps qrcode's mask choice for the fast one in this thread. Returns false (and changes
 * nothing) when the installed qrcode is not shaped as expected; rendering is then just slower.
 */
export function installFastMaskSelection(): boolean {
  const mod = qrcodeMaskModule();
  if (!mod) return false;
  mod.getBestMask = fastGetBestMask;
  return true;
}
