import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { LabelLayout, LabelMeta } from './label-pdf.js';

/** Messages to the render worker. */
export interface RenderRequest {
  type: 'render';
  id: number;
  /** [SN, QR content] per label. */
  items: Array<[string, string]>;
  png: boolean;
  svg: boolean;
  /** Return the packed matrix too (kept for the PDF pass). */
  matrix: boolean;
}

export interface PdfJob {
  type: 'pdf';
  id: number;
  layout: LabelLayout;
  meta: LabelMeta;
  /** SN bytes back to back (ASCII); label i is sns[snOffsets[i]..snOffsets[i+1]). Shared, not copied. */
  sns: SharedArrayBuffer;
  snOffsets: SharedArrayBuffer;
  /** Each label's verification code, 6 ASCII digits apiece. */
  codes: SharedArrayBuffer;
  /** Packed matrices back to back; label i is matrices[offsets[i]..offsets[i+1]). Shared, not copied. */
  matrices: SharedArrayBuffer;
  offsets: SharedArrayBuffer;
}

/** `cancel` stops a PDF job at its next page boundary (its download was abandoned). */
export type ToWorker = RenderRequest | PdfJob | { type: 'ack'; id: number } | { type: 'cancel'; id: number };

type FromWorker =
  | { type: 'rendered'; id: number; buf: ArrayBuffer; meta: ArrayBuffer }
  | { type: 'pdf-data'; id: number; chunk: ArrayBuffer }
  | { type: 'pdf-progress'; id: number; done: number }
  | { type: 'pdf-end'; id: number; crc: number; size: number }
  | { type: 'error'; id: number; message: string };

/** One label of a rendered chunk: views into the chunk's buffer, no copies. */
export interface RenderedLabel {
  png?: { data: Uint8Array; crc: number };
  /** Raw-deflated SVG with the CRC and size of the SVG itself. */
  svg?: { data: Uint8Array; crc: number; size: number };
  matrix?: Uint8Array;
}

const F = 9; // index fields per label, written by render.worker.ts

function decodeRendered(req: RenderRequest, buf: ArrayBuffer, metaBuf: ArrayBuffer): RenderedLabel[] {
  const bytes = new Uint8Array(buf);
  const meta = new Uint32Array(metaBuf);
  return req.items.map((_, i) => {
    const o = i * F;
    const out: RenderedLabel = {};
    if (req.png) out.png = { data: bytes.subarray(meta[o]!, meta[o]! + meta[o + 1]!), crc: meta[o + 2]! };
    if (req.svg)
      out.svg = { data: bytes.subarray(meta[o + 3]!, meta[o + 3]! + meta[o + 4]!), crc: meta[o + 5]!, size: meta[o + 6]! };
    if (req.matrix) out.matrix = bytes.subarray(meta[o + 7]!, meta[o + 7]! + meta[o + 8]!);
    return out;
  });
}

interface Task {
  resolve(msg: FromWorker): void;
  reject(e: Error): void;
  onMessage?: (msg: FromWorker) => void;
}

/** Each render worker's old-generation cap (see spawn). */
export const RENDER_OLD_GEN_MB = 96;

/** How the worker script is started: directly when compiled, as an esbuild bundle when running from source. */
function spawn(): Worker {
  const here = import.meta.url;
  // Rendering makes many short-lived objects; a small young generation keeps each worker's heap
  // (and the process RSS) about 40 MB smaller at no measurable cost in speed. The old generation
  // is capped too: uncapped, V8 let a roll worker's heap grow ~1 KB a page, mostly garbage it had
  // not collected yet (a 60 000-page roll alone: 259 MB peak uncapped, 202 MB capped at 48 MB).
  // 96 MB leaves room for two downloads' roll sheets in one worker (a 100 000-page roll through
  // the port kept well under 48 MB live; written by the worker to a file it kept ~0.6 KB a page,
  // which is why the roll now comes back through the port: batch-zip.ts).
  const opts = { resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: RENDER_OLD_GEN_MB } };
  if (here.endsWith('.js')) return new Worker(new URL('./render.worker.js', here), opts);
  return new Worker(pathToFileURL(workerBundle(here)), opts);
}

