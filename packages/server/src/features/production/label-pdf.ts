import { existsSync } from 'node:fs';
import PDFDocument from 'pdfkit';
import { pdfQrOps, type QrMatrix, QUIET_ZONE } from './qr-render.js';

/**
 * Print-ready label PDFs, drawn with pdfkit: the QR as vector rectangles from the device's
 * matrix (sharp at any printer resolution), the SN in bold underneath, then the verification
 * code a typed bind asks for, then the model name.
 *
 * - `a4`: a 4 × 8 grid of 47.5 × 34.1 mm cells on A4 with 10 mm margins and hairline cut
 *   guides; a footer names the model, batch, label range and page.
 * - `roll`: one 50 × 30 mm page per label for thermal roll printers; QR left, text right.
 *
 * Pages are emitted as they are made (the caller's sink gets the bytes), never held whole.
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

export interface PdfSink {
  write(chunk: Buffer): void;
  /** Resolves when the sink can take more (backpressure between pages). */
  ready(): Promise<void>;
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

// Characters the standard PDF fonts (WinAnsiEncoding) can show besides Latin-1.
const WIN_ANSI_EXTRA = new Set('€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ');

export function isWinAnsi(s: string): boolean {
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if ((c >= 0x20 && c < 0x7f) || (c >= 0xa0 && c <= 0xff) || WIN_ANSI_EXTRA.has(ch)) continue;
    return false;
  }
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

type GlyphFont = { font?: { hasGlyphForCodePoint?: (cp: number) => boolean } };

/**
 * The font for the model name, and the name as it will print. Names outside WinAnsi need an
 * embedded font that has every glyph; without one, the missing characters print as '?'.
 */
function chooseNameFont(doc: PDFKit.PDFDocument, name: string): { font: string; text: string } {
  if (isWinAnsi(name)) return { font: 'Helvetica', text: name };
  for (const f of FALLBACK_FONTS) {
    if (!existsSync(f.path)) continue;
    try {
      doc.registerFont('label-name', f.path, f.family as string);
      doc.font('label-name');
      // pdfkit exposes the fontkit font of an embedded font here; it is not in its typings.
      const fk = (doc as unknown as { _font: GlyphFont })._font.font;
      if (fk?.hasGlyphForCodePoint && [...name].every((ch) => fk.hasGlyphForCodePoint!(ch.codePointAt(0)!))) {
        return { font: 'label-name', text: name };
      }
    } catch {
      // unreadable font file: try the next one
    }
  }
  return { font: 'Helvetica', text: [...name].map((ch) => (isWinAnsi(ch) ? ch : '?')).join('') };
}

interface Fitted {
  size: number;
  lines: string[];
}

/**
 * The largest size in [min, max] at which `text` fits `width` on one line; else wrapped at
 * `min` — between words when `words` (names), anywhere otherwise (SNs have no spaces).
 */
