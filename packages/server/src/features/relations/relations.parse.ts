import { PassThrough, pipeline, Readable } from 'node:stream';
import { CsvError, Parser } from 'csv-parse';
import ExcelJS from 'exceljs';
import { isAppError } from '../../errors.js';
import { Deadline, IMPORT_LIMITS, type ImportLimits, NotAZip, tooLarge, XlsxGuard } from './relations.limits.js';

/**
 * Streamed readers for relation files. Both yield one record per row with the line number a
 * person sees (a text editor's line for csv, the spreadsheet row for xlsx; header = line 1),
 * and never hold the whole upload in memory.
 */
export type FileFormat = 'csv' | 'xlsx';

export interface RawRecord {
  line: number;
  cells: string[];
  /** Cells whose value could not be read faithfully (an xlsx number Excel has rounded). */
  problems?: Array<{ index: number; message: string }>;
}

/** The file cannot be read any further; `line` is where reading stopped. */
export class RelationFileError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(message);
    this.name = 'RelationFileError';
  }
}

export type ByteSource = Readable | AsyncIterable<Buffer | Uint8Array | string>;

/** Records are counted and the clock checked this often; the event loop gets a turn as well. */
const CHECK_EVERY = 1000;

/**
 * The records of a file, within `limits` (relations.limits.ts): at most `limits.records` records
 * (blank ones included) and `limits.wallMs` of reading, else IMPORT_TOO_LARGE. Every
 * CHECK_EVERY records the reader yields to the event loop, so a large upload never holds up
 * other requests (health checks, the gateway).
 */
