import { createReadStream } from 'node:fs';
import { type FileHandle, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, type Writable } from 'node:stream';
import {
  counterSn,
  hasValidCheckChar,
  type LabelFormat,
  labelContent,
  randomSn,
  type SnPattern,
  snKey,
  validateSnPattern,
} from '@bindery/protocol';
import ExcelJS from 'exceljs';
import type { Insertable } from 'kysely';
import type { DevicesTable, ModelsTable } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { AppError, fail } from '../../errors.js';
import { audit } from '../../shared/audit.js';
import { newId } from '../../shared/ids.js';
import { type Principal, requireVendor } from '../../shared/principal.js';
import { KyselyDevicesRepo } from '../devices/devices.repo.js';
import type { DevicesService } from '../devices/devices.service.js';
import type { ModelsService } from '../models/models.service.js';
import { type BatchCounts, type BatchRow, ProductionRepo } from './production.repo.js';
import { crc32, packedLength } from './qr-render.js';
import { RenderPool } from './render-pool.js';
import { waitWritable, ZipWriter } from './zip-writer.js';

/** Quectel caps one generation at 10 000; a batch here may hold ten times that. */
export const MAX_BATCH = 100_000;
/** Counter batches start here when the prefix has never been used. */
export const FIRST_COUNTER = 1;

export type BatchState = 'ready' | 'failed';

export interface BatchInput {
  count: number;
  pattern: SnPattern;
}

/** The pattern as the API shows it (snake_case, like every other body). */
export type PatternView =
  | { kind: 'counter'; prefix: string; width: number; start: number | null; check_char: boolean }
  | { kind: 'random'; prefix: string; length: number; check_char: boolean };

export interface BatchView {
  id: string;
  model_id: string;
  vendor_id: string;
  state: BatchState;
  /** Why a failed batch failed; null when ready. */
  error: string | null;
  pattern: PatternView;
  count: number;
  first_sn: string | null;
  last_sn: string | null;
  counts: { generated: number; downloaded: number; paired: number; activated: number; bound: number };
  created_at: string;
  finished_at: string | null;
}

/** What a zip may hold; all of it by default. */
export type ZipPart = 'manifest' | 'png' | 'svg' | 'pdf';
export const ZIP_PARTS: readonly ZipPart[] = ['manifest', 'png', 'svg', 'pdf'];

export interface ZipOptions {
  /** Called with (done, total) work units as labels are rendered (and laid out, for PDFs). */
  onProgress?: (done: number, total: number) => void;
  include?: readonly ZipPart[];
}

export interface ZipResult {
  bytes: number;
  entries: number;
  devices: number;
}

export interface ZipJob {
  batch: BatchView;
  /** `labels_<batch>_yyyyMMddHHmmss.zip`, like Quectel's `设备SN_<timestamp>.zip`. */
  filename: string;
  write(out: Writable): Promise<ZipResult>;
}

const INSERT_SLICE = 5000;
const RENDER_CHUNK = 256;
const PAGE = 5000;
/** Render jobs (each a pool of workers) that may run at once in this process; more wait. */
const MAX_CONCURRENT_ZIPS = 2;

/** yyyyMMddHHmmss in UTC. */
export function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function patternView(p: SnPattern): PatternView {
  return p.kind === 'counter'
    ? { kind: 'counter', prefix: p.prefix, width: p.width, start: p.start ?? null, check_char: p.checkChar === true }
    : { kind: 'random', prefix: p.prefix, length: p.length, check_char: p.checkChar === true };
}

/** Problems with a batch request, as sentences (the CLI and the API show them as they are). */
export function validateBatchInput(input: { count?: unknown; pattern?: unknown }): string[] {
  const problems: string[] = [];
  const c = input.count;
  if (typeof c !== 'number' || !Number.isInteger(c) || c < 1 || c > MAX_BATCH) {
    problems.push(`count must be a whole number from 1 to ${MAX_BATCH}`);
  }
  const p = input.pattern as SnPattern | undefined;
  if (typeof p !== 'object' || p === null) problems.push('pattern is required');
  else if (typeof p.prefix !== 'string') problems.push('pattern.prefix must be a string');
  else problems.push(...validateSnPattern(p).map((m) => `pattern: ${m}`));
  return problems;
}

