import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { type AfmMetrics, HELVETICA, HELVETICA_BOLD } from './pdf-afm.js';
import { num, type PdfWriter } from './pdf-writer.js';

/**
 * The label PDFs' fonts: the standard Helvetica and Helvetica-Bold (WinAnsiEncoding, not
 * embedded, measured from their AFM metrics with kerning), and for model names outside WinAnsi a
 * system font subset embedded once per document (Type0, CIDFontType2/0 with Identity-H) through
 * fontkit. Text is measured and placed the way pdfkit did it, so the labels look as before.
 */

/** Unicode → WinAnsiEncoding for the 27 characters it places in 0x80–0x9F. */
const WIN_ANSI_HIGH: ReadonlyMap<number, number> = new Map([
  [0x20ac, 0x80],
  [0x201a, 0x82],
  [0x0192, 0x83],
  [0x201e, 0x84],
  [0x2026, 0x85],
  [0x2020, 0x86],
  [0x2021, 0x87],
  [0x02c6, 0x88],
  [0x2030, 0x89],
  [0x0160, 0x8a],
  [0x2039, 0x8b],
  [0x0152, 0x8c],
  [0x017d, 0x8e],
  [0x2018, 0x91],
  [0x2019, 0x92],
  [0x201c, 0x93],
  [0x201d, 0x94],
  [0x2022, 0x95],
  [0x2013, 0x96],
  [0x2014, 0x97],
  [0x02dc, 0x98],
  [0x2122, 0x99],
  [0x0161, 0x9a],
  [0x203a, 0x9b],
  [0x0153, 0x9c],
  [0x017e, 0x9e],
  [0x0178, 0x9f],
]);

/** The WinAnsiEncoding code of a code point, or -1 when the standard fonts cannot show it. */
export function winAnsiCode(cp: number): number {
  if ((cp >= 0x20 && cp < 0x7f) || (cp >= 0xa0 && cp <= 0xff)) return cp;
  return WIN_ANSI_HIGH.get(cp) ?? -1;
}

export interface PdfFont {
  /** Resource name (F1, …). */
  readonly id: string;
  /** In 1/1000 em: text drawn "at y" has its baseline this far below y (pdfkit's convention). */
  readonly ascender: number;
  widthOf(text: string, size: number): number;
  /** Content operators showing `text` with its baseline's left end at (x, y), PDF space. */
  show(text: string, x: number, y: number, size: number): string;
}

const QUESTION = 0x3f;

export class StandardFont implements PdfFont {
  readonly ascender: number;
  private readonly widths = new Uint16Array(256);
  /** Kerning by left code × 256 + right code, 1/1000 em. */
  private readonly kerning = new Int16Array(256 * 256);

  constructor(
    readonly id: string,
    private readonly metrics: AfmMetrics,
  ) {
    this.ascender = metrics.ascender;
    metrics.widths.forEach((w, i) => {
      this.widths[32 + i] = w;
    });
    for (const [amount, pairs] of metrics.kerns) {
      for (let i = 0; i < pairs.length; i += 4) this.kerning[Number.parseInt(pairs.slice(i, i + 4), 16)] = amount;
    }
  }

  get name(): string {
    return this.metrics.name;
  }

  /** Characters outside WinAnsi become '?'. */
  private code(text: string, i: number): number {
    const c = winAnsiCode(text.charCodeAt(i));
    return c < 0 ? QUESTION : c;
  }

  widthOf(text: string, size: number): number {
    let w = 0;
    let prev = -1;
    for (let i = 0; i < text.length; i++) {
      const c = this.code(text, i);
      w += this.widths[c]!;
      if (prev >= 0) w += this.kerning[(prev << 8) | c]!;
      prev = c;
    }
    return (w * size) / 1000;
  }

  show(text: string, x: number, y: number, size: number): string {
    // A literal string split where a kerning pair moves the next glyph: [(Caf) 30 (é)] TJ.
    let tj = '(';
    for (let i = 0; i < text.length; i++) {
      const c = this.code(text, i);
      tj += c === 0x28 || c === 0x29 || c === 0x5c ? `\\${String.fromCharCode(c)}` : String.fromCharCode(c);
      if (i + 1 < text.length) {
        const k = this.kerning[(c << 8) | this.code(text, i + 1)]!;
        if (k !== 0) tj += `) ${-k} (`;
      }
    }
    return `BT /${this.id} ${num(size)} Tf ${num(x)} ${num(y)} Td [${tj})] TJ ET\n`;
  }
}

export const standardFonts = (): { regular: StandardFont; bold: StandardFont } => ({
  regular: new StandardFont('F1', HELVETICA),
  bold: new StandardFont('F2', HELVETICA_BOLD),
});

