import type { Writable } from 'node:stream';
import { counterSn, hasValidCheckChar, randomSn, type SnPattern, snKey, validateSnPattern } from '@bindery/protocol';
import type { Insertable } from 'kysely';
import type { DevicesTable, ModelsTable } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { AppError, fail } from '../../errors.js';
import { audit } from '../../shared/audit.js';
import { csvLine } from '../../shared/csv.js';
import { newId } from '../../shared/ids.js';
import { type Principal, requireVendor } from '../../shared/principal.js';
import { KyselyDevicesRepo } from '../devices/devices.repo.js';
import type { DevicesService } from '../devices/devices.service.js';
import type { ModelsService } from '../models/models.service.js';
import { BatchBackground } from './batch-background.js';
import { type PdfResult, renderBatchPdf, streamBatchZip, ZIP_PARTS, type ZipPart, type ZipResult } from './batch-zip.js';
import type { LabelLayout } from './label-pdf.js';
import { labelSvg, previewLabel } from './label-preview.js';
import { type BatchCounts, type BatchRow, ProductionRepo } from './production.repo.js';
import { waitWritable } from './zip-writer.js';

/** Quectel caps one generation at 10 000; a batch here may hold ten times that. */
export const MAX_BATCH = 100_000;
/** Counter batches start here when the prefix has never been used. */
export const FIRST_COUNTER = 1;

/** `generating`: a background batch still being written (batch-background.ts). */
export type BatchState = 'generating' | 'ready' | 'failed';

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

export { type PdfResult, renderBatchPdf, ZIP_PARTS, type ZipPart, type ZipResult } from './batch-zip.js';
export type { LabelLayout } from './label-pdf.js';

export interface ZipOptions {
  /** Called with (done, total) work units as labels are rendered (and laid out, for PDFs). */
  onProgress?: (done: number, total: number) => void;
  include?: readonly ZipPart[];
}

export interface ZipJob {
  batch: BatchView;
  /** `labels_<batch>_yyyyMMddHHmmss.zip`, like Quectel's `设备SN_<timestamp>.zip`. */
  filename: string;
  /**
   * Streams the zip into `out`, ends it, and counts the download: for a file or pipe whose
   * end means every byte arrived. `stream` + `delivered` is the same in two steps, for HTTP.
   */
  write(out: Writable): Promise<ZipResult>;
  /** Streams the zip into `out` and ends it, without counting it as a download. */
  stream(out: Writable): Promise<ZipResult>;
  /**
   * Counts (and audits) one download. Call it only once the whole zip reached its reader: for
   * HTTP, when the response finished; a client that went away halfway has not downloaded it.
   */
  delivered(result: ZipResult): Promise<void>;
}

const INSERT_SLICE = 5000;
const PAGE = 5000;
/** Render jobs (each a pool of workers) that may run at once in this process; more wait. */
const MAX_CONCURRENT_ZIPS = 2;

/** yyyyMMddHHmmss in UTC. */
export function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/**
 * Issue 11: what a batch's SN pattern gives away. Counter SNs are consecutive, so one label tells
 * anyone the others: only the verification code (docs/binding.md) stops a stranger claiming them.
 */