class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly max: number) {}
  async acquire(): Promise<() => void> {
    if (this.active >= this.max) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    return () => {
      this.active--;
      this.waiting.shift()?.();
    };
  }
}

/**
 * Label batches (issue 2 §7): N devices generated for a model in one transaction, each with
 * its SecretNo and hw_code like a single registration; then a streamed zip of manifests, QR
 * images and print-ready label sheets, and a separate, audited secrets file for flashing.
 */
export class ProductionService {
  private readonly repo: ProductionRepo;
  private readonly devicesRepo: KyselyDevicesRepo;
  private readonly zipSlots = new Semaphore(MAX_CONCURRENT_ZIPS);

  constructor(
    private readonly deps: Pick<Deps, 'db' | 'clock' | 'secrets' | 'config' | 'metrics' | 'logger'>,
    private readonly models: ModelsService,
    private readonly devices: DevicesService,
  ) {
    this.repo = new ProductionRepo(deps.db.kysely);
    this.devicesRepo = new KyselyDevicesRepo(deps.db.kysely, deps.db.caps);
  }

  /**
   * Generates a batch. SN collisions with existing devices (ignoring case) are found before
   * anything is written: random SNs are drawn again, counter SNs fail the batch with the SNs
   * named. Either the whole batch is stored or none of it; a failure is kept as a `failed` batch.
   */
  async createBatch(
    actor: Principal,
    modelId: string,
    input: BatchInput,
    onProgress?: (done: number, total: number) => void,
  ): Promise<BatchView> {
    const model = await this.models.getRow(actor, modelId);
    const problems = validateBatchInput(input);
    if (problems.length) fail('VALIDATION_FAILED', problems.join('; '), { problems });
    const { count, pattern } = input;
    const id = newId('bat');
    const now = this.deps.clock.now();
    onProgress?.(0, count);

    // A concurrent writer can take an SN between our check and our insert; the unique index
    // then aborts the transaction, and patterns we choose SNs for simply try again.
    const mayRetry = pattern.kind === 'random' || pattern.start === undefined;
    for (let attempt = 0; ; attempt++) {
      let resolved: SnPattern = pattern;
      try {
        const plan = await this.planSns(pattern, count);
        resolved = plan.pattern;
        const sns = plan.sns;
        await this.deps.db.kysely.transaction().execute(async (trx) => {
          const devices = this.devicesRepo.with(trx);
          await this.resolveCollisions(devices, resolved, sns);
          await this.repo.with(trx).insertBatch({
            id,
            model_id: model.model_id,
            vendor_id: model.vendor_id,
            count,
            pattern: JSON.stringify(resolved),
            state: 'ready',
            error: null,
            downloads: 0,
            created_at: now,
            finished_at: this.deps.clock.now(),
          });
          // Rows are made a slice at a time (SecretNo sealed, hw_code drawn) so 100 000 of them
          // never sit in memory together.
          for (let i = 0; i < sns.length; i += INSERT_SLICE) {
            const slice = sns.slice(i, i + INSERT_SLICE);
            await devices.insertMany(slice.map((sn) => this.deviceRow(model, sn, now, id)));
            onProgress?.(i + slice.length, count);
          }
          await audit(trx, now, actor, 'batch.create', `batch:${id}`, {
            model_id: model.model_id,
            count,
            pattern: patternView(resolved),
            first_sn: sns[0],
            last_sn: sns[sns.length - 1],
          });
        });
        this.deps.metrics.counter('bindery_batches_created_total', 'Label batches created').inc();
        this.deps.metrics.counter('bindery_devices_registered_total', 'Devices registered').inc(count);
        this.devices.announceRegistered(model, sns, now);
        return this.getBatch(actor, id);
      } catch (e) {
        if (e instanceof AppError && e.code === 'VALIDATION_FAILED') throw e;
        const unique = this.deps.db.caps.isUniqueViolation(e);
        if (unique && mayRetry && attempt < 2) continue;
        const err =
          e instanceof AppError
            ? e
            : unique
              ? new AppError('SN_TAKEN', 'Another registration took one of these SNs while the batch was being written')
              : null;
        await this.recordFailure(actor, id, model, count, resolved, now, err?.message ?? 'internal error');
        if (err) {
          throw new AppError(err.code, err.message, { ...(err.details as object), batch_id: id });
        }
        throw e;
      }
    }
  }

