import { type LabelFormat, labelContent } from '@bindery/protocol';
import type { ModelsTable } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { verifCodeFor } from '../binding/scan.js';
import { ROLL } from './label-pdf.js';
import type { BatchRow, ProductionRepo } from './production.repo.js';
import { darkRuns, QUIET_ZONE, qrMatrix } from './qr-render.js';

function xml(s: string): string {
  return s.replace(/[<>&"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

export interface PreviewLabel {
  sn: string;
  code: string;
  content: string;
  modelName: string;
}

/**
 * One roll label as SVG at its printed size (50 × 30 mm, `width="50mm"`), laid out like
 * labels-roll.pdf: the QR on the left, then the SN in bold, "Code <verification code>" and the
 * model name. The console shows it so a vendor sees a real label before printing a batch.
 */
export function labelSvg(l: PreviewLabel): string {
  const m = qrMatrix(l.content);
  const w = m.size + 2 * QUIET_ZONE;
  const unit = ROLL.qr / w;
  let d = '';
  const runs = darkRuns(m);
  for (let i = 0; i < runs.length; i += 3) {
    d += `M${runs[i]! + QUIET_ZONE} ${runs[i + 1]! + QUIET_ZONE + 0.5}h${runs[i + 2]!}`;
  }
  const textX = ROLL.pad + ROLL.qr + 1;
  const textW = ROLL.pageW - textX - ROLL.pad;
  const fonts = `font-family="Helvetica, Arial, 'Noto Sans CJK SC', sans-serif"`;
  // Each line is sized to the text column and pinned to its width with textLength, so whichever
  // font the viewer has, nothing spills past the label's edge (the PDF measures real metrics).
  const line = (text: string, y: number, max: number, min: number, extra = '') => {
    const size = Math.max(min, Math.min(max, textW / ems(text)));
    const width = Math.min(textW, ems(text) * size);
    return `<text x="${textX}" y="${y.toFixed(2)}" ${fonts} font-size="${size.toFixed(2)}" textLength="${width.toFixed(2)}" lengthAdjust="spacingAndGlyphs"${extra}>${xml(text)}</text>`;
  };
  const name = wrap(l.modelName, textW / 2);
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="${ROLL.pageW}mm" height="${ROLL.pageH}mm" viewBox="0 0 ${ROLL.pageW} ${ROLL.pageH}">` +
    `<title>${xml(l.sn)}</title>` +
    `<rect width="${ROLL.pageW}" height="${ROLL.pageH}" fill="#fff"/>` +
    `<g transform="translate(${ROLL.pad} ${(ROLL.pageH - ROLL.qr) / 2}) scale(${unit.toFixed(5)})" shape-rendering="crispEdges">` +
    `<path stroke="#000" stroke-width="1" fill="none" d="${d}"/></g>` +
    line(l.sn, 9, 3.6, 1.6, ' font-weight="bold"') +
    line(`Code ${l.code}`, 14.5, 3, 2) +
    name.map((n, k) => line(n, 19.5 + k * 2.6, 2.2, 1.6, ' fill="#333"')).join('') +
    '</svg>\n'
  );
}

/** Width in ems, roughly: a CJK character is square, a Latin one about 0.62 em. */
function ems(s: string): number {
  let e = 0;
  for (const ch of s) e += ch.codePointAt(0)! > 0x2e80 ? 1 : 0.62;
  return Math.max(e, 0.62);
}

/** At most two lines of about `maxEms` ems each, broken between words where there are any. */
function wrap(s: string, maxEms: number): string[] {
  const text = s.trim().slice(0, 60);
  if (ems(text) <= maxEms) return [text];
  const words = text.split(/\s+/);
  if (words.length > 1) {
    let first = words[0]!;
    let k = 1;
    while (k < words.length && ems(`${first} ${words[k]}`) <= maxEms) first += ` ${words[k++]}`;
    return [first, words.slice(k).join(' ')];
  }
  const half = Math.ceil([...text].length / 2);
  return [[...text].slice(0, half).join(''), [...text].slice(half).join('')];
}

/** The batch's first label (or the one with `sn`), as labelSvg draws it. */
export async function previewLabel(
  deps: Pick<Deps, 'config' | 'secrets'>,
  repo: ProductionRepo,
  batch: BatchRow,
  model: ModelsTable,
  sn?: string,
): Promise<PreviewLabel> {
  const d = await repo.batchLabel(batch.id, sn);
  if (!d) fail('DEVICE_NOT_FOUND', sn ? `No device ${sn} in batch ${batch.id}` : `Batch ${batch.id} has no devices yet`);
  const content = labelContent(deps.config.publicUrl, model.label_format as LabelFormat, model.label_template, {
    pk: model.product_key,
    sn: d.sn,
    hwCode: d.hw_code,
  });
  return { sn: d.sn, code: verifCodeFor(deps.secrets.open(d.secret_no_enc), d.sn), content, modelName: model.name };
}
