/**
 * An uploaded SN list for a campaign's target (issue 14 item 1), read in the browser: a .csv file's
 * first column, or a .txt file's SNs separated as pasted ones are. No spreadsheet reader is bundled
 * in the console, so .xlsx is refused with a hint to save it as CSV.
 */

/** Larger files are refused before they are read (100 000 SNs, the server's limit, fit in well under this). */
export const SN_FILE_MAX_BYTES = 1024 * 1024;
/** The most SNs one campaign may list (the server's MAX_SNS). */
export const SN_LIST_MAX = 100_000;

export type SnFileResult =
  | { ok: true; sns: string[] }
  | { ok: false; error: 'too_large' | 'xlsx' | 'not_text' | 'empty' | 'too_many' };

/** A header cell naming the column (skipped when it is the first row). */
const HEADER = /^(sn|sns|serial|serial ?no\.?|serial number|device sn|序列号|设备序列号|设备 ?sn)$/i;

/** SNs pasted or in a .txt file: separated by spaces, commas, semicolons or new lines. */
export function splitSns(text: string): string[] {
  return text
    .split(/[\s,;]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** The first cell of each CSV row (quoted or not; comma, semicolon or tab separated). */
function firstColumn(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split(/\r\n|\n|\r/)) {
    let cell: string;
    if (line.startsWith('"')) {
      const end = line.indexOf('"', 1);
      cell = end < 0 ? line.slice(1) : line.slice(1, end);
    } else {
      cell = line.split(/[,;\t]/, 1)[0] ?? '';
    }
    cell = cell.trim();
    if (cell) out.push(cell);
  }
  return out;
}

/** Distinct, in the file's order. */
function unique(list: string[]): string[] {
  return [...new Set(list)];
}

/** Reads `file`'s SNs, or says why it cannot. */
export async function readSnFile(file: Pick<File, 'name' | 'size' | 'arrayBuffer'>): Promise<SnFileResult> {
  if (file.size > SN_FILE_MAX_BYTES) return { ok: false, error: 'too_large' };
  const bytes = new Uint8Array(await file.arrayBuffer());
  // A zip (xlsx, or any office file) starts "PK"; whatever its name says.
  if (/\.xlsx?$/i.test(file.name) || (bytes[0] === 0x50 && bytes[1] === 0x4b)) return { ok: false, error: 'xlsx' };
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return { ok: false, error: 'not_text' };
  }
  if (text.includes('\u0000')) return { ok: false, error: 'not_text' };
  text = text.replace(/^\uFEFF/, '');
  const cells = /\.csv$/i.test(file.name) ? firstColumn(text) : splitSns(text);
  if (cells.length && HEADER.test(cells[0]!)) cells.shift();
  const sns = unique(cells);
  if (sns.length === 0) return { ok: false, error: 'empty' };
  if (sns.length > SN_LIST_MAX) return { ok: false, error: 'too_many' };
  return { ok: true, sns };
}
