import { maskAt, penalty } from './qr-mask.js';
import type { Segment, SegmentMode } from './qr-render.js';

/**
 * QR symbols at error correction level M, module for module what `qrcode` 1.5 makes from the
 * same segments (same version, codewords, placement, mask choice and format bits; qr-encode.test.ts
 * compares the two), without its per-symbol set-up. qrcode rebuilds everything per symbol: the
 * Reed–Solomon generator polynomial, a new array per division step, a method call per module
 * to lay out the function patterns and the data, objects per segment and bit. Here a version's
 * layout is built once (function patterns, reserved modules, the zigzag order of data modules
 * and the 8 masks restricted to data modules) and a symbol is: bits → codewords → ECC (table
 * LFSR) → one pass through the order → 8 mask trials scored by qr-mask.ts's penalty.
 */

export interface EncodedSymbol {
  version: number;
  size: number;
  mask: number;
  /** `data[row * size + col]` is 1 for a dark module. */
  data: Uint8Array;
}

/** Level M: error correction blocks and codewords per version (ISO/IEC 18004 table 9; qrcode's tables). */
const EC_BLOCKS = [
  1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16, 17, 17, 18, 20, 21, 23, 25, 26, 28, 29, 31, 33, 35, 37, 38,
  40, 43, 45, 47, 49,
];
const EC_CODEWORDS = [
  10, 16, 26, 36, 48, 64, 72, 88, 110, 130, 150, 176, 198, 216, 240, 280, 308, 338, 364, 416, 442, 476, 504, 560, 588, 644, 700,
  728, 784, 812, 868, 924, 980, 1036, 1064, 1120, 1204, 1260, 1316, 1372,
];
const TOTAL_CODEWORDS = [
  26, 44, 70, 100, 134, 172, 196, 242, 292, 346, 404, 466, 532, 581, 655, 733, 815, 901, 991, 1085, 1156, 1258, 1364, 1474, 1588,
  1706, 1828, 1921, 2051, 2185, 2323, 2465, 2611, 2761, 2876, 3034, 3196, 3362, 3532, 3706,
];
/** Format information (level M, mask 0–7), BCH-coded and XORed with 101010000010010. */
const FORMAT_BITS = [0x5412, 0x5125, 0x5e7c, 0x5b4b, 0x45f9, 0x40ce, 0x4f97, 0x4aa0];

const MODE_BITS: Record<SegmentMode, number> = { numeric: 1, alphanumeric: 2, byte: 4 };
/** Character-count indicator bits for versions 1–9, 10–26, 27–40. */
const CCI_BITS: Record<SegmentMode, readonly [number, number, number]> = {
  byte: [8, 16, 16],
  alphanumeric: [9, 11, 13],
  numeric: [10, 12, 14],
};
const ALNUM = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:';

// GF(256) with the QR polynomial x⁸+x⁴+x³+x²+1.
const EXP = new Uint8Array(512);
const LOG = new Uint8Array(256);
for (let i = 0, x = 1; i < 255; i++) {
  EXP[i] = x;
  LOG[x] = i;
  x <<= 1;
  if (x & 0x100) x ^= 0x11d;
}
for (let i = 255; i < 512; i++) EXP[i] = EXP[i - 255]!;

/** ∏(x + αⁱ), i < degree, highest coefficient first (as qrcode's generateECPolynomial), without the leading 1. */
const generators = new Map<number, Uint8Array>();
function generator(degree: number): Uint8Array {
  let g = generators.get(degree);
  if (!g) {
    let poly = Uint8Array.of(1);
    for (let i = 0; i < degree; i++) {
      const next = new Uint8Array(poly.length + 1);
      for (let k = 0; k < poly.length; k++) {
        next[k]! ^= poly[k]!;
        if (poly[k]) next[k + 1]! ^= EXP[LOG[poly[k]!]! + i]!;
      }
      poly = next;
    }
    g = poly.subarray(1);
    generators.set(degree, g);
  }
  return g;
}

