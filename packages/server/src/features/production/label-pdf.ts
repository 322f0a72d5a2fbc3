import { existsSync } from 'node:fs';
import { EmbeddedFont, openFont, type PdfFont, type StandardFont, standardFonts, winAnsiCode } from './pdf-fonts.js';
import { num, type PdfSink, PdfWriter } from './pdf-writer.js';
import { pdfQrOps, type QrMatrix, QUIET_ZONE } from './qr-render.js';

export type { PdfSink } from './pdf-writer.js';

/**
 * Print-ready label PDFs, written by our own streaming writer (pdf-writer.ts): the QR as one
 * vector path of the device's dark modules (sharp at any printer resolution), the SN in bold
 * underneath, then the verification code a typed bind asks for, then the model name.
 *
 * - `a4`: a 4 × 8 grid of 47.5 × 34.1 mm cells on A4 with 10 mm margins and hairline cut
 *   guides; a footer names the model, batch, label range and page.
 * - `roll`: one 50 × 30 mm page per label for thermal roll printers; QR left, text right.
 *
 * Pages are emitted as they are made (the caller's sink gets the bytes), never held whole. The
 * fonts are defined once and shared by every page through one resources dictionary. Positions,
 * sizes, fitting and wrapping are those of the pdfkit code this replaced (issue 16).
 */
export type LabelLayout = 'a4' | 'roll';
export const LABEL_LAYOUTS: readonly LabelLayout[] = ['a4', 'roll'];

export interface LabelSource {
  readonly count: number;
  sn(i: number): string;
  /** The six-digit verification code asked for when the SN is typed (binding/scan.ts verifCodeFor). */
  code(i: number): string;
  matrix(i: number): QrMatrix;
}

export interface LabelMeta {
  modelName: string;
  batchId: string;
}

const MM = 72 / 25.4;

export const A4_GRID = {
  pageW: 210,
  pageH: 297,
  cols: 4,
  rows: 8,
  marginX: 10,
  marginTop: 10,
  marginBottom: 14,
  // 24 mm leaves room under the QR for the SN, the verification code and the model name.
  qr: 24,
} as const;

export const ROLL = { pageW: 50, pageH: 30, qr: 28, pad: 1 } as const;

/** A4 in points as pdfkit rounds it, so the sheet is the size it always was. */
const A4_POINTS = [595.28, 841.89] as const;

export function isWinAnsi(s: string): boolean {
  for (const ch of s) if (winAnsiCode(ch.codePointAt(0)!) < 0) return false;
  return true;
}

/** System fonts tried, in order, for model names the standard fonts cannot show (e.g. Chinese). */
const FALLBACK_FONTS: Array<{ path: string; family?: string }> = [
  { path: '/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc', family: 'NotoSansCJKsc-Regular' },
  { path: '/usr/share/fonts/truetype/wqy/wqy-microhei.ttc', family: 'WenQuanYiMicroHei' },
  { path: '/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc', family: 'WenQuanYiZenHei' },
  { path: '/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf' },
  { path: '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf' },
];

/** The model name as it will print, and its font. */
interface NameFont {
  font: PdfFont;
  text: string;
  embedded?: EmbeddedFont;
}

/**
 * Names outside WinAnsi need an embedded font that has every glyph; without one, the missing
 * characters print as '?'. `ref` is the object number reserved for that font.
 */
function chooseNameFont(name: string, helvetica: StandardFont, ref: () => number): NameFont {
  if (isWinAnsi(name)) return { font: helvetica, text: name };
  for (const f of FALLBACK_FONTS) {
    if (!existsSync(f.path)) continue;
    try {
      const font = openFont(f.path, f.family);
      if (font && [...name].every((ch) => font.hasGlyphForCodePoint(ch.codePointAt(0)!))) {
        const embedded = new EmbeddedFont('F3', font, ref());
        return { font: embedded, text: name, embedded };
      }
    } catch {
      // unreadable font file: try the next one
    }
  }
  return { font: helvetica, text: [...name].map((ch) => (isWinAnsi(ch) ? ch : '?')).join('') };
}

interface Fitted {
  size: number;
  lines: string[];
}

/**
 * The largest size in [min, max] at which `text` fits `width` on one line; else wrapped at
 * `min` — between words when `words` (names), anywhere otherwise (SNs have no spaces).
 */
