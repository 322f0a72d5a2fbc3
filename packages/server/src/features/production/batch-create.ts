import { counterSn, hasValidCheckChar, randomSn, type SnPattern, snKey, validateSnPattern } from '@bindery/protocol';
import type { Insertable } from 'kysely';
import type { DevicesTable, ModelsTable } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { AppError, fail } from '../../errors.js';
import { audit } from '../../shared/audit.js';
import { newId } from '../../shared/ids.js';
import type { Principal } from '../../shared/principal.js';
import type { KyselyDevicesRepo } from '../devices/devices.repo.js';
import type { DevicesService } from '../devices/devices.service.js';
import type { ModelsService } from '../models/models.service.js';
import type { ProductionRepo } from './production.repo.js';

/**
 * Making a label batch (issue 2 §7): the SN plan, collision checks and the one transaction that
 * stores N devices. ProductionService (production.service.ts) fronts it; batch-background.ts
 * uses the same pieces to write a batch a slice at a time.
 */

/** Quectel caps one generation at 10 000; a batch here may hold ten times that. */
export const MAX_BATCH = 100_000;
/** Counter batches start here when the prefix has never been used. */
export const FIRST_COUNTER = 1;

export interface BatchInput {
  count: number;
  pattern: SnPattern;
}

/** The pattern as the API shows it (snake_case, like every other body). */
export type PatternView =
  | { kind: 'counter'; prefix: string; width: number; start: number | null; check_char: boolean }
  | { kind: 'random'; prefix: string; length: number; check_char: boolean };

const INSERT_SLICE = 5000;

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

export function patternView(p: SnPattern): PatternView {
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

export class BatchCreator {
  constructor(
    private readonly deps: Pick<Deps, 'db' | 'clock' | 'metrics' | 'logger'>,
    private readonly repo: ProductionRepo,
    private readonly devicesRepo: KyselyDevicesRepo,
    private readonly models: ModelsService,
    private readonly devices: DevicesService,
  ) {}

  /**
   * Generates a batch and returns its id. SN collisions with existing devices (ignoring case) are
   * found before anything is written: random SNs are drawn again, counter SNs fail the batch with
   * the SNs named. Either the whole batch is stored or none of it; a failure is kept as a `failed` batch.
   */
  async create(
    actor: Principal,
    modelId: string,
    input: BatchInput,
    onProgress?: (done: number, total: number) => void,
  ): Promise<string> {
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
        return id;
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

  /** One device's row: exactly what single registration stores, without its null columns. */
  deviceRow(model: ModelsTable, sn: string, now: number, batchId: string): Insertable<DevicesTable> {
    // 10 columns instead of 32 make each multi-row INSERT a third of the parameters.
    const row = this.devices.newDeviceRow(model, sn, now, {}, batchId) as Record<string, unknown>;
    for (const k of Object.keys(row)) if (row[k] === null) delete row[k];
    return row as unknown as Insertable<DevicesTable>;
  }

  /** The batch's SNs; counter patterns without a start continue after the highest one used. */
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
}