  async getBatch(actor: Principal, batchId: string): Promise<BatchView> {
    const row = await this.batchRow(actor, batchId);
    const counts = await this.repo.counts([row.id]);
    return this.view(row, counts.get(row.id));
  }

  /** A vendor's or a model's batches, newest first. */
  async listBatches(
    actor: Principal,
    q: { vendorId?: string; modelId?: string; cursor?: string; limit?: number },
  ): Promise<{ batches: BatchView[]; next_cursor: string | null }> {
    if (!q.vendorId && !q.modelId) fail('VALIDATION_FAILED', 'vendorId or modelId is required');
    if (q.modelId) {
      const model = await this.models.getRow(actor, q.modelId);
      if (q.vendorId && q.vendorId !== model.vendor_id) fail('MODEL_NOT_FOUND');
    } else requireVendor(actor, q.vendorId!);
    const limit = Math.min(Math.max(q.limit ?? 50, 1), 200);
    let before: { createdAt: number; id: string } | undefined;
    if (q.cursor) {
      const [at, id] = Buffer.from(q.cursor, 'base64url').toString().split('|');
      if (!at || !id || !Number.isSafeInteger(Number(at))) fail('VALIDATION_FAILED', 'cursor is invalid');
      before = { createdAt: Number(at), id };
    }
    const rows = await this.repo.listBatches({ vendorId: q.vendorId, modelId: q.modelId, before, limit: limit + 1 });
    const page = rows.slice(0, limit);
    const counts = await this.repo.counts(page.map((r) => r.id));
    const last = page[page.length - 1];
    return {
      batches: page.map((r) => this.view(r, counts.get(r.id))),
      next_cursor: rows.length > limit && last ? Buffer.from(`${last.created_at}|${last.id}`).toString('base64url') : null,
    };
  }

  /**
   * Checks the batch can be downloaded (before any byte is sent, so HTTP can still answer
   * with an error) and returns the job that streams it.
   */
  async prepareBatchZip(actor: Principal, batchId: string, opts: ZipOptions = {}): Promise<ZipJob> {
    const row = await this.batchRow(actor, batchId);
    if (row.state !== 'ready') fail('BATCH_NOT_READY', `Batch ${batchId} failed and has no devices: ${row.error ?? ''}`);
    const include = new Set<ZipPart>(opts.include ?? ZIP_PARTS);
    for (const p of include) if (!ZIP_PARTS.includes(p)) fail('VALIDATION_FAILED', `include: unknown part ${p}`);
    if (include.size === 0) fail('VALIDATION_FAILED', 'include: choose at least one part');
    const model = await this.models.getRow(actor, row.model_id);
    const counts = await this.repo.counts([row.id]);
    const now = this.deps.clock.now();
    return {
      batch: this.view(row, counts.get(row.id)),
      filename: `labels_${row.id}_${stamp(now)}.zip`,
      write: async (out) => {
        const release = await this.zipSlots.acquire();
        try {
          const result = await this.streamZip(row, model, include, out, now, opts.onProgress);
          await this.repo.incrementDownloads(row.id);
          await audit(this.deps.db.kysely, this.deps.clock.now(), actor, 'batch.download', `batch:${row.id}`, {
            parts: [...include],
            bytes: result.bytes,
          });
          return result;
        } finally {
          release();
        }
      },
    };
  }