function fitText(font: PdfFont, text: string, width: number, max: number, min: number, words = false): Fitted {
  for (let size = max; size >= min; size -= 0.5) {
    if (font.widthOf(text, size) <= width) return { size, lines: [text] };
  }
  const w = (s: string) => font.widthOf(s, min);
  const lines: string[] = [];
  let line = '';
  const tokens = words ? text.split(/(?<=\s)/) : [...text];
  for (const token of tokens) {
    if (line && w(line + token.trimEnd()) > width) {
      lines.push(line.trimEnd());
      line = '';
    }
    if (w(token.trimEnd()) > width) {
      // A word wider than the line: break it by characters.
      for (const ch of token) {
        if (line && w(line + ch) > width) {
          lines.push(line);
          line = '';
        }
        line += ch;
      }
    } else line += token;
  }
  if (line.trim()) lines.push(line.trimEnd());
  return { size: min, lines };
}

/** One line at `size`, shortened with an ellipsis when it does not fit. */
function ellipsize(font: PdfFont, text: string, width: number, size: number): string {
  if (font.widthOf(text, size) <= width) return text;
  const chars = [...text];
  while (chars.length > 1 && font.widthOf(`${chars.join('')}…`, size) > width) chars.pop();
  return `${chars.join('')}…`;
}

/**
 * A page's content, in pdfkit's coordinates (points, y down from the page's top) turned into
 * PDF's (y up) as it is written.
 */
class Content {
  s = '';
  constructor(private readonly pageH: number) {}

  /** Text whose top is at y (its baseline one ascender lower), as pdfkit's text() placed it. */
  text(font: PdfFont, str: string, x: number, y: number, size: number): void {
    this.s += font.show(str, x, this.pageH - y - (font.ascender * size) / 1000, size);
  }

  /** Lines of `f`, each centred on cx or starting at cx. */
  lines(font: PdfFont, f: Fitted, cx: number, y: number, lineH: number, align: 'center' | 'left'): void {
    f.lines.forEach((line, k) => {
      const x = align === 'center' ? cx - font.widthOf(line, f.size) / 2 : cx;
      this.text(font, line, x, y + k * lineH, f.size);
    });
  }

  /** The QR's dark modules as one path; the box includes the quiet zone. */
  qr(m: QrMatrix, x: number, y: number, box: number): void {
    const mod = box / (m.size + 2 * QUIET_ZONE);
    const ox = x + QUIET_ZONE * mod;
    const oy = y + QUIET_ZONE * mod;
    // pdfQrOps counts rows down from the top: a y-flipping matrix places row 0 at oy.
    this.s += `q ${mod.toFixed(4)} 0 0 ${(-mod).toFixed(4)} ${ox.toFixed(3)} ${num(this.pageH - oy)} cm\n${pdfQrOps(m)}Q\n`;
  }

  strokeRect(x: number, y: number, w: number, h: number): void {
    this.s += `${num(x)} ${num(this.pageH - y - h)} ${num(w)} ${num(h)} re S\n`;
  }
}

const yieldNow = () => new Promise<void>((resolve) => setImmediate(resolve));

interface Doc {
  w: PdfWriter;
  resources: number;
  bold: StandardFont;
  name: NameFont;
}

/** Writes the whole label PDF of `src` into `sink`; resolves when the last byte was written. */
export async function writeLabelPdf(
  layout: LabelLayout,
  src: LabelSource,
  meta: LabelMeta,
  sink: PdfSink,
  onProgress?: (done: number) => void,
): Promise<void> {
  const w = new PdfWriter(sink);
  const { regular, bold } = standardFonts();
  const name = chooseNameFont(meta.modelName, regular, () => w.alloc());
  const fonts: string[] = [];
  for (const f of [regular, bold]) {
    const ref = w.alloc();
    w.object(ref, `<</Type /Font /Subtype /Type1 /BaseFont /${f.name} /Encoding /WinAnsiEncoding>>`);
    fonts.push(`/${f.id} ${ref} 0 R`);
  }
  if (name.embedded) fonts.push(`/${name.embedded.id} ${name.embedded.ref} 0 R`);
  // One resources dictionary for every page: the fonts are defined once per document.
  const resources = w.alloc();
  w.object(resources, `<</ProcSet [/PDF /Text] /Font <<${fonts.join(' ')}>>>>`);
  const doc: Doc = { w, resources, bold, name };

  if (layout === 'a4') await a4(doc, src, meta, onProgress);
  else await roll(doc, src, onProgress);

  // The subset holds exactly the glyphs the pages showed, so it is written after them.
  name.embedded?.embed(w);
  w.end({ Title: `Labels ${meta.batchId} (${meta.modelName})`, Creator: 'Bindery', Producer: 'Bindery' });
  await sink.ready();
}