export async function* readRecords(
  input: ByteSource,
  format: FileFormat,
  limits: ImportLimits = IMPORT_LIMITS,
): AsyncGenerator<RawRecord> {
  const deadline = new Deadline(limits.wallMs);
  const records = format === 'csv' ? readCsv(input) : readXlsx(input, limits, deadline);
  let n = 0;
  for await (const rec of records) {
    if (++n > limits.records) throw tooLarge(`The file has more than ${limits.records} lines or rows (blank ones count)`);
    if (n % CHECK_EVERY === 0) {
      deadline.check();
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    yield rec;
  }
}

// ---------------------------------------------------------------------------------------------
// csv

const SNIFF_BYTES = 64 * 1024;

/**
 * Picks the encoding from the first bytes: a BOM decides; otherwise UTF-8 when the head decodes
 * as UTF-8, else GB18030 (what Excel on a Chinese Windows writes for "CSV (Comma delimited)").
 */
export function sniffEncoding(head: Buffer): 'utf-8' | 'utf-16le' | 'utf-16be' | 'gb18030' {
  if (head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) return 'utf-8';
  if (head[0] === 0xff && head[1] === 0xfe) return 'utf-16le';
  if (head[0] === 0xfe && head[1] === 0xff) return 'utf-16be';
  try {
    // stream: true tolerates a character cut in half at the end of the head.
    new TextDecoder('utf-8', { fatal: true }).decode(head, { stream: true });
    return 'utf-8';
  } catch {
    return 'gb18030';
  }
}

/** The delimiter of the header line: comma, unless the line has more semicolons or tabs (some Excel locales). */
export function sniffDelimiter(headText: string): string {
  const firstLine = headText.split(/\r\n|\r|\n/, 1)[0] ?? '';
  let best = ',';
  let bestCount = 0;
  for (const d of [',', ';', '\t']) {
    const n = firstLine.split(d).length - 1;
    if (n > bestCount) {
      best = d;
      bestCount = n;
    }
  }
  return best;
}

/** Re-encodes the input as UTF-8 Buffers (a no-op pass-through when it already is UTF-8). */
async function* utf8Chunks(source: AsyncIterable<Buffer | Uint8Array | string>, onSniff: (head: string) => void) {
  let head: Buffer[] = [];
  let headLength = 0;
  let decoder: TextDecoder | null | undefined; // undefined: not decided; null: already UTF-8
  const decide = function* () {
    const buf = Buffer.concat(head);
    head = [];
    const enc = sniffEncoding(buf);
    decoder = enc === 'utf-8' ? null : new TextDecoder(enc);
    const text = decoder ? decoder.decode(buf, { stream: true }) : buf.toString('utf8');
    onSniff(text.replace(/^\uFEFF/, ''));
    yield decoder ? Buffer.from(text, 'utf8') : buf;
  };
  for await (const chunk of source) {
    const buf =
      typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (decoder === undefined) {
      head.push(buf);
      headLength += buf.length;
      if (headLength >= SNIFF_BYTES) yield* decide();
      continue;
    }
    yield decoder ? Buffer.from(decoder.decode(buf, { stream: true }), 'utf8') : buf;
  }
  if (decoder === undefined) yield* decide();
  if (decoder) {
    const rest = decoder.decode();
    if (rest) yield Buffer.from(rest, 'utf8');
  }
}

/** Characters of one csv record; a relation row is well under 1 KB. */
const MAX_RECORD_CHARS = 1024 * 1024;

const NEWLINES = /\r\n|\r|\n/g;

function countNewlines(cells: string[]): number {
  let n = 0;
  for (const c of cells) {
    if (c.includes('\n') || c.includes('\r')) n += c.match(NEWLINES)?.length ?? 0;
  }
  return n;
}

/**
 * csv-parse counts a CRLF inside a quoted field as two lines, so lines are counted here: a
 * record starts on the line after the previous one ended and spans its embedded line breaks.
 * Counting as each record is pushed (rather than as it is read) keeps the count right when a
 * parse error drops records still buffered in the stream; it also avoids on_record, whose
 * per-record info object costs about a second per 100 000 rows.
 */
class LineCountingParser extends Parser {
  nextLine = 1;
  override push(cells: unknown, encoding?: BufferEncoding): boolean {
    if (!Array.isArray(cells)) return super.push(cells, encoding);
    const rec: RawRecord = { line: this.nextLine, cells: cells as string[] };
    this.nextLine += 1 + countNewlines(rec.cells);
    // csv-parse builds a CsvError (stack trace and all) for every record whose length differs
    // from the first record's, even though relax_column_count lets it through: about 75 µs per
    // blank line, which made millions of blank lines a CPU sink (issue 11, finding 7). It takes
    // the expected length from a record read while info.records is 0, so holding the count at 0
    // lets each record set its own. Nothing here reads the count (no from/to options).
    (this.info as { records: number }).records = 0;
    return super.push(rec, encoding);
  }
}

async function* readCsv(input: ByteSource): AsyncGenerator<RawRecord> {
  // The delimiter is only known after the head is sniffed, so the parser is made then.
  let delimiter = ',';
  const chunks = utf8Chunks(input, (head) => {
    delimiter = sniffDelimiter(head);
  });
  const first = await chunks.next();
  if (first.done) return;
  const parser = new LineCountingParser({
    bom: true,
    delimiter,
    relax_column_count: true,
    relax_quotes: true,
    skip_empty_lines: false,
    // One record may not swallow the upload: a field that never closes its quote ends here.
    max_record_size: MAX_RECORD_CHARS,
  });
  const source = Readable.from(
    (async function* () {
      yield first.value;
      yield* chunks;
    })(),
  );
  const records = pipeline(source, parser, () => {
    // Errors surface through the iteration below.
  });
  try {
    for await (const rec of records as AsyncIterable<RawRecord>) yield rec;
  } catch (e) {
    if (isAppError(e)) throw e;
    if (e instanceof CsvError) {
      // Its own line count is off by the quirk above; the line is given separately.
      throw new RelationFileError(`The csv cannot be read here: ${e.message.replace(/,? at line \d+/g, '')}`, parser.nextLine);
    }
    throw e;
  } finally {
    source.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// xlsx

type CellValue = ExcelJS.CellValue;

/** A cell as text. Excel stores an IMEI typed without Text format as a number; a whole number
 *  beyond 2^53 has already lost digits, so it is flagged instead of guessed. */
export function cellText(v: CellValue): { text: string; problem?: string } {
  if (v === null || v === undefined) return { text: '' };
  if (typeof v === 'string') return { text: v };
  if (typeof v === 'number') {
    if (Number.isInteger(v) && !Number.isSafeInteger(v)) {
      return {
        text: String(v),
        problem: 'This number is too long for Excel to keep exactly; format the column as Text and type it again',
      };
    }
    return { text: String(v) };
  }
  if (typeof v === 'boolean') return { text: String(v) };
  if (v instanceof Date) return { text: v.toISOString() };
  if ('richText' in v && Array.isArray(v.richText)) return { text: v.richText.map((r) => r.text).join('') };
  if ('error' in v) return { text: String(v.error), problem: `The cell holds the Excel error ${String(v.error)}` };
  if ('formula' in v || 'sharedFormula' in v) return cellText((v as { result?: CellValue }).result ?? null);
  if ('text' in v) return cellText((v as { text: CellValue }).text);
  return { text: String(v) };
}

interface ReaderInternals {
  model?: { sheets?: Array<{ rId?: string }> };
  workbookRels?: Array<{ Id?: string; Target?: string }>;
}

/** The sheet file number of the first tab, when workbook.xml has been read already. */
function firstTabSheetNo(reader: ReaderInternals): string | undefined {
  const rId = reader.model?.sheets?.[0]?.rId;
  const target = reader.workbookRels?.find((r) => r.Id === rId)?.Target;
  return target ? /sheet(\d+)\.xml$/.exec(target)?.[1] : undefined;
}

/**
 * exceljs pipes its input into unzipper, and a pipe does not carry errors: a failing upload
 * (too large, aborted) would leave the reader waiting for bytes forever. So the input is pumped
 * by hand into a stream that is always ended, and the input's error is rethrown afterwards.
 */
/** Bytes of the upload inspected and passed on at a time. */
const PUMP_SLICE = 16 * 1024;

function pumpEnding(
  input: ByteSource,
  inspect: (chunk: Buffer) => void = () => {},
): { stream: PassThrough; error: () => unknown; stop: () => void } {
  const stream = new PassThrough();
  let failure: unknown;
  let stopped = false;
  void (async () => {
    try {
      for await (const chunk of input as AsyncIterable<Buffer | Uint8Array | string>) {
        if (stopped) break;
        const buf =
          typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        // In slices, with a turn of the event loop after each: inspecting a slice may inflate up
        // to ~1000 times its size, and one large chunk must not hold up other requests that long.
        for (let at = 0; at < buf.length && !stopped; at += PUMP_SLICE) {
          const slice = buf.subarray(at, at + PUMP_SLICE);
          // Checked before the reader sees the slice, so it never reads past a bound.
          inspect(slice);
          if (!stream.write(slice)) {
            await new Promise<void>((resolve) => {
              stream.once('drain', resolve);
              stream.once('close', resolve);
            });
          } else await new Promise<void>((resolve) => setImmediate(resolve));
        }
      }
    } catch (e) {
      failure = e;
    } finally {
      stream.end();
    }
  })();
  return {
    stream,
    error: () => failure,
    stop: () => {
      stopped = true;
      stream.destroy();
      if (input instanceof Readable) input.destroy();
    },
  };
}

async function* readXlsx(input: ByteSource, limits: ImportLimits, deadline: Deadline): AsyncGenerator<RawRecord> {
  const guard = new XlsxGuard(limits);
  const pump = pumpEnding(input, (chunk) => {
    deadline.check();
    guard.push(chunk);
  });
  const pumpError = () => {
    const e = pump.error();
    return e instanceof NotAZip ? new RelationFileError('The xlsx cannot be read (is it really an .xlsx workbook?)', 1) : e;
  };
  const reader = new ExcelJS.stream.xlsx.WorkbookReader(pump.stream, {
    sharedStrings: 'cache',
    hyperlinks: 'ignore',
    styles: 'ignore',
    worksheets: 'emit',
    entries: 'ignore',
  });
  let chosen: string | undefined;
  let line = 1;
  try {
    for await (const sheet of reader) {
      const id = String((sheet as unknown as { id: string | number }).id);
      chosen ??= firstTabSheetNo(reader as unknown as ReaderInternals) ?? id;
      // Only the first tab is the relation list; other sheets (notes) are drained unread.
      if (id !== chosen) continue;
      for await (const row of sheet) {
        line = row.number;
        const values = row.values as CellValue[];
        const cells: string[] = [];
        let problems: RawRecord['problems'];
        for (let i = 1; i < values.length; i++) {
          const { text, problem } = cellText(values[i] ?? null);
          cells.push(text);
          if (problem) {
            problems ??= [];
            problems.push({ index: i - 1, message: problem });
          }
        }
        yield problems ? { line, cells, problems } : { line, cells };
      }
    }
  } catch (e) {
    if (pump.error()) throw pumpError();
    if (isAppError(e) || e instanceof RelationFileError) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    throw new RelationFileError(`The xlsx cannot be read (is it really an .xlsx workbook?): ${msg}`, line);
  } finally {
    pump.stop();
  }
  if (pump.error()) throw pumpError();
}
