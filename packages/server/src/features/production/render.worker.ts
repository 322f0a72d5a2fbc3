import { readlinkSync } from 'node:fs';
import os from 'node:os';
import { parentPort } from 'node:worker_threads';
import zlib from 'node:zlib';
import type { LabelSource, PdfSink } from './label-pdf.js';
import { crc32, encodeQrPng, packMatrix, qrMatrix, qrSvgBytes, SVG_DEFLATE, unpackMatrix } from './qr-render.js';
import type { PdfJob, RenderRequest, ToWorker } from './render-pool.js';

/**
 * The label renderer's worker thread: QR matrices, PNG/SVG encoding and deflate for the zip,
 * and whole label PDFs. The main thread only moves bytes into the zip.
 */

const port = parentPort;
if (!port) throw new Error('render.worker must run in a worker thread');

/**
 * Render threads run at a lower priority than the main thread, so health checks, binds and the
 * zip's own byte moving are scheduled first when they wake and the renderers take the rest.
 * On Linux setpriority() on a thread id changes that thread only (Node's os.setPriority takes
 * any id); with autogroup scheduling (the default on desktop/VM kernels) the niceness only
 * ranks threads of this process against each other. Elsewhere this is a no-op.
 */
export const RENDER_NICE = 10;
try {
  const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
  if (Number.isSafeInteger(tid) && tid > 0) os.setPriority(tid, RENDER_NICE);
} catch {
  // no /proc (not Linux) or not permitted: keep the default priority
}

/** Fields per label in a rendered chunk's index (see RENDER_FIELDS in render-pool.ts). */
const F = 9;

function render(req: RenderRequest): void {
  const meta = new Uint32Array(req.items.length * F);
  const parts: Uint8Array[] = [];
  let offset = 0;
  const put = (b: Uint8Array): number => {
    parts.push(b);
    const at = offset;
    offset += b.length;
    return at;
  };
  req.items.forEach(([sn, content], i) => {
    const m = qrMatrix(content);
    const o = i * F;
    if (req.png) {
      const png = encodeQrPng(m);
      meta[o] = put(png);
      meta[o + 1] = png.length;
      meta[o + 2] = crc32(png);
    }
    if (req.svg) {
      // Deflated here so the main thread stores the compressed bytes as they are.
      const svg = qrSvgBytes(m, sn);
      const deflated = zlib.deflateRawSync(svg, SVG_DEFLATE);
      meta[o + 3] = put(deflated);
      meta[o + 4] = deflated.length;
      meta[o + 5] = crc32(svg);
      meta[o + 6] = svg.length;
    }
    if (req.matrix) {
      const packed = packMatrix(m);
      meta[o + 7] = put(packed);
      meta[o + 8] = packed.length;
    }
  });
  const buf = new Uint8Array(offset);
  let at = 0;
  for (const p of parts) {
    buf.set(p, at);
    at += p.length;
  }
  port!.postMessage({ type: 'rendered', id: req.id, buf: buf.buffer, meta: meta.buffer }, [buf.buffer, meta.buffer]);
}

/** Credit for port sinks: chunks posted but not yet taken by the main thread. */
const credits = new Map<number, { inflight: number; wake: (() => void) | null }>();
/**
 * PDF jobs whose download was abandoned. The pool outlives one download (it is shared), so
 * such a job must stop at its next page rather than wait forever for credit or write into a
 * file descriptor the main thread has closed (and may have reused).
 */
const cancelled = new Set<number>();

function checkCancelled(id: number): void {
  if (cancelled.has(id)) throw new Error(`PDF job ${id} cancelled`);
}
const PORT_CHUNK = 64 * 1024;
const PORT_WINDOW = 8;

function portSink(id: number): PdfSink & { close(): void } {
  const c = { inflight: 0, wake: null as (() => void) | null };
  credits.set(id, c);
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const post = () => {
    if (pendingBytes === 0) return;
    const chunk = new Uint8Array(pendingBytes);
    let at = 0;
    for (const p of pending) {
      chunk.set(p, at);
      at += p.length;
    }
    pending = [];
    pendingBytes = 0;
    c.inflight++;
    port!.postMessage({ type: 'pdf-data', id, chunk: chunk.buffer }, [chunk.buffer]);
  };
  return {
    write(chunk) {
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes >= PORT_CHUNK) post();
    },
    async ready() {
      checkCancelled(id);
      while (c.inflight >= PORT_WINDOW) {
        await new Promise<void>((resolve) => (c.wake = resolve));
        checkCancelled(id);
      }
    },
    close() {
      post();
      credits.delete(id);
    },
  };
}

async function pdf(job: PdfJob): Promise<void> {
  // The PDF writer (and fontkit, for names outside WinAnsi) load only in workers that make PDFs.
  const { writeLabelPdf } = await import('./label-pdf.js');
  const arena = new Uint8Array(job.matrices);
  const offsets = new Uint32Array(job.offsets);
  const snBytes = Buffer.from(job.sns);
  const snOffsets = new Uint32Array(job.snOffsets);
  const codes = Buffer.from(job.codes);
  const src: LabelSource = {
    count: snOffsets.length - 1,
    sn: (i) => snBytes.toString('latin1', snOffsets[i]!, snOffsets[i + 1]!),
    code: (i) => codes.toString('latin1', i * 6, i * 6 + 6),
    matrix: (i) => unpackMatrix(arena.subarray(offsets[i]!, offsets[i + 1]!)),
  };
  const progress = (done: number) => port!.postMessage({ type: 'pdf-progress', id: job.id, done });
  try {
    const sink = portSink(job.id);
    await writeLabelPdf(job.layout, src, job.meta, sink, progress);
    sink.close();
    port!.postMessage({ type: 'pdf-end', id: job.id, crc: 0, size: 0 });
  } finally {
    credits.delete(job.id);
    cancelled.delete(job.id);
  }
}

port.on('message', (msg: ToWorker) => {
  if (msg.type === 'cancel') {
    cancelled.add(msg.id);
    const c = credits.get(msg.id);
    const wake = c?.wake;
    if (c) c.wake = null;
    wake?.();
    return;
  }
  if (msg.type === 'ack') {
    const c = credits.get(msg.id);
    if (c) {
      c.inflight--;
      const wake = c.wake;
      c.wake = null;
      wake?.();
    }
    return;
  }
  try {
    if (msg.type === 'render') render(msg);
    else if (msg.type === 'pdf') {
      pdf(msg).catch((e: unknown) => port!.postMessage({ type: 'error', id: msg.id, message: String((e as Error)?.stack ?? e) }));
    }
  } catch (e) {
    port!.postMessage({ type: 'error', id: msg.id, message: String((e as Error)?.stack ?? e) });
  }
});