  /** Streams the batch's zip into `out` (and ends it). See docs/labels.md for the layout. */
  async writeBatchZip(actor: Principal, batchId: string, out: Writable, opts: ZipOptions = {}): Promise<ZipResult> {
    const job = await this.prepareBatchZip(actor, batchId, opts);
    return job.write(out);
  }

  /**
   * The secrets file for flashing: SN, SecretNo (and the model's seed SecretNo when it shares
   * one). Checked before the first byte and audited when it starts; the zip never carries any of it.
   */
  async prepareSecretsCsv(
    actor: Principal,
    batchId: string,
  ): Promise<{ filename: string; write(out: Writable): Promise<{ rows: number }> }> {
    const row = await this.batchRow(actor, batchId);
    if (row.state !== 'ready') fail('BATCH_NOT_READY', `Batch ${batchId} failed and has no devices: ${row.error ?? ''}`);
    const model = await this.models.getRow(actor, row.model_id);
    const now = this.deps.clock.now();
    return {
      filename: `secrets_${row.id}_${stamp(now)}.csv`,
      write: async (out) => {
        const seed = model.seed_secret_no_enc ? this.deps.secrets.open(model.seed_secret_no_enc) : null;
        await audit(this.deps.db.kysely, this.deps.clock.now(), actor, 'batch.reveal_secrets', `batch:${row.id}`, {
          model_id: row.model_id,
        });
        let rows = 0;
        const repo = this.repo;
        const secrets = this.deps.secrets;
        async function* lines(): AsyncGenerator<string> {
          yield seed ? 'SN,SecretNo,SeedSecretNo\r\n' : 'SN,SecretNo\r\n';
          for (let after = 0; ; ) {
            const page = await repo.batchSecrets(row.id, after, PAGE);
            if (page.length === 0) return;
            let s = '';
            for (const d of page) {
              s += `${d.sn},${secrets.open(d.secret_no_enc)}${seed ? `,${seed}` : ''}\r\n`;
              rows++;
            }
            yield s;
            after = page[page.length - 1]!.id;
          }
        }
        await pump(lines(), out);
        return { rows };
      },
    };
  }

  async writeSecretsCsv(actor: Principal, batchId: string, out: Writable): Promise<{ rows: number }> {
    const job = await this.prepareSecretsCsv(actor, batchId);
    return job.write(out);
  }

  // ——— creation ————————————————————————————————————————————————————————————————

  private deviceRow(model: ModelsTable, sn: string, now: number, batchId: string): Insertable<DevicesTable> {
    // Exactly the row single registration makes, minus its null columns: 10 columns instead of
    // 32 make each multi-row INSERT a third of the parameters.
    const row = this.devices.newDeviceRow(model, sn, now, {}, batchId) as Record<string, unknown>;
    for (const k of Object.keys(row)) if (row[k] === null) delete row[k];
    return row as unknown as Insertable<DevicesTable>;
  }

  /** The batch's SNs; counter patterns without a start continue after the highest one used. */
  private async planSns(pattern: SnPattern, count: number): Promise<{ sns: string[]; pattern: SnPattern }> {
    if (pattern.kind === 'random') {
      const seen = new Set<string>();
      const sns: string[] = [];
      while (sns.length < count) {
        const sn = randomSn(pattern);
        if (seen.has(snKey(sn))) continue;
        seen.add(snKey(sn));
        sns.push(sn);
      }
      return { sns, pattern };
    }
    const start = pattern.start ?? (await this.highestCounter(pattern)) + 1;
    const last = start + count - 1;
    if (!Number.isSafeInteger(last) || String(last).length > pattern.width) {
      fail(
        'VALIDATION_FAILED',
        `pattern: ${count} counters from ${start} do not fit in ${pattern.width} digits; use a wider counter or another prefix`,
      );
    }
    const resolved = { ...pattern, start };
    const sns = new Array<string>(count);
    for (let i = 0; i < count; i++) sns[i] = counterSn(resolved, start + i);
    return { sns, pattern: resolved };
  }

