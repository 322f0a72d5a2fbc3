import { performance } from 'node:perf_hooks';
import { Unzip, UnzipInflate, UnzipPassThrough } from 'fflate';
import { AppError } from '../../errors.js';

/**
 * Bounds on an uploaded relation file, so one upload cannot take the server's memory or CPU
 * (issue 11, finding 7: an 826 KB xlsx reached 3.9 GB RSS). Every bound ends the import with
 * IMPORT_TOO_LARGE before anything is written. Rows count blank ones too: a sheet of millions of
 * empty rows costs as much to read as a full one.
 */
export const IMPORT_LIMITS = {
  /** Bytes of an xlsx upload (a csv keeps the route's IMPORT_BODY_LIMIT). */
  xlsxBytes: 64 * 1024 * 1024,
  /** Bytes of every zip entry of an xlsx once inflated, together. */
  xlsxInflatedBytes: 512 * 1024 * 1024,
  /** Bytes of xl/sharedStrings.xml once inflated (exceljs keeps the table in memory). */
  sharedStringsBytes: 96 * 1024 * 1024,
  /** Entries of the shared strings table. */
  sharedStrings: 2_000_000,
  /** Records read (blank ones included), header and all. */
  records: 1_010_000,
  /** Wall time of reading and checking one file. */
  wallMs: 5 * 60_000,
} as const;

export type ImportLimits = { -readonly [K in keyof typeof IMPORT_LIMITS]: number };

export function tooLarge(what: string): AppError {
  return new AppError('IMPORT_TOO_LARGE', `${what}; nothing was imported. Split the file (csv reads faster than xlsx)`);
}

/** A deadline on wall time, checked as records and chunks go by. */
export class Deadline {
  private readonly end: number;
  constructor(private readonly ms: number) {
    this.end = performance.now() + ms;
  }
  check(): void {
    if (performance.now() > this.end) throw tooLarge(`Reading the file took longer than ${Math.round(this.ms / 1000)} s`);
  }
}

/** The upload is not a zip archive the guard can walk. */
export class NotAZip extends Error {
  override name = 'NotAZip';
}

/** Small pushes keep one chunk's inflation small: deflate expands at most about 1032:1. */
const PUSH_BYTES = 16 * 1024;
/** Bytes of one sheet row's XML; a relation row is well under 1 KB. */
const MAX_ROW_XML = 1024 * 1024;

/**
 * Counts the elements `<tag ` / `<tag>` / `<tag/>` in XML that arrives in pieces, and how many
 * bytes have gone by since the last one.
 */
class TagCounter {
  count = 0;
  sinceLast = 0;
  private matched = 0;
  private readonly pattern: number[];
  constructor(tag: string) {
    this.pattern = [...Buffer.from(`<${tag}`, 'latin1')];
  }
  feed(data: Uint8Array, onTag?: (gap: number) => void): void {
    const p = this.pattern;
    let m = this.matched;
    for (let i = 0; i < data.length; i++) {
      const b = data[i]!;
      this.sinceLast++;
      if (m === p.length) {
        if (b === 0x3e || b === 0x20 || b === 0x2f || b === 0x0a || b === 0x0d || b === 0x09) {
          this.count++;
          onTag?.(this.sinceLast);
          this.sinceLast = 0;
        }
        m = 0;
      }
      m = b === p[m] ? m + 1 : b === p[0] ? 1 : 0;
    }
    this.matched = m;
  }
}

/**
 * Walks an xlsx upload's zip as its bytes go by, ahead of the reader (exceljs), and inflates each
 * entry only to count: an entry's declared size is checked before any of it is inflated, and the
 * bytes actually inflated are counted too (a zip may lie about sizes or use data descriptors), as
 * are the sheet rows (blank ones included) and the shared strings. `push` throws IMPORT_TOO_LARGE
 * before the chunk that would cross a bound is passed on, so the reader never parses past a bound.
 */
export class XlsxGuard {
  private readonly unzip: Unzip;
  private raw = 0;
  private inflated = 0;
  private sharedBytes = 0;
  private readonly shared = new TagCounter('si');
  private readonly rows = new TagCounter('row');
  private failure: AppError | null = null;

  constructor(private readonly limits: ImportLimits = IMPORT_LIMITS) {
    this.unzip = new Unzip((file) => {
      if (this.failure) return;
      const kind = /(^|\/)sharedStrings\.xml$/i.test(file.name)
        ? 'shared'
        : /(^|\/)worksheets\/[^/]+\.xml$/i.test(file.name)
          ? 'sheet'
          : 'other';
      const declared = file.originalSize ?? 0;
      if (declared > limits.xlsxInflatedBytes || (kind === 'shared' && declared > limits.sharedStringsBytes)) {
        this.failure = tooLarge(`The xlsx entry ${file.name} unpacks to ${declared} bytes`);
        return;
      }
      if (file.compression !== 0 && file.compression !== 8) return; // exceljs reports what it cannot read
      file.ondata = (err, data) => {
        if (err || this.failure) return;
        this.inflated += data.length;
        if (this.inflated > limits.xlsxInflatedBytes) {
          this.failure = tooLarge(`The xlsx unpacks to more than ${limits.xlsxInflatedBytes / 2 ** 20} MB`);
        } else if (kind === 'shared') this.countShared(data);
        else if (kind === 'sheet') this.countRows(data);
      };
      file.start();
    });
    this.unzip.register(UnzipInflate);
    this.unzip.register(UnzipPassThrough);
  }

  private countShared(data: Uint8Array): void {
    this.sharedBytes += data.length;
    if (this.sharedBytes > this.limits.sharedStringsBytes) {
      this.failure = tooLarge(`The xlsx shared strings unpack to more than ${this.limits.sharedStringsBytes / 2 ** 20} MB`);
      return;
    }
    this.shared.feed(data);
    if (this.shared.count > this.limits.sharedStrings) {
      this.failure = tooLarge(`The xlsx has more than ${this.limits.sharedStrings} shared strings`);
    }
  }

  private countRows(data: Uint8Array): void {
    let longest = 0;
    this.rows.feed(data, (gap) => {
      if (gap > longest) longest = gap;
    });
    if (this.rows.count > this.limits.records) {
      this.failure = tooLarge(`The sheet has more than ${this.limits.records} rows (blank ones count)`);
    } else if (longest > MAX_ROW_XML || this.rows.sinceLast > MAX_ROW_XML) {
      this.failure = tooLarge('A row of the sheet is longer than 1 MB');
    }
  }

  /** Inspects one chunk of the upload; throws IMPORT_TOO_LARGE when it crosses a bound. */
  push(chunk: Uint8Array): void {
    this.raw += chunk.length;
    if (this.raw > this.limits.xlsxBytes) throw tooLarge(`The xlsx is larger than ${this.limits.xlsxBytes / 2 ** 20} MB`);
    for (let at = 0; at < chunk.length && !this.failure; at += PUSH_BYTES) {
      try {
        this.unzip.push(chunk.subarray(at, at + PUSH_BYTES));
      } catch (e) {
        // A zip the guard cannot walk is not read at all (fail closed): the reader reports it.
        throw new NotAZip(e instanceof Error ? e.message : String(e));
      }
    }
    if (this.failure) throw this.failure;
  }
}