let bundled: string | null = null;

/**
 * Running from source (tsx), the worker's modules are bundled once per process (~50 ms) into plain
 * JS by esbuild, tsx's own compiler (resolved through tsx, so no dependency of ours): a worker started
 * through tsx registers tsx's loader on its thread and compiles every module again, ~15 MB more
 * per worker and several times the start-up CPU (docs/benchmarks.md, fourth pass). The PDF code
 * stays a chunk of its own, loaded by the workers that make PDFs; `import.meta.url` keeps naming
 * the source folder, where createRequire finds fontkit.
 */
function workerBundle(here: string): string {
  if (bundled) return bundled;
  const tsxDir = path.dirname(createRequire(here).resolve('tsx/package.json'));
  const esbuild = createRequire(path.join(tsxDir, 'package.json'))('esbuild') as typeof import('esbuild');
  const entry = new URL('./render.worker.ts', here);
  const out = esbuild.buildSync({
    entryPoints: [fileURLToPath(entry)],
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outdir: '/',
    outExtension: { '.js': '.mjs' },
    define: { 'import.meta.url': JSON.stringify(entry.href) },
    write: false,
    logLevel: 'silent',
  });
  // Named by its content: every process (and test worker) of one source tree shares one copy, and
  // a copy is never removed while another process may be loading it.
  const hash = createHash('sha256');
  for (const f of out.outputFiles) hash.update(f.path).update(f.contents);
  const dir = path.join(tmpdir(), `bindery-render-worker-${hash.digest('hex').slice(0, 16)}`);
  if (!existsSync(dir)) {
    const staging = mkdtempSync(`${dir}-`);
    for (const f of out.outputFiles) writeFileSync(path.join(staging, path.basename(f.path)), f.contents);
    try {
      renameSync(staging, dir);
    } catch {
      rmSync(staging, { recursive: true, force: true }); // another process got there first
    }
  }
  bundled = path.join(dir, 'render.worker.mjs');
  return bundled;
}

class PoolWorker {
  readonly worker: Worker;
  readonly tasks = new Map<number, Task>();
  private dead: Error | null = null;

  constructor() {
    this.worker = spawn();
    this.worker.on('message', (msg: FromWorker) => {
      const t = this.tasks.get(msg.id);
      if (!t) return;
      if (msg.type === 'error') {
        this.tasks.delete(msg.id);
        t.reject(new Error(`label renderer failed: ${msg.message}`));
      } else if (msg.type === 'rendered' || msg.type === 'pdf-end') {
        this.tasks.delete(msg.id);
        t.resolve(msg);
      } else t.onMessage?.(msg);
    });
    const fail = (e: Error) => {
      this.dead = e;
      for (const t of this.tasks.values()) t.reject(e);
      this.tasks.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`label renderer exited (code ${code})`)));
  }

  run(msg: ToWorker & { id: number }, transfer: ArrayBuffer[] = [], onMessage?: (m: FromWorker) => void): Promise<FromWorker> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise<FromWorker>((resolve, reject) => {
      this.tasks.set(msg.id, { resolve, reject, onMessage });
      this.worker.postMessage(msg, transfer);
    });
  }

  post(msg: ToWorker): void {
    if (!this.dead) this.worker.postMessage(msg);
  }

  get broken(): boolean {
    return this.dead !== null;
  }
}

/**
 * Worker threads for label rendering, one per core by default, so a batch uses every core
 * while the main thread streams the zip. Zips get the process's shared pool through
 * acquireRenderPool(), so concurrent downloads share these threads instead of each starting
 * its own set.
 */
export class RenderPool {
  private readonly workers: PoolWorker[];
  private nextId = 1;