  /**
   * The highest counter taken under the pattern's prefix and width, by any device (batch or
   * single registration): SNs of exactly prefix + width digits, or that plus a valid check
   * character. FIRST_COUNTER - 1 when there is none.
   */
  private async highestCounter(p: Extract<SnPattern, { kind: 'counter' }>): Promise<number> {
    const prefix = p.prefix.toLowerCase();
    const L = prefix.length + p.width;
    let best = -1n;
    for (const length of [L, L + 1]) {
      let below: string | undefined;
      for (;;) {
        const keys = await this.repo.snKeysDescending({
          prefix,
          length,
          low: prefix + '0'.repeat(p.width),
          high: prefix + '9'.repeat(p.width) + (length > L ? 'z' : ''),
          below,
          limit: 500,
        });
        const hit = keys.find((k) => {
          const digits = k.slice(prefix.length, L);
          return /^[0-9]+$/.test(digits) && (length === L || hasValidCheckChar(k));
        });
        if (hit) {
          const n = BigInt(hit.slice(prefix.length, L));
          if (n > best) best = n;
          break;
        }
        if (keys.length < 500) break;
        below = keys[keys.length - 1];
      }
    }
    if (best < 0n) return FIRST_COUNTER - 1;
    if (best >= BigInt(Number.MAX_SAFE_INTEGER)) {
      fail('VALIDATION_FAILED', `pattern: the highest counter under ${p.prefix} is too large to continue; give a start`);
    }
    return Number(best);
  }

  /** Inside the transaction, before any write: redraw taken random SNs, or fail a counter batch. */
  private async resolveCollisions(devices: KyselyDevicesRepo, pattern: SnPattern, sns: string[]): Promise<void> {
    let check = sns.map((_, i) => i);
    for (let round = 0; check.length > 0; round++) {
      const taken = new Set((await devices.findBySnKeys(check.map((i) => snKey(sns[i]!)))).map((r) => r.sn_key));
      const hits = check.filter((i) => taken.has(snKey(sns[i]!)));
      if (hits.length === 0) return;
      if (pattern.kind === 'counter') {
        const sample = hits.slice(0, 20).map((i) => sns[i]!);
        fail(
          'SN_TAKEN',
          `${hits.length} SN${hits.length === 1 ? ' is' : 's are'} of this batch already registered (SNs ignore case): ` +
            `${sample.join(', ')}${hits.length > sample.length ? ', …' : ''}. Nothing was written; ` +
            'leave out start to continue after the highest counter, or use another prefix.',
          { taken: sample, taken_count: hits.length },
        );
      }
      if (round >= 5) fail('SN_TAKEN', 'Could not draw unused random SNs; use a longer random part');
      const inBatch = new Set(sns.map(snKey));
      for (const i of hits) {
        let sn: string;
        do sn = randomSn(pattern);
        while (inBatch.has(snKey(sn)));
        inBatch.add(snKey(sn));
        sns[i] = sn;
      }
      check = hits;
    }
  }

  private async recordFailure(
    actor: Principal,
    id: string,
    model: ModelsTable,
    count: number,
    pattern: SnPattern,
    now: number,
    error: string,
  ): Promise<void> {
    try {
      await this.deps.db.kysely.transaction().execute(async (trx) => {
        await this.repo.with(trx).insertBatch({
          id,
          model_id: model.model_id,
          vendor_id: model.vendor_id,
          count,
          pattern: JSON.stringify(pattern),
          state: 'failed',
          error,
          downloads: 0,
          created_at: now,
          finished_at: this.deps.clock.now(),
        });
        await audit(trx, now, actor, 'batch.failed', `batch:${id}`, { model_id: model.model_id, count, error });
      });
    } catch (e) {
      this.deps.logger.error({ err: e, batch: id }, 'could not record the failed batch');
    }
  }

