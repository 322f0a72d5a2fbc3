import type { Writable } from 'node:stream';
import zlib from 'node:zlib';
import { crc32 } from './qr-render.js';

/**
 * A streaming ZIP writer for label batches. Entries go out in order as they are added; only the
 * central directory stays in memory, already encoded (≈70 bytes an entry, in 1 MiB blocks).
 * Entry names must be unique; the caller guarantees it (batch SNs are unique ignoring case). It exists instead of yazl/fflate for
 * three things they don't combine: entries whose deflate and CRC were computed in a worker
 * thread, explicit backpressure on the output (await every full write), and ZIP64 — a
 * 100 000-device batch holds 200 000+ entries, past the classic 65 535 limit.
 */

const METHOD_STORE = 0;
const METHOD_DEFLATE = 8;
const FLAG_DATA_DESCRIPTOR = 0x0008;
const FLAG_UTF8 = 0x0800;
const U32_MAX = 0xffffffff;
const U16_MAX = 0xffff;
/** Output is coalesced into writes of about this size (one chunk on the wire, not one per entry). */
const FLUSH_BYTES = 64 * 1024;

export class ZipAbortedError extends Error {
  constructor(message = 'the zip output was closed before the archive was complete') {
    super(message);
    this.name = 'ZipAbortedError';
  }
}

interface CentralEntry {
  name: Buffer;
  method: number;
  flags: number;
  crc: number;
  compressedSize: number;
  size: number;
  offset: number;
}

export interface PreparedEntry {
  /** The bytes to store: the data itself, or its raw deflate when `size` is given. */
  data: Uint8Array;
  crc: number;
  /** Uncompressed size: set it when `data` is raw-deflated. */
  size?: number;
}

/** Resolves when `w` may take more, or has closed (the next write then fails fast). */
export function waitWritable(w: Writable): Promise<void> {
  return new Promise<void>((resolve) => {
    if (w.destroyed) return resolve();
    const done = () => {
      w.off('drain', done);
      w.off('close', done);
      resolve();
    };
    w.on('drain', done);
    w.on('close', done);
  });
}