async function a4(doc: Doc, src: LabelSource, meta: LabelMeta, onProgress?: (done: number) => void): Promise<void> {
  const { w, bold, name } = doc;
  const g = A4_GRID;
  const [pageW, pageH] = A4_POINTS;
  const mediaBox = `[0 0 ${pageW} ${pageH}]`;
  const perPage = g.cols * g.rows;
  const cellW = ((g.pageW - 2 * g.marginX) / g.cols) * MM;
  const cellH = ((g.pageH - g.marginTop - g.marginBottom) / g.rows) * MM;
  const qr = g.qr * MM;
  const textW = cellW - 4 * MM;
  const pages = Math.ceil(src.count / perPage);
  const modelLine = ellipsize(name.font, name.text, textW, 6.5);
  const modelW = name.font.widthOf(modelLine, 6.5);
  for (let first = 0, page = 1; first < src.count; first += perPage, page++) {
    if (first > 0) {
      await w.sink.ready();
      await yieldNow();
    }
    const c = new Content(pageH);
    const last = Math.min(src.count, first + perPage);
    const footer = `${name.text} · batch ${meta.batchId} · labels ${first + 1}–${last} of ${src.count} · page ${page} of ${pages}`;
    c.s += '0.4 g\n';
    c.text(
      name.font,
      ellipsize(name.font, footer, (g.pageW - 2 * g.marginX) * MM, 6),
      g.marginX * MM,
      (g.pageH - g.marginBottom + 5) * MM,
      6,
    );
    // Hairline cut guides, each stroked before its cell's content (as pdfkit drew them).
    c.s += '0.25 w 0.733333 G 0 g\n';
    for (let i = first; i < last; i++) {
      const k = i - first;
      const x = g.marginX * MM + (k % g.cols) * cellW;
      const y = g.marginTop * MM + Math.floor(k / g.cols) * cellH;
      c.strokeRect(x, y, cellW, cellH);
      c.qr(src.matrix(i), x + (cellW - qr) / 2, y + 1 * MM, qr);
      const sn = fitText(bold, src.sn(i), textW, 8, 5);
      const snY = y + 1 * MM + qr + 0.6 * MM;
      c.lines(bold, sn, x + cellW / 2, snY, sn.size * 1.1, 'center');
      const codeY = snY + sn.lines.length * sn.size * 1.1;
      const code = `Code ${src.code(i)}`;
      c.text(bold, code, x + (cellW - bold.widthOf(code, 6.5)) / 2, codeY, 6.5);
      const nameY = codeY + 6.5 * 1.1 + 0.3 * MM;
      c.s += '0.2 g\n';
      c.text(name.font, modelLine, x + (cellW - modelW) / 2, nameY, 6.5);
      c.s += '0 g\n';
      if (onProgress && (i + 1) % 256 === 0) onProgress(i + 1);
    }
    w.page(mediaBox, doc.resources, c.s);
  }
  onProgress?.(src.count);
}

async function roll(doc: Doc, src: LabelSource, onProgress?: (done: number) => void): Promise<void> {
  const { w, bold, name } = doc;
  const r = ROLL;
  const pageW = r.pageW * MM;
  const pageH = r.pageH * MM;
  // pdfkit's 6 decimals: the page exactly the size it was.
  const mediaBox = `[0 0 ${pageW.toFixed(6)} ${pageH.toFixed(6)}]`;
  const qr = r.qr * MM;
  const textX = (r.pad + r.qr + 0.5) * MM;
  const textW = (r.pageW - r.pad - r.qr - 0.5 - r.pad) * MM;
  const nameFit = fitText(name.font, name.text, textW, 6.5, 5, true);
  const nameLines: Fitted = { size: nameFit.size, lines: nameFit.lines.slice(0, 3) };
  for (let i = 0; i < src.count; i++) {
    const c = new Content(pageH);
    c.s += '0 g\n';
    c.qr(src.matrix(i), r.pad * MM, (pageH - qr) / 2, qr);
    const sn = fitText(bold, src.sn(i), textW, 9, 5);
    const snY = 8 * MM;
    c.lines(bold, sn, textX, snY, sn.size * 1.15, 'left');
    const codeY = snY + sn.lines.length * sn.size * 1.15 + 0.5 * MM;
    c.text(bold, `Code ${src.code(i)}`, textX, codeY, 7);
    const nameY = codeY + 7 * 1.2 + 1.2 * MM;
    c.s += '0.2 g\n';
    c.lines(name.font, nameLines, textX, nameY, nameLines.size * 1.2, 'left');
    w.page(mediaBox, doc.resources, c.s);
    if ((i + 1) % 32 === 0) {
      await w.sink.ready();
      await yieldNow();
    }
    if (onProgress && (i + 1) % 256 === 0) onProgress(i + 1);
  }
  onProgress?.(src.count);
}