  // ——— reading ————————————————————————————————————————————————————————————————

  private async batchRow(actor: Principal, batchId: string): Promise<BatchRow> {
    const row = typeof batchId === 'string' ? await this.repo.findBatch(batchId) : undefined;
    if (!row) fail('BATCH_NOT_FOUND', `No label batch ${batchId}`);
    requireVendor(actor, row.vendor_id);
    if (actor.kind === 'model' && actor.modelId !== row.model_id) fail('BATCH_NOT_FOUND', `No label batch ${batchId}`);
    return row;
  }

  private view(r: BatchRow, c: BatchCounts | undefined): BatchView {
    const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    return {
      id: r.id,
      model_id: r.model_id,
      vendor_id: r.vendor_id,
      state: r.state as BatchState,
      error: r.error,
      pattern: patternView(JSON.parse(r.pattern) as SnPattern),
      count: r.count,
      first_sn: c?.first_sn ?? null,
      last_sn: c?.last_sn ?? null,
      counts: {
        generated: c?.generated ?? 0,
        downloaded: r.downloads,
        paired: c?.paired ?? 0,
        activated: c?.activated ?? 0,
        bound: c?.bound ?? 0,
      },
      created_at: iso(r.created_at)!,
      finished_at: iso(r.finished_at),
    };
  }

  // ——— the zip ————————————————————————————————————————————————————————————————