/** The ECC codewords of one block: the remainder of data·x^ec divided by the generator. */
function reedSolomon(data: Uint8Array, from: number, len: number, ec: number, out: Uint8Array, at: number): void {
  const g = generator(ec);
  const rem = out.subarray(at, at + ec);
  rem.fill(0);
  for (let i = 0; i < len; i++) {
    const factor = data[from + i]! ^ rem[0]!;
    rem.copyWithin(0, 1);
    rem[ec - 1] = 0;
    if (factor === 0) continue;
    const lf = LOG[factor]!;
    for (let k = 0; k < ec; k++) {
      const c = g[k]!;
      if (c) rem[k]! ^= EXP[LOG[c]! + lf]!;
    }
  }
}

interface Layout {
  size: number;
  /** Function patterns (finders, separators, timing, alignment, version info, the dark module). */
  base: Uint8Array;
  /** Module indices that hold data bits, in placement order. */
  order: Uint32Array;
  /** Per mask, as 32-bit words (4 modules each): 1 where it flips a data module (never a reserved one). */
  masks: Uint32Array[];
  /** Module indices of format bit i: two copies, [i] and [15 + i]. */
  format: Uint32Array;
  dataCodewords: number;
}

const layouts = new Map<number, Layout>();

function alignmentCoords(version: number, size: number): number[] {
  if (version === 1) return [];
  const count = Math.floor(version / 7) + 2;
  const step = size === 145 ? 26 : Math.ceil((size - 13) / (2 * count - 2)) * 2;
  const pos = [size - 7];
  for (let i = 1; i < count - 1; i++) pos[i] = pos[i - 1]! - step;
  pos.push(6);
  return pos.reverse();
}

function versionBits(version: number): number {
  const G18 = 0x1f25;
  let d = version << 12;
  for (let bit = 17; bit >= 12; bit--) if (d & (1 << bit)) d ^= G18 << (bit - 12);
  return (version << 12) | d;
}

/** A version's layout, built as qrcode builds every symbol's (createSymbol), once. */
function layoutFor(version: number): Layout {
  const cached = layouts.get(version);
  if (cached) return cached;
  const n = version * 4 + 17;
  // Module arrays are padded to whole 32-bit words, so the mask trials XOR 4 modules at a time.
  const padded = (n * n + 3) & ~3;
  const base = new Uint8Array(padded);
  const reserved = new Uint8Array(n * n);
  const set = (r: number, c: number, v: boolean | number) => {
    base[r * n + c] = v ? 1 : 0;
    reserved[r * n + c] = 1;
  };
  for (const [row, col] of [
    [0, 0],
    [n - 7, 0],
    [0, n - 7],
  ] as const) {
    for (let r = -1; r <= 7; r++) {
      if (row + r < 0 || row + r >= n) continue;
      for (let c = -1; c <= 7; c++) {
        if (col + c < 0 || col + c >= n) continue;
        const dark =
          (r >= 0 && r <= 6 && (c === 0 || c === 6)) ||
          (c >= 0 && c <= 6 && (r === 0 || r === 6)) ||
          (r >= 2 && r <= 4 && c >= 2 && c <= 4);
        set(row + r, col + c, dark);
      }
    }
  }
  for (let r = 8; r < n - 8; r++) {
    set(r, 6, r % 2 === 0);
    set(6, r, r % 2 === 0);
  }
  const coords = alignmentCoords(version, n);
  for (let i = 0; i < coords.length; i++) {
    for (let j = 0; j < coords.length; j++) {
      if ((i === 0 && j === 0) || (i === 0 && j === coords.length - 1) || (i === coords.length - 1 && j === 0)) continue;
      const row = coords[i]!;
      const col = coords[j]!;
      for (let r = -2; r <= 2; r++)
        for (let c = -2; c <= 2; c++) set(row + r, col + c, r === -2 || r === 2 || c === -2 || c === 2 || (r === 0 && c === 0));
    }
  }
  const format = new Uint32Array(30);
  for (let i = 0; i < 15; i++) {
    const vr = i < 6 ? i : i < 8 ? i + 1 : n - 15 + i;
    const hc = i < 8 ? n - i - 1 : i < 9 ? 15 - i : 15 - i - 1;
    format[i] = vr * n + 8;
    format[15 + i] = 8 * n + hc;
    reserved[vr * n + 8] = 1;
    reserved[8 * n + hc] = 1;
  }
  set(n - 8, 8, 1); // the dark module
  if (version >= 7) {
    const bits = versionBits(version);
    for (let i = 0; i < 18; i++) {
      const row = Math.floor(i / 3);
      const col = (i % 3) + n - 11;
      const v = (bits >> i) & 1;
      set(row, col, v);
      set(col, row, v);
    }
  }
  // The zigzag of qrcode's setupData: column pairs from the right, up then down, skipping col 6.
  const order: number[] = [];
  let inc = -1;
  let row = n - 1;
  for (let col = n - 1; col > 0; col -= 2) {
    if (col === 6) col--;
    for (;;) {
      for (let c = 0; c < 2; c++) if (!reserved[row * n + col - c]) order.push(row * n + col - c);
      row += inc;
      if (row < 0 || row >= n) {
        row -= inc;
        inc = -inc;
        break;
      }
    }
  }
  const masks = Array.from({ length: 8 }, (_, p) => {
    const m = new Uint8Array(padded);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (!reserved[i * n + j] && maskAt(p, i, j)) m[i * n + j] = 1;
    return new Uint32Array(m.buffer);
  });
  const layout: Layout = {
    size: n,
    base,
    order: Uint32Array.from(order),
    masks,
    format,
    dataCodewords: TOTAL_CODEWORDS[version - 1]! - EC_CODEWORDS[version - 1]!,
  };
  layouts.set(version, layout);
  return layout;
}