function fitText(
  doc: PDFKit.PDFDocument,
  font: string,
  text: string,
  width: number,
  max: number,
  min: number,
  words = false,
): Fitted {
  doc.font(font);
  for (let size = max; size >= min; size -= 0.5) {
    if (doc.fontSize(size).widthOfString(text) <= width) return { size, lines: [text] };
  }
  doc.fontSize(min);
  const lines: string[] = [];
  let line = '';
  const tokens = words ? text.split(/(?<=\s)/) : [...text];
  for (const token of tokens) {
    if (line && doc.widthOfString(line + token.trimEnd()) > width) {
      lines.push(line.trimEnd());
      line = '';
    }
    if (doc.widthOfString(token.trimEnd()) > width) {
      // A word wider than the line: break it by characters.
      for (const ch of token) {
        if (line && doc.widthOfString(line + ch) > width) {
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
function ellipsize(doc: PDFKit.PDFDocument, font: string, text: string, width: number, size: number): string {
  doc.font(font).fontSize(size);
  if (doc.widthOfString(text) <= width) return text;
  const chars = [...text];
  while (chars.length > 1 && doc.widthOfString(`${chars.join('')}…`) > width) chars.pop();
  return `${chars.join('')}…`;
}

function drawQr(doc: PDFKit.PDFDocument, m: QrMatrix, x: number, y: number, box: number): void {
  // The box includes the quiet zone; the symbol sits inside it.
  const mod = box / (m.size + 2 * QUIET_ZONE);
  const ox = x + QUIET_ZONE * mod;
  const oy = y + QUIET_ZONE * mod;
  doc.save();
  doc.addContent(`0 g ${mod.toFixed(4)} 0 0 ${mod.toFixed(4)} ${ox.toFixed(3)} ${oy.toFixed(3)} cm`);
  doc.addContent(pdfQrOps(m));
  doc.restore();
}

function drawLines(
  doc: PDFKit.PDFDocument,
  font: string,
  f: Fitted,
  cx: number,
  y: number,
  lineH: number,
  align: 'center' | 'left',
  color = 'black',
) {
  doc.font(font).fontSize(f.size).fillColor(color);
  f.lines.forEach((line, k) => {
    const w = doc.widthOfString(line);
    doc.text(line, align === 'center' ? cx - w / 2 : cx, y + k * lineH, { lineBreak: false });
  });
}

const yieldNow = () => new Promise<void>((resolve) => setImmediate(resolve));

type WrittenRef = { id: number; data: Record<string, unknown>; offset?: number };
type PageTree = { _root: { data: { Pages: { data: { Kids: unknown[] } } } } };

/** Builds the stand-in class once, from pdfkit's own (unexported) reference base class. */
let CompactRef: (new (id: number) => object) | null = null;

/** A written object's reference as pdfkit serialises it (`12 0 R`): its number and nothing else. */
function compactRef(ref: WrittenRef): object {
  if (!CompactRef) {
    // PDFObject.convert writes any PDFAbstractReference with its toString().
    const Abstract = Object.getPrototypeOf((ref as object).constructor.prototype).constructor as new () => object;
    CompactRef = class extends Abstract {
      constructor(private readonly num: number) {
        super();
      }
      override toString(): string {
        return `${this.num} 0 R`;
      }
    };
  }
  return new CompactRef(ref.id);
}

/**
 * pdfkit keeps each finished page's dictionary — and through it the page's content and
 * resources objects — reachable from the page tree until the document ends: about 1 KB a
 * page, 100 MB for a 100 000-page roll. Once a page is written only its object number is
 * still needed (for the Kids array), so the page tree keeps just that: a 16-byte stand-in
 * instead of the ~150-byte PDFReference (document, buffers, flags).
 */
function addPage(doc: PDFKit.PDFDocument, options: PDFKit.PDFDocumentOptions): void {
  const prev = (doc as unknown as { page?: PDFKit.PDFPage }).page;
  doc.addPage(options);
  const dict = prev?.dictionary as unknown as WrittenRef | undefined;
  // `offset` is set when pdfkit has written the object; never touch one that is still open.
  if (!dict || dict.offset === undefined) return;
  dict.data = {};
  const kids = (doc as unknown as PageTree)._root.data.Pages.data.Kids;
  // The page just added is last; the one before it is `prev`.
  if (kids[kids.length - 2] === dict) kids[kids.length - 2] = compactRef(dict);
}

/** Writes the whole label PDF of `src` into `sink`; resolves when the last byte was written. */
export async function writeLabelPdf(
  layout: LabelLayout,
  src: LabelSource,
  meta: LabelMeta,
  sink: PdfSink,
  onProgress?: (done: number) => void,
): Promise<void> {
  const doc = new PDFDocument({
    autoFirstPage: false,
    margin: 0,
    compress: true,
    info: { Title: `Labels ${meta.batchId} (${meta.modelName})`, Creator: 'Bindery', Producer: 'Bindery (pdfkit)' },
  });
  const ended = new Promise<void>((resolve, reject) => {
    doc.on('end', resolve);
    doc.on('error', reject);
  });
  doc.on('data', (chunk: Buffer) => sink.write(chunk));
  const name = chooseNameFont(doc, meta.modelName);

  if (layout === 'a4') await a4(doc, src, meta, name, sink, onProgress);
  else await roll(doc, src, name, sink, onProgress);

  doc.end();
  await ended;
}

async function a4(
  doc: PDFKit.PDFDocument,
  src: LabelSource,
  meta: LabelMeta,
  name: { font: string; text: string },
  sink: PdfSink,
  onProgress?: (done: number) => void,
): Promise<void> {
  const g = A4_GRID;
  const perPage = g.cols * g.rows;
  const cellW = ((g.pageW - 2 * g.marginX) / g.cols) * MM;
  const cellH = ((g.pageH - g.marginTop - g.marginBottom) / g.rows) * MM;
  const qr = g.qr * MM;
  const textW = cellW - 4 * MM;
  const pages = Math.ceil(src.count / perPage);
  const modelLine = ellipsize(doc, name.font, name.text, textW, 6.5);
  for (let i = 0; i < src.count; i++) {
    const k = i % perPage;
    if (k === 0) {
      addPage(doc, { size: 'A4', margin: 0 });
      const page = i / perPage + 1;
      const last = Math.min(src.count, i + perPage);
      const footer = `${name.text} · batch ${meta.batchId} · labels ${i + 1}–${last} of ${src.count} · page ${page} of ${pages}`;
      const footerText = ellipsize(doc, name.font, footer, (g.pageW - 2 * g.marginX) * MM, 6);
      doc.fillColor('#666666').text(footerText, g.marginX * MM, (g.pageH - g.marginBottom + 5) * MM, { lineBreak: false });
      if (i > 0) {
        await sink.ready();
        await yieldNow();
      }
    }
    const x = g.marginX * MM + (k % g.cols) * cellW;
    const y = g.marginTop * MM + Math.floor(k / g.cols) * cellH;
    // Hairline cut guide around the cell.
    doc.save().lineWidth(0.25).strokeColor('#bbbbbb').rect(x, y, cellW, cellH).stroke().restore();
    drawQr(doc, src.matrix(i), x + (cellW - qr) / 2, y + 1 * MM, qr);
    const sn = fitText(doc, 'Helvetica-Bold', src.sn(i), textW, 8, 5);
    const snY = y + 1 * MM + qr + 0.6 * MM;
    drawLines(doc, 'Helvetica-Bold', sn, x + cellW / 2, snY, sn.size * 1.1, 'center');
    const codeY = snY + sn.lines.length * sn.size * 1.1;
    const code = `Code ${src.code(i)}`;
    doc.font('Helvetica-Bold').fontSize(6.5).fillColor('black');
    doc.text(code, x + (cellW - doc.widthOfString(code)) / 2, codeY, { lineBreak: false });
    const nameY = codeY + 6.5 * 1.1 + 0.3 * MM;
    doc.font(name.font).fontSize(6.5).fillColor('#333333');
    doc.text(modelLine, x + (cellW - doc.widthOfString(modelLine)) / 2, nameY, { lineBreak: false });
    if (onProgress && (i + 1) % 256 === 0) onProgress(i + 1);
  }
  onProgress?.(src.count);
}

async function roll(
  doc: PDFKit.PDFDocument,
  src: LabelSource,
  name: { font: string; text: string },
  sink: PdfSink,
  onProgress?: (done: number) => void,
): Promise<void> {
  const r = ROLL;
  const size: [number, number] = [r.pageW * MM, r.pageH * MM];
  const qr = r.qr * MM;
  const textX = (r.pad + r.qr + 0.5) * MM;
  const textW = (r.pageW - r.pad - r.qr - 0.5 - r.pad) * MM;
  const nameFit = fitText(doc, name.font, name.text, textW, 6.5, 5, true);
  const nameLines = nameFit.lines.slice(0, 3);
  for (let i = 0; i < src.count; i++) {
    addPage(doc, { size, margin: 0 });
    drawQr(doc, src.matrix(i), r.pad * MM, (r.pageH * MM - qr) / 2, qr);
    const sn = fitText(doc, 'Helvetica-Bold', src.sn(i), textW, 9, 5);
    const snY = 8 * MM;
    drawLines(doc, 'Helvetica-Bold', sn, textX, snY, sn.size * 1.15, 'left');
    const codeY = snY + sn.lines.length * sn.size * 1.15 + 0.5 * MM;
    doc
      .font('Helvetica-Bold')
      .fontSize(7)
      .fillColor('black')
      .text(`Code ${src.code(i)}`, textX, codeY, { lineBreak: false });
    const nameY = codeY + 7 * 1.2 + 1.2 * MM;
    drawLines(doc, name.font, { size: nameFit.size, lines: nameLines }, textX, nameY, nameFit.size * 1.2, 'left', '#333333');
    if ((i + 1) % 32 === 0) {
      await sink.ready();
      await yieldNow();
    }
    if (onProgress && (i + 1) % 256 === 0) onProgress(i + 1);
  }
  onProgress?.(src.count);
}
