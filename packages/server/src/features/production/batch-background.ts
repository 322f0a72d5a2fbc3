import type { SnPattern } from '@bindery/protocol';
import type { ModelsTable } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { audit } from '../../shared/audit.js';
import { newId } from '../../shared/ids.js';
import type { Principal } from '../../shared/principal.js';
import { KyselyDevicesRepo } from '../devices/devices.repo.js';
import type { DevicesService } from '../devices/devices.service.js';
import type { ModelsService } from '../models/models.service.js';
import type { BatchRow } from './production.repo.js';
import { type BatchInput, type ProductionService, validateBatchInput } from './production.service.js';

/** Devices written per transaction: small enough that progress moves and other requests get the database. */
export const BACKGROUND_SLICE = 500;
/** A `generating` batch whose last slice is older than this lost its process and is rolled back. */
export const STALE_MS = 120_000;

/**
 * Label batches made in the background (issue 13, item 4; the console's create form). The SNs are
 * planned and checked and the batch row committed as `generating` before the answer (202); the
 * devices are then written a slice per transaction, so the batch's `counts.generated` is its
 * progress for any process and any page reload. Still all or nothing: a batch that fails, or
 * whose process stopped (no slice for STALE_MS), has its devices removed and becomes `failed`.
 * Its devices exist, unprinted, while it is generating; `device.registered` is announced at the end.
 */
export class BatchBackground {
  /** Tests slow generation down (and make slices smaller) to watch its progress. */
  sliceDelayMs = 0;
  sliceSize = BACKGROUND_SLICE;
  private readonly running = new Set<string>();
  private readonly devicesRepo: KyselyDevicesRepo;

  constructor(
    private readonly deps: Pick<Deps, 'db' | 'clock' | 'metrics' | 'logger'>,
    private readonly production: ProductionService,
    private readonly models: ModelsService,
    private readonly devices: DevicesService,
  ) {
    this.devicesRepo = new KyselyDevicesRepo(deps.db.kysely, deps.db.caps);
  }

  /** Plans and checks the batch, commits it as `generating` and starts writing its devices. */
  async start(actor: Principal, modelId: string, input: BatchInput): Promise<string> {
    const model = await this.models.getRow(actor, modelId, 'batches');
    const problems = validateBatchInput(input);
    if (problems.length) fail('VALIDATION_FAILED', problems.join('; '), { problems });
    const { count } = input;
    const id = newId('bat');
    const now = this.deps.clock.now();
    const plan = await this.production.planSns(input.pattern, count);
    const sns = plan.sns;
    await this.deps.db.kysely.transaction().execute(async (trx) => {
      await this.production.resolveCollisions(this.devicesRepo.with(trx), plan.pattern, sns);
      await trx
        .insertInto('batches')
        .values({
          id,
          model_id: model.model_id,
          vendor_id: model.vendor_id,
          count,
          pattern: JSON.stringify(plan.pattern),
          state: 'generating',
          error: null,
          downloads: 0,
          created_at: now,
          finished_at: null,
          heartbeat_at: now,
        })
        .execute();
    });
    this.running.add(id);
    void this.write(actor, model, id, plan.pattern, sns, now).finally(() => this.running.delete(id));
    return id;
  }

  /** True when `row` is generating with nobody writing it any more; it is then rolled back. */
  async recoverIfStale(row: BatchRow): Promise<boolean> {
    if (row.state !== 'generating' || this.running.has(row.id)) return false;
    if (this.deps.clock.now() - (row.heartbeat_at ?? row.created_at) < STALE_MS) return false;
    await this.rollBack(row.id, 'interrupted: the server generating it stopped; nothing was kept');
    return true;
  }

  private async write(
    actor: Principal,
    model: ModelsTable,
    id: string,
    pattern: SnPattern,
    sns: string[],
    now: number,
  ): Promise<void> {
    try {
      const size = this.sliceSize;
      for (let i = 0; i < sns.length; i += size) {
        if (this.sliceDelayMs > 0) await new Promise((r) => setTimeout(r, this.sliceDelayMs));
        const slice = sns.slice(i, i + size);
        await this.deps.db.kysely.transaction().execute(async (trx) => {
          await this.devicesRepo.with(trx).insertMany(slice.map((sn) => this.production.deviceRow(model, sn, now, id)));
          await trx.updateTable('batches').set({ heartbeat_at: this.deps.clock.now() }).where('id', '=', id).execute();
        });
      }
      await this.deps.db.kysely.transaction().execute(async (trx) => {
        await trx
          .updateTable('batches')
          .set({ state: 'ready', finished_at: this.deps.clock.now() })
          .where('id', '=', id)
          .execute();
        await audit(trx, now, actor, 'batch.create', `batch:${id}`, {
          model_id: model.model_id,
          count: sns.length,
          pattern,
          first_sn: sns[0],
          last_sn: sns[sns.length - 1],
          background: true,
        });
      });
      this.deps.metrics.counter('bindery_batches_created_total', 'Label batches created').inc();
      this.deps.metrics.counter('bindery_devices_registered_total', 'Devices registered').inc(sns.length);
      this.devices.announceRegistered(model, sns, now);
    } catch (e) {
      // Typically a concurrent registration took one of the planned SNs between two slices.
      const unique = this.deps.db.caps.isUniqueViolation(e);
      this.deps.logger.warn({ err: e, batch: id }, 'background batch failed; rolling it back');
      const reason = unique
        ? 'Another registration took one of these SNs while the batch was being written; nothing was kept'
        : 'internal error; nothing was kept';
      await this.rollBack(id, reason, actor, model.model_id);
    }
  }

  /** Removes the batch's devices and marks it failed, in one transaction. */
  private async rollBack(id: string, error: string, actor?: Principal, modelId?: string): Promise<void> {
    try {
      await this.deps.db.kysely.transaction().execute(async (trx) => {
        await trx.deleteFrom('devices').where('batch_id', '=', id).execute();
        await trx
          .updateTable('batches')
          .set({ state: 'failed', error, finished_at: this.deps.clock.now() })
          .where('id', '=', id)
          .where('state', '=', 'generating')
          .execute();
        if (actor) await audit(trx, this.deps.clock.now(), actor, 'batch.failed', `batch:${id}`, { model_id: modelId, error });
      });
    } catch (e) {
      this.deps.logger.error({ err: e, batch: id }, 'could not roll back the background batch');
    }
  }
}