function cciBits(mode: SegmentMode, version: number): number {
  const bits = CCI_BITS[mode];
  return version < 10 ? bits[0] : version < 27 ? bits[1] : bits[2];
}

/** Segments with their payload bytes (UTF-8 for byte mode) and bit lengths, computed once. */
interface Prepared {
  mode: SegmentMode;
  data: string;
  bytes: Uint8Array | null;
  count: number;
  bits: number;
}

function prepare(segments: readonly Segment[]): Prepared[] {
  return segments.map((s) => {
    if (s.mode === 'byte') {
      const bytes = Buffer.from(s.data, 'utf8');
      return { mode: s.mode, data: s.data, bytes, count: bytes.length, bits: bytes.length * 8 };
    }
    const L = s.data.length;
    const bits =
      s.mode === 'numeric' ? 10 * Math.floor(L / 3) + (L % 3 ? (L % 3) * 3 + 1 : 0) : 11 * Math.floor(L / 2) + 6 * (L % 2);
    return { mode: s.mode, data: s.data, bytes: null, count: L, bits };
  });
}

/** The smallest version whose level-M data capacity holds the segments (qrcode's getBestVersionForData). */
function bestVersion(segs: readonly Prepared[]): number {
  for (let v = 1; v <= 40; v++) {
    let total = 0;
    for (const s of segs) total += 4 + cciBits(s.mode, v) + s.bits;
    if (total <= (TOTAL_CODEWORDS[v - 1]! - EC_CODEWORDS[v - 1]!) * 8) return v;
  }
  throw new Error('The amount of data is too big to be stored in a QR Code');
}

