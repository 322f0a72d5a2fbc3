import zlib from 'node:zlib';
import { encodeSegments } from './qr-encode.js';

/**
 * One QR symbol as a module matrix: `data[row * size + col]` is 1 for a dark module. Every
 * output of a label (PNG, SVG, PDF) is drawn from the same matrix, computed once per device.
 */
export interface QrMatrix {
  size: number;
  data: Uint8Array;
}

/** Modules of white around the symbol, as ISO/IEC 18004 requires. */
export const QUIET_ZONE = 4;
/** Pixels per module in the PNGs: 45 modules (version 5) → 270 px, ≈23 mm at 300 dpi. */
export const PNG_SCALE = 6;

export type SegmentMode = 'byte' | 'alphanumeric' | 'numeric';
export interface Segment {
  data: string;
  mode: SegmentMode;
}

const SEG_MODES: readonly SegmentMode[] = ['byte', 'alphanumeric', 'numeric'];
const ALNUM_SET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:';
/** Character-count indicator bits per mode for versions 1–9, 10–26, 27–40 (ISO/IEC 18004 table 3). */
const CCI_BITS: Record<SegmentMode, readonly [number, number, number]> = {
  byte: [8, 16, 16],
  alphanumeric: [9, 11, 13],
  numeric: [10, 12, 14],
};

