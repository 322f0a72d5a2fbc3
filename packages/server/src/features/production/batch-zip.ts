import { createReadStream } from 'node:fs';
import { type FileHandle, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { PassThrough, Writable } from 'node:stream';
import { type LabelFormat, labelContent } from '@bindery/protocol';
import type { ModelsTable } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { csvField } from '../../shared/csv.js';
import { verifCodeFor } from '../binding/scan.js';
import type { LabelLayout } from './label-pdf.js';
import { manifestXlsx } from './manifest-xlsx.js';
import type { BatchRow, ProductionRepo } from './production.repo.js';
import { crc32, packedLength } from './qr-render.js';
import { acquireRenderPool, type RenderPool } from './render-pool.js';
import { waitWritable, ZipAbortedError, ZipWriter } from './zip-writer.js';

/**
 * The batch zip (docs/labels.md), streamed. Memory is the labels' text (~100 bytes a label) and
 * their packed matrices (~175 bytes), kept once in shared buffers the PDF workers read in place;
 * the zip's central directory and manifest.xlsx go to temporary files, and everything else moves
 * through in bounded windows.
 */

/** What a zip may hold; all of it by default. */
export type ZipPart = 'manifest' | 'png' | 'svg' | 'pdf';
export const ZIP_PARTS: readonly ZipPart[] = ['manifest', 'png', 'svg', 'pdf'];

export interface ZipResult {
  bytes: number;
  entries: number;
  devices: number;
}

export interface BatchZipContext {
  deps: Pick<Deps, 'config' | 'secrets' | 'metrics'>;
  repo: ProductionRepo;
  batch: BatchRow;
  model: ModelsTable;
  include: Set<ZipPart>;
  now: number;
  onProgress?: (done: number, total: number) => void;
}

const RENDER_CHUNK = 256;
/**
 * Devices read (and their codes derived, synchronously) per step: small enough that one step
 * holds the main thread for a few ms, so health checks and binds are served between steps.
 */
const PAGE = 1000;
/** Digits of the verification code printed on each label (binding/scan.ts verifCodeFor). */
const CODE_LEN = 6;

export const MANIFEST_HEADER = ['SN', 'PK', 'hw_code', 'QR content', 'verification code'];
const MANIFEST_WIDTHS = [24, 14, 26, 70, 18];

/** The labels of a batch, read once, so every entry shows the same devices even if one is deleted meanwhile. */
interface Labels {
  n: number;
  sns: string[];
  hwCodes: string[];
  /** SN bytes back to back (SNs are ASCII), shared with the PDF workers. */
  snBytes: SharedArrayBuffer;
  snOffsets: SharedArrayBuffer;
  /** CODE_LEN ASCII digits per label. */
  codes: SharedArrayBuffer;
  code(i: number): string;
}

async function readLabels(ctx: Pick<BatchZipContext, 'deps' | 'repo' | 'batch'>): Promise<Labels> {
  const sns: string[] = [];
  const hwCodes: string[] = [];
  const codeParts: Buffer[] = [];
  for (let after = 0; ; ) {
    const page = await ctx.repo.batchLabels(ctx.batch.id, after, PAGE);
    if (page.length === 0) break;
    const codes = Buffer.allocUnsafe(page.length * CODE_LEN);
    page.forEach((d, k) => {
      sns.push(d.sn);
      hwCodes.push(d.hw_code);
      // The SecretNo is opened only to derive the printed code and dropped right away.
      codes.write(verifCodeFor(ctx.deps.secrets.open(d.secret_no_enc), d.sn), k * CODE_LEN, 'latin1');
    });
    codeParts.push(codes);
    after = page[page.length - 1]!.id;
    // SQLite answers synchronously (its awaits resolve as microtasks): without a turn of the event
    // loop here, 100 000 labels' reads and code derivations held every other request for ~2 s.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  const n = sns.length;
  const codes = new SharedArrayBuffer(Math.max(1, n * CODE_LEN));
  const codeView = Buffer.from(codes);
  let at = 0;
  for (const p of codeParts) {
    p.copy(codeView, at);
    at += p.length;
  }
  let snTotal = 0;
  for (const sn of sns) snTotal += sn.length;
  const snBytes = new SharedArrayBuffer(Math.max(1, snTotal));
  const snOffsets = new SharedArrayBuffer(4 * (n + 1));
  const bytes = Buffer.from(snBytes);
  const offsets = new Uint32Array(snOffsets);
  let o = 0;
  sns.forEach((sn, i) => {
    offsets[i] = o;
    o += bytes.write(sn, o, 'latin1');
  });
  offsets[n] = o;
  return {
    n,
    sns,
    hwCodes,
    snBytes,
    snOffsets,
    codes,
    code: (i) => codeView.toString('latin1', i * CODE_LEN, (i + 1) * CODE_LEN),
  };
}

/** Streams the whole zip into `out` and ends it (or destroys it on failure). */
export async function streamBatchZip(ctx: BatchZipContext, out: Writable): Promise<ZipResult> {
  const { batch, model, include, now, onProgress } = ctx;
  const L = await readLabels(ctx);
  const n = L.n;
  const format = model.label_format as LabelFormat;
  const { publicUrl } = ctx.deps.config;
  // Made again where needed rather than kept: 100 000 URLs are ~10 MB.
  const content = (i: number) =>
    labelContent(publicUrl, format, model.label_template, { pk: model.product_key, sn: L.sns[i]!, hwCode: L.hwCodes[i]! });
  const rows = (i: number) => [L.sns[i]!, model.product_key, L.hwCodes[i]!, content(i), L.code(i)];
  const images = include.has('png') || include.has('svg');
  const pdf = include.has('pdf');
  const total = Math.max(1, n * ((images || pdf ? 1 : 0) + (pdf ? 1 : 0)));
  let cd: { file: string; h: FileHandle; at: number } | null = null;
  const zip = new ZipWriter(out, new Date(now), undefined, {
    write: async (block) => {
      cd ??= { ...(await tempFile('central-directory')), at: 0 };
      for (let o = 0; o < block.length; ) o += (await cd.h.write(block, o, block.length - o, cd.at + o)).bytesWritten;
      cd.at += block.length;
    },
    read: () => createReadStream(cd!.file, { highWaterMark: 256 * 1024 }),
  });
  const started = process.hrtime.bigint();
  let lease: ReturnType<typeof acquireRenderPool> | null = null;
  /** PDF jobs started for this zip: stopped and waited for if the zip fails. */
  const pdfJobs: Array<ReturnType<RenderPool['pdf']>> = [];
  let tmp: string | null = null;
  const handles: FileHandle[] = [];
  let xlsx: Promise<{ crc: number; size: number; file: string }> | null = null;
  let xlsxSource: PassThrough | null = null;
  const tempFile = async (name: string) => {
    tmp ??= await mkdtemp(path.join(tmpdir(), `bindery-labels-${batch.id}-`));
    const file = path.join(tmp, name);
    const h = await open(file, 'w');
    handles.push(h);
    return { file, h };
  };
  try {
    const readme = Buffer.from(readmeText(batch, model, n, include, now), 'utf8');
    await zip.add('README.txt', { data: readme, crc: crc32(readme) });

    if (include.has('manifest')) {
      await zip.addStream('manifest.csv', manifestCsv(n, rows), { deflate: true });
      // The spreadsheet is written to a temp file while the workers render (the main thread
      // is mostly idle then) and copied in at the end, instead of making the workers wait.
      const { file, h } = await tempFile('manifest.xlsx');
      xlsxSource = manifestXlsx(MANIFEST_HEADER, MANIFEST_WIDTHS, n, rows, new Date(now));
      xlsx = spool(xlsxSource, h).then((known) => ({ ...known, file }));
      xlsx.catch(() => {}); // awaited below
    }

    if ((images || pdf) && n > 0) {
      lease = acquireRenderPool();
      const pool = lease.pool;
      const matrices = await renderImages(pool, L, content, zip, { png: include.has('png'), svg: include.has('svg'), pdf }, (d) =>
        onProgress?.(d, total),
      );
      if (pdf && matrices) {
        const meta = { modelName: model.name, batchId: batch.id };
        const labels = {
          sns: L.snBytes,
          snOffsets: L.snOffsets,
          codes: L.codes,
          matrices: matrices.arena,
          offsets: matrices.offsets,
        };
        const { file: rollFile, h: rollHandle } = await tempFile('labels-roll.pdf');
        // Both layouts at once, one per worker: A4 streams straight into the zip, the roll
        // sheet goes to a temp file and is copied in after (a zip entry must be contiguous).
        // The roll's bytes come back through the port and this thread writes the file: when the
        // worker wrote it itself (an fs.WriteStream on the descriptor), its heap kept ~0.6 KB
        // a page live (a 100 000-page roll died under a 48 MB cap; through the port it peaked
        // at 228 MB for the whole process under the same cap). Why is not known yet.
        const progress = [0, 0];
        const report = (k: number) => (d: number) => {
          progress[k] = d;
          onProgress?.(n + Math.min(progress[0]!, progress[1]!), total);
        };
        const a4 = pool.pdf(0, { layout: 'a4', meta, ...labels }, report(0));
        const roll = pool.pdf(1, { layout: 'roll', meta, ...labels }, report(1));
        pdfJobs.push(a4, roll);
        const rollSpool = spool(roll.chunks, rollHandle);
        rollSpool.catch(() => {}); // awaited below
        await zip.addStream('labels-a4.pdf', a4.chunks, { deflate: false });
        await a4.done;
        const rolled = await rollSpool;
        await roll.done;
        await zip.addKnownStream('labels-roll.pdf', createReadStream(rollFile, { highWaterMark: 256 * 1024 }), rolled);
      }
    }
    if (xlsx) {
      const x = await xlsx;
      await zip.addKnownStream('manifest.xlsx', createReadStream(x.file, { highWaterMark: 256 * 1024 }), x);
    }
    onProgress?.(total, total);
    await zip.finish();
    ctx.deps.metrics
      .histogram('bindery_batch_zip_seconds', 'Time to stream a label batch zip', [], [1, 5, 15, 30, 60, 120, 300])
      .observe(Number(process.hrtime.bigint() - started) / 1e9);
    return { bytes: zip.bytesWritten, entries: zip.entryCount, devices: n };
  } catch (e) {
    if (!out.destroyed) out.destroy(e as Error);
    // The pool is shared and outlives this zip: stop our PDF jobs (at their next page) and
    // wait until they have, before the roll sheet's file descriptor is closed below.
    for (const j of pdfJobs) j.cancel();
    await Promise.all(pdfJobs.map((j) => j.done.catch(() => {})));
    throw e;
  } finally {
    await lease?.release();
    // On failure the spreadsheet writer is stopped, not waited for.
    xlsxSource?.destroy();
    if (xlsx) await xlsx.catch(() => {});
    for (const h of handles) await h.close().catch(() => {});
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }
}

export interface PdfResult {
  bytes: number;
  devices: number;
}

/**
 * One label PDF of a batch (`labels-a4.pdf` or `labels-roll.pdf`, exactly as in the zip) streamed
 * into `out`, which is ended (or destroyed on failure). The QR matrices are computed by the
 * render pool first (kept packed, ~175 bytes a label), then one worker lays the pages out and
 * they stream as they are made, with the reader's backpressure.
 */
export async function renderBatchPdf(
  ctx: Omit<BatchZipContext, 'include'>,
  layout: LabelLayout,
  out: Writable,
): Promise<PdfResult> {
  const { batch, model, onProgress } = ctx;
  const L = await readLabels(ctx);
  const n = L.n;
  const format = model.label_format as LabelFormat;
  const content = (i: number) =>
    labelContent(ctx.deps.config.publicUrl, format, model.label_template, {
      pk: model.product_key,
      sn: L.sns[i]!,
      hwCode: L.hwCodes[i]!,
    });
  const lease = acquireRenderPool();
  let job: ReturnType<RenderPool['pdf']> | null = null;
  let bytes = 0;
  try {
    const matrices = (await renderImages(lease.pool, L, content, null, { png: false, svg: false, pdf: true }, (d) =>
      onProgress?.(d, 2 * n),
    ))!;
    job = lease.pool.pdf(
      0,
      {
        layout,
        meta: { modelName: model.name, batchId: batch.id },
        sns: L.snBytes,
        snOffsets: L.snOffsets,
        codes: L.codes,
        matrices: matrices.arena,
        offsets: matrices.offsets,
      },
      (d) => onProgress?.(n + d, 2 * n),
    );
    for await (const chunk of job.chunks) {
      if (out.destroyed || out.writableEnded)
        throw new ZipAbortedError('the PDF output was closed before the document was complete');
      bytes += chunk.length;
      if (!out.write(chunk)) await waitWritable(out);
    }
    await job.done;
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    onProgress?.(2 * n, 2 * n);
    return { bytes, devices: n };
  } catch (e) {
    if (!out.destroyed) out.destroy(e as Error);
    if (job) {
      job.cancel();
      await job.done.catch(() => {});
    }
    throw e;
  } finally {
    await lease.release();
  }
}

/**
 * PNG and SVG entries in label order, rendered by the pool a chunk at a time (a few chunks per
 * worker in flight: workers never wait for us, memory stays bounded). With `pdf`, each label's
 * packed matrix is kept for the PDF pass, in a buffer the PDF workers share.
 */
async function renderImages(
  pool: RenderPool,
  L: Labels,
  content: (i: number) => string,
  zip: ZipWriter | null,
  opts: { png: boolean; svg: boolean; pdf: boolean },
  onProgress: (done: number) => void,
): Promise<{ arena: SharedArrayBuffer; offsets: SharedArrayBuffer } | null> {
  const n = L.n;
  // Packed matrices: ~175 bytes a label at version 5; grown if the content needs bigger symbols.
  let arena = new Uint8Array(opts.pdf ? new SharedArrayBuffer(Math.max(1, n * packedLength(37))) : new ArrayBuffer(0));
  const offsets = new Uint32Array(new SharedArrayBuffer(opts.pdf ? 4 * (n + 1) : 4));
  let arenaUsed = 0;
  const req = { png: opts.png, svg: opts.svg, matrix: opts.pdf };
  const inflight: Array<Promise<Awaited<ReturnType<RenderPool['render']>>>> = [];
  const window = pool.size * 3;
  let next = 0;
  const submit = () => {
    const end = Math.min(n, next + RENDER_CHUNK);
    const items: Array<[string, string]> = [];
    for (let i = next; i < end; i++) items.push([L.sns[i]!, content(i)]);
    next = end;
    const p = pool.render(items, req);
    p.catch(() => {}); // awaited below, in order
    inflight.push(p);
  };
  while (next < n && inflight.length < window) submit();
  let done = 0;
  while (inflight.length > 0) {
    const labels = await inflight.shift()!;
    if (next < n) submit();
    for (const l of labels) {
      const sn = L.sns[done]!;
      if (l.png) await zip?.add(`png/${sn}.png`, l.png);
      if (l.svg) await zip?.add(`svg/${sn}.svg`, l.svg);
      if (l.matrix) {
        if (arenaUsed + l.matrix.length > arena.length) {
          const bigger = new Uint8Array(new SharedArrayBuffer(Math.max(arena.length * 2, arenaUsed + l.matrix.length)));
          bigger.set(arena.subarray(0, arenaUsed));
          arena = bigger;
        }
        offsets[done] = arenaUsed;
        arena.set(l.matrix, arenaUsed);
        arenaUsed += l.matrix.length;
      }
      done++;
    }
    onProgress(done);
  }
  if (!opts.pdf) return null;
  offsets[n] = arenaUsed;
  return { arena: arena.buffer as SharedArrayBuffer, offsets: offsets.buffer as SharedArrayBuffer };
}

/** Copies a stream into an open file, with the CRC-32 and size a stored zip entry needs. */
async function spool(source: AsyncIterable<Uint8Array>, h: FileHandle): Promise<{ crc: number; size: number }> {
  let crc = 0;
  let size = 0;
  for await (const chunk of source) {
    crc = crc32(chunk, crc);
    let at = 0;
    while (at < chunk.length) at += (await h.write(chunk, at, chunk.length - at, size + at)).bytesWritten;
    size += chunk.length;
  }
  return { crc, size };
}

function readmeText(batch: BatchRow, model: ModelsTable, n: number, include: Set<ZipPart>, now: number): string {
  const lines = [
    `Bindery label batch ${batch.id}`,
    `Model: ${model.name} (${model.model_id}, product key ${model.product_key}, label format ${model.label_format})`,
    `Devices: ${n}`,
    `Made: ${new Date(now).toISOString()}`,
    '',
    'Contents:',
    ...(include.has('manifest')
      ? ['  manifest.csv, manifest.xlsx  one row per device: SN, PK, hw_code, QR content, verification code (no secrets)']
      : []),
    ...(include.has('png')
      ? ['  png/<SN>.png                 the QR code, 1-bit PNG, 6 px per module, 4-module quiet zone']
      : []),
    ...(include.has('svg') ? ['  svg/<SN>.svg                 the same QR code as SVG'] : []),
    ...(include.has('pdf')
      ? [
          '  labels-a4.pdf                A4 sheets, 4 x 8 labels of 47.5 x 34.1 mm, cut guides',
          '  labels-roll.pdf              one 50 x 30 mm label per page, for roll label printers',
          '  (every label prints its SN and its six-digit verification code for typed binds)',
        ]
      : []),
    '',
    'SecretNos are not in this archive. Download them separately (GET /api/v1/batches/<id>/secrets.csv',
    'or `bindery batch secrets`) for flashing; that download is audited.',
    '',
  ];
  return lines.join('\r\n');
}

async function* manifestCsv(n: number, row: (i: number) => string[]): AsyncGenerator<Uint8Array> {
  let s = `${MANIFEST_HEADER.map(csvField).join(',')}\r\n`;
  for (let i = 0; i < n; i++) {
    s += `${row(i).map(csvField).join(',')}\r\n`;
    if (s.length >= 64 * 1024) {
      yield Buffer.from(s, 'utf8');
      s = '';
    }
  }
  if (s) yield Buffer.from(s, 'utf8');
}
