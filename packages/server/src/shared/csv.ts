/**
 * The one csv writer behind every csv Bindery hands out (relation exports, batch manifests, the
 * secrets file, templates). Fields are quoted when they need it (RFC 4180), and a field a
 * spreadsheet would run as a formula gets a leading apostrophe (OWASP "CSV injection"): one that
 * starts with =, +, -, @, a tab or a carriage return. A plain number such as -12 or +3.5 is left
 * alone, since no spreadsheet reads it as anything but that number.
 */
const FORMULA_START = /^[=+\-@\t\r]/;
const PLAIN_NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** The field as a spreadsheet should show it: a formula-looking value gets a leading `'`. */
export function neutraliseFormula(value: string): string {
  return FORMULA_START.test(value) && !PLAIN_NUMBER.test(value) ? `'${value}` : value;
}

/** One field: neutralised, then quoted when it holds a quote, the delimiter or a line break. */
export function csvField(value: string | number | null | undefined): string {
  const s = neutraliseFormula(value === null || value === undefined ? '' : String(value));
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One record, CRLF-terminated (what Excel writes and expects). */
export function csvLine(fields: ReadonlyArray<string | number | null | undefined>): string {
  return `${fields.map(csvField).join(',')}\r\n`;
}

/**
 * Records as UTF-8 chunks of about 64 KB, for streaming a large export without building it whole.
 * `bom` starts the file with a byte-order mark so Excel reads it as UTF-8.
 */
export async function* csvChunks(
  rows:
    | AsyncIterable<ReadonlyArray<string | number | null | undefined>>
    | Iterable<ReadonlyArray<string | number | null | undefined>>,
  opts: { bom?: boolean } = {},
): AsyncGenerator<Buffer> {
  let s = opts.bom ? '\uFEFF' : '';
  for await (const r of rows) {
    s += csvLine(r);
    if (s.length >= 64 * 1024) {
      yield Buffer.from(s, 'utf8');
      s = '';
    }
  }
  if (s) yield Buffer.from(s, 'utf8');
}