// fontkit ships no type declarations: the part of its API used here.
interface FkGlyph {
  id: number;
  advanceWidth: number;
  codePoints: number[];
}
interface FkPosition {
  xAdvance: number;
  yAdvance: number;
  xOffset: number;
  yOffset: number;
}
interface FkRun {
  glyphs: FkGlyph[];
  positions: FkPosition[];
}
interface FkSubset {
  cff?: unknown;
  includeGlyph(id: number): number;
  encode(): Uint8Array;
}
export interface FkFont {
  unitsPerEm: number;
  ascent: number;
  descent: number;
  capHeight: number;
  xHeight: number;
  italicAngle: number;
  postscriptName: string;
  bbox: { minX: number; minY: number; maxX: number; maxY: number };
  post: { isFixedPitch: number | boolean };
  head: { macStyle: { italic: boolean } };
  'OS/2'?: { sFamilyClass: number };
  hasGlyphForCodePoint(cp: number): boolean;
  layout(text: string): FkRun;
  createSubset(): FkSubset;
  getGlyph(id: number): FkGlyph;
}

/** Opens a font file (a named face of a collection) with fontkit, loaded only when needed. */
export function openFont(path: string, postscriptName?: string): FkFont | null {
  const fontkit = createRequire(import.meta.url)('fontkit') as { create(data: Buffer, name?: string): unknown };
  const f = fontkit.create(readFileSync(path), postscriptName) as Partial<FkFont> | null;
  // A collection (no face named) has no layout(): not usable.
  return f && typeof f.layout === 'function' ? (f as FkFont) : null;
}

/** A glyph as laid out: subset glyph id and position, in 1/1000 em. */
interface Placed {
  gid: number;
  xAdvance: number;
  advanceWidth: number;
  xOffset: number;
  yOffset: number;
}

export class EmbeddedFont implements PdfFont {
  readonly ascender: number;
  private readonly scale: number;
  private readonly subset: FkSubset;
  /** By subset glyph id: advance width (1/1000 em) and the code points it shows. */
  private readonly widths: number[];
  private readonly unicode: number[][] = [[0]];
  /** Words laid out once: pdfkit lays text out word by word (split after spaces) and caches. */
  private readonly words = new Map<string, { placed: Placed[]; width: number }>();

  constructor(
    readonly id: string,
    private readonly font: FkFont,
    readonly ref: number,
  ) {
    this.scale = 1000 / font.unitsPerEm;
    this.ascender = font.ascent * this.scale;
    this.subset = font.createSubset();
    this.widths = [font.getGlyph(0).advanceWidth * this.scale];
  }

  private word(w: string): { placed: Placed[]; width: number } {
    let run = this.words.get(w);
    if (run) return run;
    const { glyphs, positions } = this.font.layout(w);
    const placed: Placed[] = [];
    let width = 0;
    glyphs.forEach((g, i) => {
      const p = positions[i]!;
      const gid = this.subset.includeGlyph(g.id);
      this.widths[gid] ??= g.advanceWidth * this.scale;
      this.unicode[gid] ??= g.codePoints;
      placed.push({
        gid,
        xAdvance: p.xAdvance * this.scale,
        advanceWidth: g.advanceWidth * this.scale,
        xOffset: p.xOffset * this.scale,
        yOffset: p.yOffset * this.scale,
      });
      width += p.xAdvance * this.scale;
    });
    run = { placed, width };
    this.words.set(w, run);
    return run;
  }

  private layout(text: string): { placed: Placed[]; width: number } {
    const placed: Placed[] = [];
    let width = 0;
    for (const w of text.split(/(?<=[ \t])/)) {
      if (!w) continue;
      const run = this.word(w);
      placed.push(...run.placed);
      width += run.width;
    }
    return { placed, width };
  }

  widthOf(text: string, size: number): number {
    return (this.layout(text).width * size) / 1000;
  }

  show(text: string, x: number, y: number, size: number): string {
    // pdfkit's TJ: glyph ids in hex, split where a glyph's advance differs from its width, and
    // a text matrix of its own for a glyph placed off its pen position.
    const { placed } = this.layout(text);
    const scale = size / 1000;
    let out = `BT /${this.id} ${num(size)} Tf 1 0 0 1 ${num(x)} ${num(y)} Tm `;
    const commands: string[] = [];
    let last = 0;
    const segment = (cur: number) => {
      if (last < cur) {
        let hex = '';
        for (let k = last; k < cur; k++) hex += placed[k]!.gid.toString(16).padStart(4, '0');
        const g = placed[cur - 1]!;
        commands.push(`<${hex}> ${num(g.advanceWidth - g.xAdvance)}`);
      }
      last = cur;
    };
    const flush = (cur: number) => {
      segment(cur);
      if (commands.length > 0) out += `[${commands.join(' ')}] TJ `;
      commands.length = 0;
    };
    let offset = false;
    for (let i = 0; i < placed.length; i++) {
      const g = placed[i]!;
      if (g.xOffset || g.yOffset) {
        flush(i);
        out += `1 0 0 1 ${num(x + g.xOffset * scale)} ${num(y + g.yOffset * scale)} Tm `;
        flush(i + 1);
        offset = true;
      } else {
        if (offset) out += `1 0 0 1 ${num(x)} ${num(y)} Tm `;
        offset = false;
        if (g.xAdvance !== g.advanceWidth) segment(i + 1);
      }
      x += g.xAdvance * scale;
    }
    flush(placed.length);
    return `${out}ET\n`;
  }