  private async streamZip(
    batch: BatchRow,
    model: ModelsTable,
    include: Set<ZipPart>,
    out: Writable,
    now: number,
    onProgress?: (done: number, total: number) => void,
  ): Promise<ZipResult> {
    // Labels are read once, so every entry shows the same devices even if one is deleted meanwhile.
    const sns: string[] = [];
    const hwCodes: string[] = [];
    for (let after = 0; ; ) {
      const page = await this.repo.batchLabels(batch.id, after, PAGE);
      if (page.length === 0) break;
      for (const d of page) {
        sns.push(d.sn);
        hwCodes.push(d.hw_code);
      }
      after = page[page.length - 1]!.id;
    }
    const format = model.label_format as LabelFormat;
    const { publicUrl } = this.deps.config;
    // Made again where needed rather than kept: 100 000 URLs are ~10 MB.
    const content = (i: number) =>
      labelContent(publicUrl, format, model.label_template, { pk: model.product_key, sn: sns[i]!, hwCode: hwCodes[i]! });
    const n = sns.length;
    const images = include.has('png') || include.has('svg');
    const pdf = include.has('pdf');
    const total = Math.max(1, n * ((images || pdf ? 1 : 0) + (pdf ? 1 : 0)));
    const zip = new ZipWriter(out, new Date(now));
    const started = process.hrtime.bigint();
    let pool: RenderPool | null = null;
    let tmp: string | null = null;
    let rollHandle: FileHandle | null = null;
    try {
      const readme = Buffer.from(this.readme(batch, model, n, include, now), 'utf8');
      await zip.add('README.txt', { data: readme, crc: crc32(readme) });

      if (include.has('manifest')) {
        await zip.addStream('manifest.csv', manifestCsv(sns, model.product_key, hwCodes, content), { deflate: true });
        await zip.addStream('manifest.xlsx', manifestXlsx(sns, model.product_key, hwCodes, content), { deflate: false });
      }
      if ((!images && !pdf) || n === 0) {
        onProgress?.(total, total);
        await zip.finish();
        return { bytes: zip.bytesWritten, entries: zip.entryCount, devices: n };
      }

      pool = new RenderPool();
      // Packed matrices for the PDF pass: ~175 bytes a label (17 MB per 100 000).
      let arena = pdf ? new Uint8Array(Math.max(1, n * packedLength(37))) : new Uint8Array(0);
      // Shared with both PDF workers, so neither gets its own copy.
      const offsets = new Uint32Array(new SharedArrayBuffer(pdf ? 4 * (n + 1) : 0));
      let arenaUsed = 0;
      const opts = { png: include.has('png'), svg: include.has('svg'), matrix: pdf };
      // Keep two chunks per worker in flight: workers never wait for us, memory stays bounded.
      const inflight: Array<Promise<Awaited<ReturnType<RenderPool['render']>>>> = [];
      const window = pool.size * 2;
      let next = 0;
      const submit = () => {
        const end = Math.min(n, next + RENDER_CHUNK);
        const items: Array<[string, string]> = [];
        for (let i = next; i < end; i++) items.push([sns[i]!, content(i)]);
        next = end;
        const p = pool!.render(items, opts);
        p.catch(() => {}); // awaited below, in order
        inflight.push(p);
      };
      while (next < n && inflight.length < window) submit();
      let done = 0;
      while (inflight.length > 0) {
        const labels = await inflight.shift()!;
        if (next < n) submit();
        for (const l of labels) {
          const sn = sns[done]!;
          if (l.png) await zip.add(`png/${sn}.png`, l.png);
          if (l.svg) await zip.add(`svg/${sn}.svg`, l.svg);
          if (l.matrix) {
            if (arenaUsed + l.matrix.length > arena.length) {
              const bigger = new Uint8Array(Math.max(arena.length * 2, arenaUsed + l.matrix.length));
              bigger.set(arena.subarray(0, arenaUsed));
              arena = bigger;
            }
            offsets[done] = arenaUsed;
            arena.set(l.matrix, arenaUsed);
            arenaUsed += l.matrix.length;
          }
          done++;
        }
        onProgress?.(done, total);
      }

      if (pdf) {
        offsets[n] = arenaUsed;
        const matrices = new SharedArrayBuffer(arenaUsed);
        new Uint8Array(matrices).set(arena.subarray(0, arenaUsed));
        arena = new Uint8Array(0);
        const meta = { modelName: model.name, batchId: batch.id };
        tmp = await mkdtemp(path.join(tmpdir(), `bindery-labels-${batch.id}-`));
        const rollFile = path.join(tmp, 'labels-roll.pdf');
        rollHandle = await open(rollFile, 'w');
        // Both layouts at once, one per worker: A4 streams straight into the zip, the roll
        // sheet goes to a temp file and is copied in after (a zip entry must be contiguous).
        const progress = [0, 0];
        const report = (k: number) => (d: number) => {
          progress[k] = d;
          onProgress?.(n + Math.min(progress[0]!, progress[1]!), total);
        };
        const a4 = pool.pdf(0, { layout: 'a4', meta, sns, matrices, offsets: offsets.buffer }, report(0));
        const roll = pool.pdf(1, { layout: 'roll', meta, sns, matrices, offsets: offsets.buffer, fd: rollHandle.fd }, report(1));
        await zip.addStream('labels-a4.pdf', a4.chunks, { deflate: false });
        await a4.done;
        const rolled = await roll.done;
        await zip.addKnownStream('labels-roll.pdf', createReadStream(rollFile, { highWaterMark: 256 * 1024 }), rolled);
      }
      await zip.finish();
      this.deps.metrics
        .histogram('bindery_batch_zip_seconds', 'Time to stream a label batch zip', [], [1, 5, 15, 30, 60, 120, 300])
        .observe(Number(process.hrtime.bigint() - started) / 1e9);
      return { bytes: zip.bytesWritten, entries: zip.entryCount, devices: n };
    } catch (e) {
      if (!out.destroyed) out.destroy(e as Error);
      throw e;
    } finally {
      await pool?.close();
      await rollHandle?.close();
      if (tmp) await rm(tmp, { recursive: true, force: true });
    }
  }