function dosDateTime(d: Date): { time: number; date: number } {
  const year = Math.max(1980, d.getUTCFullYear());
  return {
    time: (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | (d.getUTCSeconds() >> 1),
    date: ((year - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate(),
  };
}

const CD_BLOCK = 1 << 20;

/**
 * Where full central-directory blocks go while the archive is written, read back in order by
 * finish(): with a temporary file, the writer's memory no longer grows with the entry count
 * (≈ 65 bytes an entry: 13 MB for a 100 000-label download, 26 MB at 200 000).
 */
export interface CentralDirectorySpill {
  write(block: Uint8Array): Promise<void>;
  read(): AsyncIterable<Uint8Array>;
}

export class ZipWriter {
  private readonly cdBlocks: Buffer[] = [];
  /** Bytes used in each block (a record never straddles two). */
  private readonly cdUsed: number[] = [];
  private count = 0;
  private readonly pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private offset = 0;
  private readonly time: number;
  private readonly date: number;
  private failure: Error | null = null;
  private finished = false;
  private spilled = false;
  private spilling: Promise<void> = Promise.resolve();

  /**
   * `stallMs`: give up when the reader takes nothing for this long, so a client that stops
   * reading cannot hold a render job (and its workers) forever.
   */
  constructor(
    private readonly out: Writable,
    modified: Date = new Date(),
    private readonly stallMs = 5 * 60_000,
    private readonly spill?: CentralDirectorySpill,
  ) {
    ({ time: this.time, date: this.date } = dosDateTime(modified));
    const onClose = () => {
      if (!this.finished) this.failure ??= new ZipAbortedError();
    };
    const onError = (e: Error) => {
      this.failure ??= e;
    };
    out.on('close', onClose);
    out.on('error', onError);
  }

  /** Bytes handed to the output so far (including what is still coalescing). */
  get bytesWritten(): number {
    return this.offset;
  }

  get entryCount(): number {
    return this.count;
  }

  /** Adds a whole entry whose CRC (and deflate, if any) is already known. */
  async add(name: string, e: PreparedEntry): Promise<void> {
    const deflated = e.size !== undefined;
    const entry = this.begin(name, deflated ? METHOD_DEFLATE : METHOD_STORE, 0);
    entry.crc = e.crc >>> 0;
    entry.compressedSize = e.data.length;
    entry.size = deflated ? e.size! : e.data.length;
    if (entry.compressedSize >= U32_MAX || entry.size >= U32_MAX) throw new Error(`zip entry ${name} is too large`);
    this.push(this.localHeader(entry));
    this.push(e.data);
    this.offset += e.data.length;
    this.record(entry);
    if (this.pendingBytes >= FLUSH_BYTES) await this.flush();
  }

  /** Adds a stored entry whose CRC and size are known but whose bytes come as a stream (a file). */
  async addKnownStream(name: string, source: AsyncIterable<Uint8Array>, known: { crc: number; size: number }): Promise<void> {
    if (known.size >= U32_MAX) throw new Error(`zip entry ${name} is larger than 4 GiB`);
    const entry = this.begin(name, METHOD_STORE, 0);
    entry.crc = known.crc >>> 0;
    entry.size = known.size;
    entry.compressedSize = known.size;
    this.push(this.localHeader(entry));
    let seen = 0;
    for await (const chunk of source) {
      seen += chunk.length;
      this.offset += chunk.length;
      this.push(chunk);
      if (this.pendingBytes >= FLUSH_BYTES) await this.flush();
    }
    if (seen !== known.size) throw new Error(`zip entry ${name}: expected ${known.size} bytes, got ${seen}`);
    this.record(entry);
    await this.flush();
  }

  /**
   * Adds an entry from a stream of unknown length: sizes and CRC follow the data in a data
   * descriptor. `deflate` compresses it on the way (zlib, off the main thread's JS).
   */
  async addStream(name: string, source: AsyncIterable<Uint8Array>, opts: { deflate: boolean }): Promise<void> {
    const entry = this.begin(name, opts.deflate ? METHOD_DEFLATE : METHOD_STORE, FLAG_DATA_DESCRIPTOR);
    this.push(this.localHeader(entry));
    let crc = 0;
    let size = 0;
    let compressed = 0;
    const emit = async (chunk: Uint8Array) => {
      compressed += chunk.length;
      this.offset += chunk.length;
      this.push(chunk);
      if (this.pendingBytes >= FLUSH_BYTES) await this.flush();
    };
    if (opts.deflate) {
      const deflater = zlib.createDeflateRaw();
      const feed = (async () => {
        try {
          for await (const chunk of source) {
            if (deflater.destroyed) throw new ZipAbortedError();
            crc = crc32(chunk, crc);
            size += chunk.length;
            if (!deflater.write(chunk)) await waitWritable(deflater);
          }
          deflater.end();
        } catch (e) {
          deflater.destroy(e as Error);
        }
      })();
      try {
        for await (const chunk of deflater as AsyncIterable<Buffer>) await emit(chunk);
      } finally {
        deflater.destroy();
        await feed;
      }
    } else {
      for await (const chunk of source) {
        crc = crc32(chunk, crc);
        size += chunk.length;
        await emit(chunk);
      }
    }
    if (size >= U32_MAX || compressed >= U32_MAX) throw new Error(`zip entry ${name} is larger than 4 GiB`);
    entry.crc = crc;
    entry.size = size;
    entry.compressedSize = compressed;
    const dd = Buffer.alloc(16);
    dd.writeUInt32LE(0x08074b50, 0);
    dd.writeUInt32LE(crc, 4);
    dd.writeUInt32LE(compressed, 8);
    dd.writeUInt32LE(size, 12);
    this.push(dd);
    this.offset += 16;
    this.record(entry);
    await this.flush();
  }

  /** Writes the central directory (ZIP64 when needed) and ends the output. */
  async finish(): Promise<void> {
    const cdStart = this.offset;
    await this.spilling;
    if (this.spill && this.spilled) {
      for await (const chunk of this.spill.read()) {
        this.push(chunk);
        this.offset += chunk.length;
        if (this.pendingBytes >= FLUSH_BYTES) await this.flush();
      }
    }
    for (const [i, block] of this.cdBlocks.entries()) {
      const used = this.cdUsed[i]!;
      this.push(block.subarray(0, used));
      this.offset += used;
      await this.flush();
    }
    const cdSize = this.offset - cdStart;
    const count = this.count;
    if (count >= U16_MAX || cdStart >= U32_MAX || cdSize >= U32_MAX) {
      const z = Buffer.alloc(56 + 20);
      z.writeUInt32LE(0x06064b50, 0);
      z.writeBigUInt64LE(44n, 4); // size of the rest of this record
      z.writeUInt16LE((3 << 8) | 45, 12);
      z.writeUInt16LE(45, 14);
      z.writeUInt32LE(0, 16);
      z.writeUInt32LE(0, 20);
      z.writeBigUInt64LE(BigInt(count), 24);
      z.writeBigUInt64LE(BigInt(count), 32);
      z.writeBigUInt64LE(BigInt(cdSize), 40);
      z.writeBigUInt64LE(BigInt(cdStart), 48);
      // ZIP64 end of central directory locator
      z.writeUInt32LE(0x07064b50, 56);
      z.writeUInt32LE(0, 60);
      z.writeBigUInt64LE(BigInt(this.offset), 64);
      z.writeUInt32LE(1, 72);
      this.push(z);
      this.offset += z.length;
    }
    const eocd = Buffer.alloc(22);
    eocd.writeUInt32LE(0x06054b50, 0);
    eocd.writeUInt16LE(0, 4);
    eocd.writeUInt16LE(0, 6);
    eocd.writeUInt16LE(Math.min(count, U16_MAX), 8);
    eocd.writeUInt16LE(Math.min(count, U16_MAX), 10);
    eocd.writeUInt32LE(Math.min(cdSize, U32_MAX), 12);
    eocd.writeUInt32LE(Math.min(cdStart, U32_MAX), 16);
    eocd.writeUInt16LE(0, 20);
    this.push(eocd);
    this.offset += 22;
    await this.flush();
    this.finished = true;
    await new Promise<void>((resolve, reject) => {
      this.out.end((err?: Error | null) => (err ? reject(err) : resolve()));
    });
  }

  private begin(name: string, method: number, extraFlags: number): CentralEntry {
    if (this.failure) throw this.failure;
    const entry: CentralEntry = {
      name: Buffer.from(name, 'utf8'),
      method,
      flags: FLAG_UTF8 | extraFlags,
      crc: 0,
      compressedSize: 0,
      size: 0,
      offset: this.offset,
    };
    if (entry.name.length > U16_MAX) throw new Error('zip entry name too long');
    return entry;
  }

  /** Encodes a finished entry's central directory record. */
  private record(e: CentralEntry): void {
    // Sizes stay below 4 GiB (checked when added); only offsets can need the ZIP64 extra field.
    const zip64 = e.offset >= U32_MAX;
    const len = 46 + e.name.length + (zip64 ? 12 : 0);
    const last = this.cdBlocks.length - 1;
    let block = this.cdBlocks[last];
    let at = this.cdUsed[last] ?? 0;
    if (!block || at + len > block.length) {
      if (block && this.spill) {
        // The full block goes to the spill file; finish() reads it back before the rest.
        const full = block.subarray(0, at);
        this.cdBlocks.pop();
        this.cdUsed.pop();
        this.spilled = true;
        this.spilling = this.spilling.then(() => this.spill!.write(full));
        this.spilling.catch((e: Error) => {
          this.failure ??= e;
        });
      }
      block = Buffer.allocUnsafe(Math.max(CD_BLOCK, len));
      this.cdBlocks.push(block);
      this.cdUsed.push(0);
      at = 0;
    }
    const h = block.subarray(at, at + len);
    this.cdUsed[this.cdUsed.length - 1] = at + len;
    h.writeUInt32LE(0x02014b50, 0);
    h.writeUInt16LE((3 << 8) | (zip64 ? 45 : 20), 4); // made by: UNIX, spec version
    h.writeUInt16LE(zip64 ? 45 : 20, 6);
    h.writeUInt16LE(e.flags, 8);
    h.writeUInt16LE(e.method, 10);
    h.writeUInt16LE(this.time, 12);
    h.writeUInt16LE(this.date, 14);
    h.writeUInt32LE(e.crc >>> 0, 16);
    h.writeUInt32LE(e.compressedSize, 20);
    h.writeUInt32LE(e.size, 24);
    h.writeUInt16LE(e.name.length, 28);
    h.writeUInt16LE(zip64 ? 12 : 0, 30);
    h.writeUInt16LE(0, 32); // comment
    h.writeUInt16LE(0, 34); // disk
    h.writeUInt16LE(0, 36); // internal attributes
    h.writeUInt32LE((0o100644 << 16) >>> 0, 38); // -rw-r--r--
    h.writeUInt32LE(Math.min(e.offset, U32_MAX), 42);
    e.name.copy(h, 46);
    if (zip64) {
      h.writeUInt16LE(0x0001, 46 + e.name.length);
      h.writeUInt16LE(8, 48 + e.name.length);
      h.writeBigUInt64LE(BigInt(e.offset), 50 + e.name.length);
    }
    this.count++;
  }

  private localHeader(e: CentralEntry): Buffer {
    const h = Buffer.alloc(30 + e.name.length);
    h.writeUInt32LE(0x04034b50, 0);
    h.writeUInt16LE(20, 4);
    h.writeUInt16LE(e.flags, 6);
    h.writeUInt16LE(e.method, 8);
    h.writeUInt16LE(this.time, 10);
    h.writeUInt16LE(this.date, 12);
    // With a data descriptor these are zero here and follow the data.
    h.writeUInt32LE(e.crc, 14);
    h.writeUInt32LE(e.compressedSize, 18);
    h.writeUInt32LE(e.size, 22);
    h.writeUInt16LE(e.name.length, 26);
    h.writeUInt16LE(0, 28);
    e.name.copy(h, 30);
    this.offset += h.length;
    return h;
  }

  private push(b: Uint8Array): void {
    this.pending.push(b);
    this.pendingBytes += b.length;
  }

  /** Hands the coalesced bytes to the output and waits while it is over its high-water mark. */
  private async flush(): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.pendingBytes === 0) return;
    const chunk = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending.length = 0;
    this.pendingBytes = 0;
    if (this.out.destroyed || this.out.writableEnded) {
      this.failure ??= new ZipAbortedError();
      throw this.failure;
    }
    if (!this.out.write(chunk)) await this.drained();
  }

  private drained(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const stall = setTimeout(() => {
        this.failure ??= new ZipAbortedError(`the reader took nothing for ${Math.round(this.stallMs / 1000)} s`);
        done();
      }, this.stallMs);
      const done = () => {
        clearTimeout(stall);
        this.out.off('drain', done);
        this.out.off('close', done);
        this.out.off('error', done);
        if (this.failure) reject(this.failure);
        else resolve();
      };
      this.out.on('drain', done);
      this.out.on('close', done);
      this.out.on('error', done);
    });
  }
}