  /** Writes the subset and its dictionaries (at the end, when every glyph shown is known). */
  embed(w: PdfWriter): void {
    const f = this.font;
    const isCff = this.subset.cff != null;
    const file = w.alloc();
    w.stream(file, isCff ? ' /Subtype /CIDFontType0C' : '', this.subset.encode(), { level: 6 });
    const familyClass = (f['OS/2']?.sFamilyClass ?? 0) >> 8;
    let flags = 1 << 2; // symbolic: glyphs addressed by id
    if (f.post.isFixedPitch) flags |= 1;
    if (familyClass >= 1 && familyClass <= 7) flags |= 1 << 1;
    if (familyClass === 10) flags |= 1 << 3;
    if (f.head.macStyle.italic) flags |= 1 << 6;
    const name = `BNDRYA+${(f.postscriptName ?? 'Font').replace(/[^\x21-\x7e]|[()<>[\]{}/%#]/g, '_')}`;
    const s = this.scale;
    const descriptor = w.alloc();
    const bbox = [f.bbox.minX, f.bbox.minY, f.bbox.maxX, f.bbox.maxY].map((v) => num(v * s)).join(' ');
    w.object(
      descriptor,
      `<</Type /FontDescriptor /FontName /${name} /Flags ${flags} /FontBBox [${bbox}] /ItalicAngle ${num(f.italicAngle)}` +
        ` /Ascent ${num(this.ascender)} /Descent ${num(f.descent * s)} /CapHeight ${num((f.capHeight || f.ascent) * s)}` +
        ` /XHeight ${num((f.xHeight || 0) * s)} /StemV 0 /${isCff ? 'FontFile3' : 'FontFile2'} ${file} 0 R>>`,
    );
    const widths = Array.from(this.widths, (v) => num(v ?? 0)).join(' ');
    const cid = w.alloc();
    w.object(
      cid,
      `<</Type /Font /Subtype /${isCff ? 'CIDFontType0' : 'CIDFontType2'} /BaseFont /${name}` +
        ` /CIDSystemInfo <</Registry (Adobe) /Ordering (Identity) /Supplement 0>> /FontDescriptor ${descriptor} 0 R` +
        ` /W [0 [${widths}]]${isCff ? '' : ' /CIDToGIDMap /Identity'}>>`,
    );
    const toUnicode = w.alloc();
    w.stream(toUnicode, '', this.toUnicodeCmap(), { level: 6 });
    w.object(
      this.ref,
      `<</Type /Font /Subtype /Type0 /BaseFont /${name} /Encoding /Identity-H /DescendantFonts [${cid} 0 R] /ToUnicode ${toUnicode} 0 R>>`,
    );
  }

  /** Glyph id → text, so text extraction (pdftotext, copy and paste) gives the name back. */
  private toUnicodeCmap(): string {
    const hex4 = (v: number) => v.toString(16).padStart(4, '0');
    const entries = Array.from(this.unicode, (cps) => {
      let s = '';
      for (const cp of cps ?? [0])
        s += cp > 0xffff ? hex4(0xd800 | ((cp - 0x10000) >> 10)) + hex4(0xdc00 | (cp & 0x3ff)) : hex4(cp);
      return `<${s}>`;
    });
    const ranges: string[] = [];
    for (let i = 0; i < entries.length; i += 100) {
      const end = Math.min(entries.length, i + 100);
      ranges.push(`<${hex4(i)}> <${hex4(end - 1)}> [${entries.slice(i, end).join(' ')}]`);
    }
    return (
      '/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n' +
      '/CIDSystemInfo <</Registry (Adobe) /Ordering (UCS) /Supplement 0>> def\n' +
      '/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n1 begincodespacerange\n<0000> <ffff>\nendcodespacerange\n' +
      `${ranges.length} beginbfrange\n${ranges.join('\n')}\nendbfrange\n` +
      'endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n'
    );
  }
}
