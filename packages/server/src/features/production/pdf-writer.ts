import zlib from 'node:zlib';

/**
 * A small streaming PDF writer for the label PDFs: objects go to the sink as they are made and
 * only their byte offsets are kept (8 bytes an object, 4 more a page for the page tree), so a
 * 100 000-page roll costs ~2 MB of offsets, not its pages. The page tree, catalog, info and
 * cross-reference table are written at the end; the page tree's number is reserved at the start
 * so every page can name it as /Parent.
 */

/** Where the PDF's bytes go. */
export interface PdfSink {
  write(chunk: Buffer): void;
  /** Resolves when the sink can take more (backpressure between pages). */
  ready(): Promise<void>;
}

/** A number as PDF content writes it: at most 3 decimals (1/1000 pt), no exponent. */
export function num(n: number): string {
  return String(Math.round(n * 1000) / 1000);
}

/** A PDF string for text of any script: a literal when ASCII, else UTF-16BE with a byte-order mark. */
export function pdfTextString(s: string): string {
  if (/^[\x20-\x7e]*$/.test(s)) return `(${s.replace(/[\\()]/g, '\\$&')})`;
  let hex = 'FEFF';
  for (let i = 0; i < s.length; i++) hex += s.charCodeAt(i).toString(16).padStart(4, '0');
  return `<${hex}>`;
}

// Level 1: on label content (rectangles and short text) about half level 6's time for ~20 % more bytes.
const PAGE_DEFLATE: zlib.ZlibOptions = { level: 1 };
const XREF_LINES = 4096;

export class PdfWriter {
  private pos = 0;
  /** Byte offset of each object by number; index 0 is the free list head. */
  private offsets = new Float64Array(1024);
  private next = 1;
  private kids = new Uint32Array(1024);
  private pageCount = 0;
  /** The page tree root, written by end(). */
  readonly pagesRef: number;

  constructor(readonly sink: PdfSink) {
    // The binary comment tells transfer tools the file is binary (PDF 32000-1, 7.5.2).
    this.put(Buffer.from('%PDF-1.3\n%\xff\xff\xff\xff\n', 'latin1'));
    this.pagesRef = this.alloc();
  }

  /** Reserves an object number, to be written later (by object() or stream()). */
  alloc(): number {
    const n = this.next++;
    if (n >= this.offsets.length) {
      const grown = new Float64Array(this.offsets.length * 2);
      grown.set(this.offsets);
      this.offsets = grown;
    }
    return n;
  }

  private put(chunk: Buffer): void {
    this.sink.write(chunk);
    this.pos += chunk.length;
  }

  private begin(n: number): void {
    if (n <= 0 || n >= this.next || this.offsets[n] !== 0) throw new Error(`PDF object ${n} not reserved or already written`);
    this.offsets[n] = this.pos;
  }

  /** Writes object `n` with `body` (a dictionary, array, …). */
  object(n: number, body: string): void {
    this.begin(n);
    this.put(Buffer.from(`${n} 0 obj\n${body}\nendobj\n`, 'latin1'));
  }

  /**
   * Writes object `n` as a deflated stream. `dict` holds the dictionary's own entries (without
   * << >>, /Length or /Filter); a string `data` is taken as bytes (latin1).
   */
  stream(n: number, dict: string, data: string | Uint8Array, options: zlib.ZlibOptions = PAGE_DEFLATE): void {
    const raw = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    const deflated = zlib.deflateSync(raw, options);
    this.begin(n);
    this.put(Buffer.from(`${n} 0 obj\n<<${dict} /Length ${deflated.length} /Filter /FlateDecode>>\nstream\n`, 'latin1'));
    this.put(deflated);
    this.put(Buffer.from('\nendstream\nendobj\n', 'latin1'));
  }

  /** Writes one page: its content stream, then its dictionary; returns the page's object number. */
  page(mediaBox: string, resources: number, content: string): number {
    const contents = this.alloc();
    const page = this.alloc();
    this.stream(contents, '', content);
    this.object(
      page,
      `<</Type /Page /Parent ${this.pagesRef} 0 R /MediaBox ${mediaBox} /Contents ${contents} 0 R /Resources ${resources} 0 R>>`,
    );
    if (this.pageCount === this.kids.length) {
      const grown = new Uint32Array(this.kids.length * 2);
      grown.set(this.kids);
      this.kids = grown;
    }
    this.kids[this.pageCount++] = page;
    return page;
  }

  /** The page tree, catalog, info dictionary, cross-reference table and trailer. */
  end(info: Record<string, string>): void {
    this.begin(this.pagesRef);
    this.put(Buffer.from(`${this.pagesRef} 0 obj\n<</Type /Pages /Count ${this.pageCount} /Kids [`, 'latin1'));
    for (let i = 0; i < this.pageCount; i += XREF_LINES) {
      let s = '';
      for (let k = i; k < Math.min(this.pageCount, i + XREF_LINES); k++) s += `${this.kids[k]} 0 R `;
      this.put(Buffer.from(s, 'latin1'));
    }
    this.put(Buffer.from(']>>\nendobj\n', 'latin1'));
    const catalog = this.alloc();
    this.object(catalog, `<</Type /Catalog /Pages ${this.pagesRef} 0 R>>`);
    const infoRef = this.alloc();
    const entries = Object.entries(info).map(([k, v]) => `/${k} ${pdfTextString(v)}`);
    this.object(infoRef, `<<${entries.join(' ')}>>`);

    const xref = this.pos;
    const size = this.next;
    this.put(Buffer.from(`xref\n0 ${size}\n0000000000 65535 f \n`, 'latin1'));
    for (let n = 1; n < size; n += XREF_LINES) {
      let s = '';
      for (let k = n; k < Math.min(size, n + XREF_LINES); k++) {
        if (this.offsets[k] === 0) throw new Error(`PDF object ${k} reserved but never written`);
        s += `${String(this.offsets[k]).padStart(10, '0')} 00000 n \n`;
      }
      this.put(Buffer.from(s, 'latin1'));
    }
    this.put(
      Buffer.from(`trailer\n<</Size ${size} /Root ${catalog} 0 R /Info ${infoRef} 0 R>>\nstartxref\n${xref}\n%%EOF\n`, 'latin1'),
    );
  }
}
