import { PassThrough } from 'node:stream';
import { crc32 } from './qr-render.js';
import { ZipWriter } from './zip-writer.js';

/**
 * manifest.xlsx written directly: one worksheet of inline strings (no shared-strings table,
 * so nothing is kept per row), deflated as it goes through the batch zip's own ZipWriter.
 * It replaces exceljs's WorkbookWriter on this path, which held ≈ 0.36 KB a row outside the
 * heap until the workbook was committed and cost ≈ 29 µs a row (docs/benchmarks.md).
 * The result opens in Excel, LibreOffice and exceljs (production.test.ts reads it back).
 */

const NS = 'http://schemas.openxmlformats.org/spreadsheetml/2006/main';
const REL = 'http://schemas.openxmlformats.org/officeDocument/2006/relationships';
const PKG_REL = 'http://schemas.openxmlformats.org/package/2006/relationships';
const XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n';

const STATIC: Array<[string, string]> = [
  [
    '[Content_Types].xml',
    `${XML}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">` +
      '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>' +
      '<Default Extension="xml" ContentType="application/xml"/>' +
      '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>' +
      '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>' +
      '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>' +
      '</Types>',
  ],
  [
    '_rels/.rels',
    `${XML}<Relationships xmlns="${PKG_REL}">` +
      `<Relationship Id="rId1" Type="${REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>`,
  ],
  [
    'xl/workbook.xml',
    `${XML}<workbook xmlns="${NS}" xmlns:r="${REL}"><sheets><sheet name="manifest" sheetId="1" r:id="rId1"/></sheets></workbook>`,
  ],
  [
    'xl/_rels/workbook.xml.rels',
    `${XML}<Relationships xmlns="${PKG_REL}">` +
      `<Relationship Id="rId1" Type="${REL}/worksheet" Target="worksheets/sheet1.xml"/>` +
      `<Relationship Id="rId2" Type="${REL}/styles" Target="styles.xml"/></Relationships>`,
  ],
  [
    // Style 0: normal text; style 1: bold (the header row).
    'xl/styles.xml',
    `${XML}<styleSheet xmlns="${NS}">` +
      '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font><font><b/><sz val="11"/><name val="Calibri"/></font></fonts>' +
      '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>' +
      '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>' +
      '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>' +
      '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>' +
      '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>' +
      '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>' +
      '</styleSheet>',
  ],
];

const COLUMNS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** Text as XML character data: markup escaped, characters XML 1.0 forbids dropped. */
export function xmlText(s: string): string {
  return s
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
    .replace(/[&<>]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : '&gt;'));
}

function rowXml(r: number, cells: readonly string[], style: number): string {
  let s = `<row r="${r}">`;
  cells.forEach((v, k) => {
    // Leading/trailing spaces would be trimmed by readers without xml:space.
    s += `<c r="${COLUMNS[k]}${r}" t="inlineStr"${style ? ` s="${style}"` : ''}><is><t xml:space="preserve">${xmlText(v)}</t></is></c>`;
  });
  return `${s}</row>`;
}

/**
 * The worksheet's XML for `n` rows under `header`, in chunks of ~64 KB; it yields to the event
 * loop between chunks so the main thread keeps serving requests.
 */
async function* sheetXml(header: readonly string[], widths: readonly number[], n: number, row: (i: number) => string[]) {
  let s =
    `${XML}<worksheet xmlns="${NS}" xmlns:r="${REL}">` +
    '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/></sheetView></sheetViews>' +
    `<cols>${widths.map((w, k) => `<col min="${k + 1}" max="${k + 1}" width="${w}" customWidth="1"/>`).join('')}</cols>` +
    `<sheetData>${rowXml(1, header, 1)}`;
  for (let i = 0; i < n; i++) {
    s += rowXml(i + 2, row(i), 0);
    if (s.length >= 64 * 1024) {
      yield Buffer.from(s, 'utf8');
      s = '';
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
  yield Buffer.from(`${s}</sheetData></worksheet>`, 'utf8');
}

/** The workbook as a byte stream (an xlsx is a zip); the reader's pace bounds its memory. */
export function manifestXlsx(
  header: readonly string[],
  widths: readonly number[],
  n: number,
  row: (i: number) => string[],
  modified: Date,
): PassThrough {
  const pt = new PassThrough({ highWaterMark: 256 * 1024 });
  const write = async () => {
    const zip = new ZipWriter(pt, modified);
    for (const [name, text] of STATIC) {
      const data = Buffer.from(text, 'utf8');
      await zip.add(name, { data, crc: crc32(data) });
    }
    await zip.addStream('xl/worksheets/sheet1.xml', sheetXml(header, widths, n, row), { deflate: true });
    await zip.finish();
  };
  write().catch((e: Error) => pt.destroy(e));
  return pt;
}