export function batchWarnings(p: SnPattern): string[] {
  return p.kind === 'counter'
    ? [
        'Counter SNs are guessable: anyone who sees one label can work out the others. Keep the model on typed_sn_mode verif_code (the default) and print the verification code on each label, or use --random SNs.',
      ]
    : [];
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
  get running(): number {
    return this.active;
  }
  get queued(): number {
    return this.waiting.length;
  }
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
  /** Batches being generated by this process right now (instance health). */
  private generating = 0;

  constructor(
    private readonly deps: Pick<Deps, 'db' | 'clock' | 'secrets' | 'config' | 'metrics' | 'logger'>,
    private readonly models: ModelsService,
    private readonly devices: DevicesService,
  ) {
    this.repo = new ProductionRepo(deps.db.kysely);
    this.devicesRepo = new KyselyDevicesRepo(deps.db.kysely, deps.db.caps);
    this.background = new BatchBackground(deps, this, models, devices);
  }

  /** Background generation (the console): `generating` at once, progress in `counts.generated`. */
  readonly background: BatchBackground;

  async startBatch(actor: Principal, modelId: string, input: BatchInput): Promise<BatchView> {
    return this.getBatch(actor, await this.background.start(actor, modelId, input));
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
    this.generating++;
    try {
      return await this.generateBatch(actor, modelId, input, onProgress);
    } finally {
      this.generating--;
    }
  }

  /** What this process is working on: batches being generated, label zips rendering and waiting. */
  activity(): { generating: number; zipsRendering: number; zipsWaiting: number } {
    return { generating: this.generating, zipsRendering: this.zipSlots.running, zipsWaiting: this.zipSlots.queued };
  }

  private async generateBatch(
    actor: Principal,
    modelId: string,
    input: BatchInput,
    onProgress?: (done: number, total: number) => void,
  ): Promise<BatchView> {
    const model = await this.models.getActiveRow(actor, modelId, 'batches');
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
    let row = await this.batchRow(actor, batchId);
    if (await this.background.recoverIfStale(row)) row = await this.batchRow(actor, batchId);
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
      const model = await this.models.getRow(actor, q.modelId, 'batches');
      if (q.vendorId && q.vendorId !== model.vendor_id) fail('MODEL_NOT_FOUND');
    } else requireVendor(actor, q.vendorId!, 'batches');
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
    notReady(row);
    const include = new Set<ZipPart>(opts.include ?? ZIP_PARTS);
    for (const p of include) if (!ZIP_PARTS.includes(p)) fail('VALIDATION_FAILED', `include: unknown part ${p}`);
    if (include.size === 0) fail('VALIDATION_FAILED', 'include: choose at least one part');
    const model = await this.models.getRow(actor, row.model_id, 'batches');
    const counts = await this.repo.counts([row.id]);
    const now = this.deps.clock.now();
    const job: ZipJob = {
      batch: this.view(row, counts.get(row.id)),
      filename: `labels_${row.id}_${stamp(now)}.zip`,
      stream: async (out) => {
        const release = await this.zipSlots.acquire();
        try {
          return await this.streamZip(row, model, include, out, now, opts.onProgress);
        } finally {
          release();
        }
      },
      delivered: async (result) => {
        await this.repo.incrementDownloads(row.id);
        await audit(this.deps.db.kysely, this.deps.clock.now(), actor, 'batch.download', `batch:${row.id}`, {
          parts: [...include],
          bytes: result.bytes,
        });
      },
      // `stream` resolves once `out` has finished (every byte handed to the file or pipe).
      write: async (out) => {
        const result = await job.stream(out);
        await job.delivered(result);
        return result;
      },
    };
    return job;
  }

  /** Streams the batch's zip into `out` (and ends it). See docs/labels.md for the layout. */
  async writeBatchZip(actor: Principal, batchId: string, out: Writable, opts: ZipOptions = {}): Promise<ZipResult> {
    const job = await this.prepareBatchZip(actor, batchId, opts);
    return job.write(out);
  }

  /**
   * One label PDF of the batch, `labels-a4.pdf` or `labels-roll.pdf` exactly as the zip holds it
   * (batch-zip.ts renderBatchPdf), checked before any byte is sent. It shares the zips' slots
   * and render pool. `delivered` audits it (as a `batch.download` of that file); only whole
   * zips count towards the batch's `downloaded`.
   */
  async prepareBatchPdf(
    actor: Principal,
    batchId: string,
    layout: LabelLayout,
    opts: Pick<ZipOptions, 'onProgress'> = {},
  ): Promise<{ filename: string; stream(out: Writable): Promise<PdfResult>; delivered(result: PdfResult): Promise<void> }> {
    if (layout !== 'a4' && layout !== 'roll') fail('VALIDATION_FAILED', `layout: unknown label layout ${String(layout)}`);
    const row = await this.batchRow(actor, batchId);
    notReady(row);
    const model = await this.models.getRow(actor, row.model_id, 'batches');
    const now = this.deps.clock.now();
    return {
      filename: `labels-${layout}_${row.id}_${stamp(now)}.pdf`,
      stream: async (out) => {
        const release = await this.zipSlots.acquire();
        try {
          return await renderBatchPdf(
            { deps: this.deps, repo: this.repo, batch: row, model, now, onProgress: opts.onProgress },
            layout,
            out,
          );
        } finally {
          release();
        }
      },
      delivered: async (result) => {
        await audit(this.deps.db.kysely, this.deps.clock.now(), actor, 'batch.download', `batch:${row.id}`, {
          parts: [`labels-${layout}.pdf`],
          bytes: result.bytes,
        });
      },
    };
  }

  /** Streams one label PDF of the batch into `out` (and ends it); see prepareBatchPdf. */
  async writeBatchPdf(actor: Principal, batchId: string, layout: LabelLayout, out: Writable): Promise<PdfResult> {
    const job = await this.prepareBatchPdf(actor, batchId, layout);
    const result = await job.stream(out);
    await job.delivered(result);
    return result;
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
    notReady(row);
    const model = await this.models.getRow(actor, row.model_id, 'batches');
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
              s += csvLine(seed ? [d.sn, secrets.open(d.secret_no_enc), seed] : [d.sn, secrets.open(d.secret_no_enc)]);
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

  /** One label of the batch as an SVG at its printed size (label-preview.ts); nothing secret in it. */
  async previewSvg(actor: Principal, batchId: string, sn?: string): Promise<string> {
    const row = await this.batchRow(actor, batchId);
    const model = await this.models.getRow(actor, row.model_id, 'batches');
    return labelSvg(await previewLabel(this.deps, this.repo, row, model, sn));
  }

  async writeSecretsCsv(actor: Principal, batchId: string, out: Writable): Promise<{ rows: number }> {
    const job = await this.prepareSecretsCsv(actor, batchId);
    return job.write(out);
  }

  // ——— creation ————————————————————————————————————————————————————————————————

  /** @internal for batch-background.ts */
  deviceRow(model: ModelsTable, sn: string, now: number, batchId: string): Insertable<DevicesTable> {
    // Exactly the row single registration makes, minus its null columns: 10 columns instead of
    // 32 make each multi-row INSERT a third of the parameters.
    const row = this.devices.newDeviceRow(model, sn, now, {}, batchId) as Record<string, unknown>;
    for (const k of Object.keys(row)) if (row[k] === null) delete row[k];
    return row as unknown as Insertable<DevicesTable>;
  }

  /** The batch's SNs; counter patterns without a start continue after the highest one used. */
  /** @internal for batch-background.ts */
  async planSns(pattern: SnPattern, count: number): Promise<{ sns: string[]; pattern: SnPattern }> {
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
  /** @internal for batch-background.ts */
  async resolveCollisions(devices: KyselyDevicesRepo, pattern: SnPattern, sns: string[]): Promise<void> {
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
    requireVendor(actor, row.vendor_id, 'batches');
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

  private streamZip(
    batch: BatchRow,
    model: ModelsTable,
    include: Set<ZipPart>,
    out: Writable,
    now: number,
    onProgress?: (done: number, total: number) => void,
  ): Promise<ZipResult> {
    return streamBatchZip({ deps: this.deps, repo: this.repo, batch, model, include, now, onProgress }, out);
  }
}

function notReady(row: BatchRow): void {
  if (row.state === 'generating') fail('BATCH_NOT_READY', `Batch ${row.id} is still being generated`);
  if (row.state !== 'ready') fail('BATCH_NOT_READY', `Batch ${row.id} failed and has no devices: ${row.error ?? ''}`);
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