  private readme(batch: BatchRow, model: ModelsTable, n: number, include: Set<ZipPart>, now: number): string {
    const lines = [
      `Bindery label batch ${batch.id}`,
      `Model: ${model.name} (${model.model_id}, product key ${model.product_key}, label format ${model.label_format})`,
      `Devices: ${n}`,
      `Made: ${new Date(now).toISOString()}`,
      '',
      'Contents:',
      ...(include.has('manifest')
        ? ['  manifest.csv, manifest.xlsx  one row per device: SN, PK, hw_code, QR content (no secrets)']
        : []),
      ...(include.has('png')
        ? ['  png/<SN>.png                 the QR code, 1-bit PNG, 6 px per module, 4-module quiet zone']
        : []),
      ...(include.has('svg') ? ['  svg/<SN>.svg                 the same QR code as SVG'] : []),
      ...(include.has('pdf')
        ? [
            '  labels-a4.pdf                A4 sheets, 4 x 8 labels of 47.5 x 34.1 mm, cut guides',
            '  labels-roll.pdf              one 50 x 30 mm label per page, for roll label printers',
          ]
        : []),
      '',
      'SecretNos are not in this archive. Download them separately (GET /api/v1/batches/<id>/secrets.csv',
      'or `bindery batch secrets`) for flashing; that download is audited.',
      '',
    ];
    return lines.join('\r\n');
  }
}

/** Writes string chunks into `out` with backpressure, then ends it. */
async function pump(source: AsyncIterable<string>, out: Writable): Promise<void> {
  try {
    for await (const s of source) {
      if (out.destroyed) throw new Error('the output was closed');
      if (!out.write(s)) await waitWritable(out);
    }
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  } catch (e) {
    if (!out.destroyed) out.destroy(e as Error);
    throw e;
  }
}

const MANIFEST_HEADER = ['SN', 'PK', 'hw_code', 'QR content'];

async function* manifestCsv(
  sns: string[],
  pk: string,
  hwCodes: string[],
  content: (i: number) => string,
): AsyncGenerator<Uint8Array> {
  let s = `${MANIFEST_HEADER.map(csvField).join(',')}\r\n`;
  for (let i = 0; i < sns.length; i++) {
    s += `${csvField(sns[i]!)},${csvField(pk)},${csvField(hwCodes[i]!)},${csvField(content(i))}\r\n`;
    if (s.length >= 64 * 1024) {
      yield Buffer.from(s, 'utf8');
      s = '';
    }
  }
  if (s) yield Buffer.from(s, 'utf8');
}

/** The manifest as a streamed xlsx (exceljs's WorkbookWriter), yielded as it is written. */
function manifestXlsx(sns: string[], pk: string, hwCodes: string[], content: (i: number) => string): AsyncIterable<Uint8Array> {
  const pt = new PassThrough({ highWaterMark: 256 * 1024 });
  const write = async () => {
    const wb = new ExcelJS.stream.xlsx.WorkbookWriter({ stream: pt, useSharedStrings: false, useStyles: true });
    const ws = wb.addWorksheet('manifest', { views: [{ state: 'frozen', ySplit: 1 }] });
    ws.columns = [
      { header: MANIFEST_HEADER[0], width: 24 },
      { header: MANIFEST_HEADER[1], width: 14 },
      { header: MANIFEST_HEADER[2], width: 26 },
      { header: MANIFEST_HEADER[3], width: 70 },
    ];
    ws.getRow(1).font = { bold: true };
    for (let i = 0; i < sns.length; i++) {
      ws.addRow([sns[i], pk, hwCodes[i], content(i)]).commit();
      // Let the zip drain what exceljs produced so far.
      if (i % 2000 === 1999 && pt.writableNeedDrain) await waitWritable(pt);
    }
    ws.commit();
    await wb.commit();
  };
  write().catch((e: Error) => pt.destroy(e));
  return pt;
}