function utf8Length(cp: number): number {
  return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/**
 * The segmentation (numeric / alphanumeric / byte runs) that encodes `text` in the fewest bits
 * for a version class (0: 1–9, 1: 10–26, 2: 27–40): the standard dynamic programme over
 * characters, costs in sixths of a bit. qrcode's own optimiser finds the same minimum with a
 * Dijkstra search that costs ~15 % of a label's rendering time.
 */
export function optimalSegments(text: string, versionClass: 0 | 1 | 2): Segment[] {
  const chars = [...text];
  const n = chars.length;
  const head = SEG_MODES.map((m) => (4 + CCI_BITS[m][versionClass]) * 6);
  // modeOf[i * 3 + state]: the mode character i is encoded in, on the cheapest path that is in
  // `state` after it (-1: impossible).
  const modeOf = new Int8Array(n * 3).fill(-1);
  let prev = head.slice();
  for (let i = 0; i < n; i++) {
    const ch = chars[i]!;
    const cp = ch.codePointAt(0)!;
    const ext = [prev[0]! + utf8Length(cp) * 48, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY];
    if (ALNUM_SET.includes(ch)) ext[1] = prev[1]! + 33; // 5.5 bits
    if (cp >= 48 && cp <= 57) ext[2] = prev[2]! + 20; // 3⅓ bits
    const cur = ext.slice();
    for (let m = 0; m < 3; m++) if (ext[m]! < Number.POSITIVE_INFINITY) modeOf[i * 3 + m] = m;
    // Or end the segment after this character and open one of another mode (a whole header).
    for (let to = 0; to < 3; to++) {
      for (let from = 0; from < 3; from++) {
        if (from === to || ext[from] === Number.POSITIVE_INFINITY) continue;
        const cost = Math.ceil(ext[from]! / 6) * 6 + head[to]!;
        if (cost < cur[to]!) {
          cur[to] = cost;
          modeOf[i * 3 + to] = from;
        }
      }
    }
    prev = cur;
  }
  let state = 0;
  for (let m = 1; m < 3; m++) if (prev[m]! < prev[state]!) state = m;
  const perChar = new Array<number>(n);
  for (let i = n - 1; i >= 0; i--) {
    const m = modeOf[i * 3 + state]!;
    perChar[i] = m;
    state = m;
  }
  const segments: Segment[] = [];
  for (let i = 0; i < n; i++) {
    const mode = SEG_MODES[perChar[i]!]!;
    const last = segments[segments.length - 1];
    if (last && last.mode === mode) last.data += chars[i];
    else segments.push({ data: chars[i]!, mode });
  }
  return segments;
}

/**
 * The QR symbol of `text` at error correction level M, in the smallest version, fed with the
 * optimal segmentation: qr-encode.ts, module for module the symbol qrcode's encoder makes.
 */
export function qrMatrix(text: string): QrMatrix {
  let code = encodeSegments(optimalSegments(text, 0));
  // Past version 9 the character-count fields grow, which can change the best segmentation.
  if (code.version >= 10) code = encodeSegments(optimalSegments(text, 1));
  if (code.version >= 27) code = encodeSegments(optimalSegments(text, 2));
  return { size: code.size, data: code.data };
}

// zlib.crc32 arrived in Node 20.15; the engines field allows 20.11, so keep a table fallback.
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32Js(data: Uint8Array, prev = 0): number {
  let c = ~prev >>> 0;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

const nativeCrc = (zlib as { crc32?: (d: Uint8Array, v?: number) => number }).crc32;

/** CRC-32 (IEEE), the checksum of PNG chunks and ZIP entries; `prev` continues a running one. */
export function crc32(data: Uint8Array, prev = 0): number {
  return nativeCrc ? nativeCrc(data, prev) >>> 0 : crc32Js(data, prev);
}

function pngChunk(type: string, body: Buffer): Buffer {
  const out = Buffer.alloc(12 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.write(type, 4, 'latin1');
  body.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + body.length)), 8 + body.length);
  return out;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const PNG_IEND = pngChunk('IEND', Buffer.alloc(0));

let pngScratch = { raw: Buffer.alloc(0), line: Buffer.alloc(0), above: Buffer.alloc(0) };

/** zlib options of the PNG's IDAT; see encodeQrPng. */
export const PNG_DEFLATE: zlib.ZlibOptions = { level: 3, windowBits: 12, memLevel: 7 };

/**
 * A 1-bit grayscale PNG straight from the matrix (IHDR depth 1, colour type 0). About 7× faster
 * than qrcode's RGBA path and a quarter of the size. Each module row is `scale` identical
 * scanlines, and quiet-zone rows repeat too: a scanline equal to the one above is written with
 * PNG's Up filter (filter byte 2, then zeros), so zlib mostly sees runs of zeros.
 */
export function encodeQrPng(m: QrMatrix, scale = PNG_SCALE, quiet = QUIET_ZONE): Buffer {
  const n = m.size;
  const px = (n + 2 * quiet) * scale;
  const rowBytes = (px + 7) >> 3;
  const stride = rowBytes + 1;
  // Scratch reused from label to label (zlib reads it synchronously): no 9 KB buffer per label.
  if (pngScratch.raw.length !== stride * px) {
    pngScratch = { raw: Buffer.alloc(stride * px), line: Buffer.alloc(rowBytes), above: Buffer.alloc(rowBytes) };
  }
  const { raw, line, above } = pngScratch;
  raw.fill(0);
  for (let r = -quiet; r < n + quiet; r++) {
    line.fill(0xff); // white, bit 1
    if (r >= 0 && r < n) {
      for (let c = 0; c < n; c++) {
        if (!m.data[r * n + c]) continue;
        const x0 = (c + quiet) * scale;
        for (let x = x0; x < x0 + scale; x++) line[x >> 3]! &= ~(0x80 >> (x & 7));
      }
    }
    let y = (r + quiet) * scale;
    const end = y + scale;
    if (r === -quiet || !line.equals(above)) {
      raw[y * stride] = 0; // None: the scanline as it is
      line.copy(raw, y * stride + 1);
      line.copy(above);
      y++;
    }
    for (; y < end; y++) raw[y * stride] = 2; // Up, all zeros: the scanline above again
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(px, 0);
  ihdr.writeUInt32BE(px, 4);
  ihdr[8] = 1; // bit depth
  ihdr[9] = 0; // grayscale
  ihdr[10] = 0; // deflate
  ihdr[11] = 0; // adaptive filtering: per scanline, None or Up
  ihdr[12] = 0; // no interlace
  return Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', ihdr), pngChunk('IDAT', zlib.deflateSync(raw, PNG_DEFLATE)), PNG_IEND]);
}

/** Horizontal runs of dark modules, row by row: [col, row, length] triples. */
export function darkRuns(m: QrMatrix): number[] {
  const n = m.size;
  const runs: number[] = [];
  for (let r = 0; r < n; r++) {
    let c = 0;
    while (c < n) {
      if (!m.data[r * n + c]) {
        c++;
        continue;
      }
      let e = c + 1;
      while (e < n && m.data[r * n + e]) e++;
      runs.push(c, r, e - c);
      c = e;
    }
  }
  return runs;
}

function xmlEscape(s: string): string {
  return s.replace(/[<>&"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/**
 * An SVG of the matrix: a white square and ONE path of the dark modules, in module units. Each
 * run of dark modules is a 1-unit-wide stroke along its row's centre line, moved to relatively
 * (`m3 0h5`): half the bytes of filled rectangles, and half the deflate time.
 */
export function qrSvg(m: QrMatrix, title: string, scale = PNG_SCALE, quiet = QUIET_ZONE): string {
  return qrSvgBytes(m, title, scale, quiet).toString('utf8');
}

let svgScratch = Buffer.alloc(0);

/** zlib options of an SVG entry's raw deflate (render.worker.ts): level 4 is half level 6's time for 5 % more bytes. */
export const SVG_DEFLATE: zlib.ZlibOptions = { level: 4, windowBits: 12, memLevel: 7 };

/** Writes the decimal integer `v` (|v| < 10 000) at `at`; returns the position after it. */
function putInt(b: Buffer, at: number, v: number): number {
  if (v < 0) {
    b[at++] = 0x2d;
    v = -v;
  }
  if (v >= 1000) b[at++] = 0x30 + Math.floor(v / 1000);
  if (v >= 100) b[at++] = 0x30 + (Math.floor(v / 100) % 10);
  if (v >= 10) b[at++] = 0x30 + (Math.floor(v / 10) % 10);
  b[at++] = 0x30 + (v % 10);
  return at;
}

/**
 * qrSvg's document as UTF-8 bytes, written straight into a buffer: the render workers deflate
 * and checksum these, and building the path as a string first (~400 small pieces, then encoded)
 * cost about as much as the deflate.
 */
export function qrSvgBytes(m: QrMatrix, title: string, scale = PNG_SCALE, quiet = QUIET_ZONE): Buffer {
  const n = m.size;
  const w = n + 2 * quiet;
  const head =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<svg xmlns="http://www.w3.org/2000/svg" version="1.1" viewBox="0 0 ${w} ${w}" width="${w * scale}" height="${w * scale}" shape-rendering="crispEdges">` +
    `<title>${xmlEscape(title)}</title><rect width="${w}" height="${w}" fill="#fff"/><path stroke="#000" stroke-width="1" fill="none" d="`;
  const tail = '"/></svg>\n';
  // At most ⌈n/2⌉ runs a row, each at most "m-dddd dddh" + "dddd" (15 bytes).
  const bound = Buffer.byteLength(head) + n * Math.ceil(n / 2) * 15 + tail.length + 8;
  if (svgScratch.length < bound) svgScratch = Buffer.alloc(Math.max(bound, 16 * 1024));
  const b = svgScratch;
  let at = b.write(head, 0, 'utf8');
  let px = 0;
  let py = 0;
  let first = true;
  const d = m.data;
  for (let r = 0; r < n; r++) {
    const row = r * n;
    let c = 0;
    while (c < n) {
      if (!d[row + c]) {
        c++;
        continue;
      }
      let e = c + 1;
      while (e < n && d[row + e]) e++;
      const x = c + quiet;
      const y = r + quiet;
      if (first) {
        // "M<x> <y>.5": the first stroke's centre line is absolute.
        b[at++] = 0x4d; // M
        at = putInt(b, at, x);
        b[at++] = 0x20;
        at = putInt(b, at, y);
        b[at++] = 0x2e; // .
        b[at++] = 0x35; // 5
        first = false;
      } else {
        b[at++] = 0x6d; // m
        at = putInt(b, at, x - px);
        b[at++] = 0x20;
        at = putInt(b, at, y - py);
      }
      b[at++] = 0x68; // h
      at = putInt(b, at, e - c);
      px = x + e - c;
      py = y;
      c = e;
    }
  }
  at += b.write(tail, at, 'latin1');
  return Buffer.from(b.subarray(0, at));
}

/**
 * PDF content-stream operators that fill the dark modules as one path, in module units with
 * row 0 at the top (label-pdf.ts places pages y down from the top). The caller positions and scales it.
 */
export function pdfQrOps(m: QrMatrix): string {
  const rects = darkRects(m);
  let s = '';
  for (let i = 0; i < rects.length; i += 4) s += `${rects[i]} ${rects[i + 1]} ${rects[i + 2]} ${rects[i + 3]} re\n`;
  return `${s}f\n`;
}

/**
 * The dark modules as rectangles [col, row, width, height]: each row's runs, merged with the
 * identical run (same start and length) in the rows below. A third fewer operators than one
 * rectangle per run, so a third less for the PDF writer to write and zlib to compress per label.
 */
export function darkRects(m: QrMatrix): number[] {
  const runs = darkRuns(m);
  const rects: number[] = [];
  let open = new Map<number, number>(); // col * 256 + len → rect index, for the previous row
  let next = new Map<number, number>();
  let row = -1;
  for (let i = 0; i < runs.length; i += 3) {
    const [c, r, len] = [runs[i]!, runs[i + 1]!, runs[i + 2]!];
    if (r !== row) {
      // Runs only continue from the row right above.
      [open, next] = r === row + 1 ? [next, open] : [new Map(), open];
      next.clear();
      row = r;
    }
    const key = c * 256 + len;
    const at = open.get(key);
    if (at !== undefined) {
      rects[at + 3]!++;
      next.set(key, at);
    } else {
      next.set(key, rects.length);
      rects.push(c, r, len, 1);
    }
  }
  return rects;
}

/** The matrix in 1 + ⌈size²/8⌉ bytes (size, then bits row-major, MSB first), kept for the PDF pass. */
export function packMatrix(m: QrMatrix): Uint8Array {
  const n = m.size;
  const out = new Uint8Array(1 + ((n * n + 7) >> 3));
  out[0] = n;
  for (let i = 0; i < n * n; i++) if (m.data[i]) out[1 + (i >> 3)]! |= 0x80 >> (i & 7);
  return out;
}

export function unpackMatrix(p: Uint8Array): QrMatrix {
  const n = p[0]!;
  const data = new Uint8Array(n * n);
  for (let i = 0; i < n * n; i++) data[i] = (p[1 + (i >> 3)]! >> (7 - (i & 7))) & 1;
  return { size: n, data };
}

export function packedLength(size: number): number {
  return 1 + ((size * size + 7) >> 3);
}