/** The data codewords: segments, terminator, zero bits to a byte, then 0xEC/0x11 padding. */
function dataCodewords(segs: readonly Prepared[], version: number, capacity: number): Uint8Array {
  const out = new Uint8Array(capacity);
  let bit = 0;
  const put = (value: number, len: number) => {
    for (let i = len - 1; i >= 0; i--, bit++) if ((value >>> i) & 1) out[bit >> 3]! |= 0x80 >> (bit & 7);
  };
  for (const s of segs) {
    put(MODE_BITS[s.mode], 4);
    put(s.count, cciBits(s.mode, version));
    if (s.bytes) for (const b of s.bytes) put(b, 8);
    else if (s.mode === 'alphanumeric') {
      const d = s.data;
      let i = 0;
      for (; i + 2 <= d.length; i += 2) put(ALNUM.indexOf(d[i]!) * 45 + ALNUM.indexOf(d[i + 1]!), 11);
      if (d.length % 2) put(ALNUM.indexOf(d[i]!), 6);
    } else {
      const d = s.data;
      let i = 0;
      for (; i + 3 <= d.length; i += 3) put(Number(d.slice(i, i + 3)), 10);
      if (d.length > i) put(Number(d.slice(i)), (d.length - i) * 3 + 1);
    }
  }
  if (bit + 4 <= capacity * 8) bit += 4;
  bit = (bit + 7) & ~7;
  for (let k = 0, at = bit >> 3; at < capacity; k++, at++) out[at] = k % 2 ? 0x11 : 0xec;
  return out;
}

/** Data and ECC codewords of every block, interleaved (qrcode's createCodewords). */
function codewords(version: number, data: Uint8Array): Uint8Array {
  const total = TOTAL_CODEWORDS[version - 1]!;
  const blocks = EC_BLOCKS[version - 1]!;
  const dataTotal = data.length;
  const group2 = total % blocks;
  const group1 = blocks - group2;
  const data1 = Math.floor(dataTotal / blocks);
  const ec = Math.floor(total / blocks) - data1;
  const ecc = new Uint8Array(ec * blocks);
  const starts = new Uint32Array(blocks + 1);
  for (let b = 0, at = 0; b < blocks; b++) {
    const len = b < group1 ? data1 : data1 + 1;
    starts[b] = at;
    reedSolomon(data, at, len, ec, ecc, b * ec);
    at += len;
    starts[b + 1] = at;
  }
  const out = new Uint8Array(total);
  let k = 0;
  for (let i = 0; i <= data1; i++)
    for (let b = 0; b < blocks; b++) if (i < starts[b + 1]! - starts[b]!) out[k++] = data[starts[b]! + i]!;
  for (let i = 0; i < ec; i++) for (let b = 0; b < blocks; b++) out[k++] = ecc[b * ec + i]!;
  return out;
}

/** One trial buffer, reused: a worker makes one symbol at a time. */
let trial = new Uint8Array(0);

/** The level-M symbol of `segments` in the smallest version that holds them. */
export function encodeSegments(segments: readonly Segment[]): EncodedSymbol {
  const segs = prepare(segments);
  const version = bestVersion(segs);
  const L = layoutFor(version);
  const n = L.size;
  const cw = codewords(version, dataCodewords(segs, version, L.dataCodewords));
  const d = L.base.slice();
  const order = L.order;
  const bits = Math.min(order.length, cw.length * 8);
  for (let k = 0; k < bits; k++) d[order[k]!] = (cw[k >> 3]! >> (7 - (k & 7))) & 1;
  if (trial.length < d.length) trial = new Uint8Array(d.length);
  const s = trial;
  const d32 = new Uint32Array(d.buffer);
  const s32 = new Uint32Array(s.buffer, 0, d32.length);
  const best = new Uint8Array(n * n);
  let bestMask = 0;
  let lowest = Number.POSITIVE_INFINITY;
  for (let p = 0; p < 8; p++) {
    const mk = L.masks[p]!;
    for (let i = 0; i < d32.length; i++) s32[i] = d32[i]! ^ mk[i]!;
    const f = FORMAT_BITS[p]!;
    for (let i = 0; i < 15; i++) {
      const v = (f >> i) & 1;
      s[L.format[i]!] = v;
      s[L.format[15 + i]!] = v;
    }
    const score = penalty(s, n);
    if (score < lowest) {
      lowest = score;
      bestMask = p;
      best.set(s.subarray(0, n * n));
    }
  }
  return { version, size: n, mask: bestMask, data: best };
}