  constructor(size = defaultPoolSize()) {
    this.workers = Array.from({ length: Math.max(1, size) }, () => new PoolWorker());
  }

  get size(): number {
    return this.workers.length;
  }

  /** A worker died (crash or out of memory): the pool must not be handed out again. */
  get broken(): boolean {
    return this.workers.some((w) => w.broken);
  }

  /** Renders one chunk of labels on the least busy worker. */
  async render(items: Array<[string, string]>, opts: { png: boolean; svg: boolean; matrix: boolean }): Promise<RenderedLabel[]> {
    const w = this.workers.reduce((a, b) => (b.tasks.size < a.tasks.size ? b : a));
    const req: RenderRequest = { type: 'render', id: this.nextId++, items, ...opts };
    const res = await w.run(req);
    if (res.type !== 'rendered') throw new Error(`unexpected renderer reply ${res.type}`);
    return decodeRendered(req, res.buf, res.meta);
  }

  /**
   * A label PDF made on worker `index`. Its bytes arrive through `chunks` (credit-based: the worker
   * stops after a few unread chunks, so a slow reader never makes it buffer pages). The worker no
   * longer writes files itself: doing so kept ~0.6 KB a page alive in its heap (docs/labels.md).
   */
  pdf(
    index: number,
    job: Omit<PdfJob, 'type' | 'id'>,
    onProgress?: (done: number) => void,
  ): { chunks: AsyncIterable<Uint8Array>; done: Promise<{ crc: number; size: number }>; cancel(): void } {
    const w = this.workers[index % this.workers.length]!;
    const id = this.nextId++;
    const queue: Uint8Array[] = [];
    let wake: (() => void) | null = null;
    let finished = false;
    let failure: Error | null = null;
    const notify = () => {
      const f = wake;
      wake = null;
      f?.();
    };
    const done = w
      .run({ type: 'pdf', id, ...job }, [], (m) => {
        if (m.type === 'pdf-data') {
          queue.push(new Uint8Array(m.chunk));
          notify();
        } else if (m.type === 'pdf-progress') onProgress?.(m.done);
      })
      .then(
        (m) => {
          finished = true;
          notify();
          if (m.type !== 'pdf-end') throw new Error(`unexpected renderer reply ${m.type}`);
          return { crc: m.crc, size: m.size };
        },
        (e: Error) => {
          failure = e;
          notify();
          throw e;
        },
      );
    // The caller may only await `chunks`; keep an unobserved rejection from crashing the process.
    done.catch(() => {});
    const chunks: AsyncIterable<Uint8Array> = {
      [Symbol.asyncIterator]: () => ({
        async next(): Promise<IteratorResult<Uint8Array>> {
          for (;;) {
            const chunk = queue.shift();
            if (chunk) {
              w.post({ type: 'ack', id });
              return { value: chunk, done: false };
            }
            if (failure) throw failure;
            if (finished) return { value: undefined, done: true };
            await new Promise<void>((resolve) => (wake = resolve));
          }
        },
      }),
    };
    return { chunks, done, cancel: () => w.post({ type: 'cancel', id }) };
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}

let shared: { pool: RenderPool; users: number } | null = null;

/**
 * The process's render pool, started on first use and stopped when its last user releases it.
 * Two downloads at once share one core-sized set of workers (the workers interleave their
 * chunks and PDF pages) rather than running twice as many threads as there are cores, which
 * starved the main thread (health checks, binds) and doubled the workers' heaps.
 */
export function acquireRenderPool(): { pool: RenderPool; release(): Promise<void> } {
  if (!shared || shared.pool.broken) shared = { pool: new RenderPool(), users: 0 };
  const s = shared;
  s.users++;
  let released = false;
  return {
    pool: s.pool,
    async release() {
      if (released) return;
      released = true;
      s.users--;
      if (s.users > 0) return;
      if (shared === s) shared = null;
      await s.pool.close();
    },
  };
}

export function defaultPoolSize(): number {
  return Math.max(1, Math.min(availableParallelism(), 8));
}
