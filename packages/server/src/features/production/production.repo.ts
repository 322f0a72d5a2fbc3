import type { Insertable, Kysely, Selectable } from 'kysely';
import type { BatchesTable, Database } from '../../adapters/storage/schema.js';

export type BatchRow = Selectable<BatchesTable>;

export interface BatchCounts {
  generated: number;
  paired: number;
  activated: number;
  bound: number;
  first_sn: string | null;
  last_sn: string | null;
}

/** Batch persistence. Counts are always computed from the devices, never stored. */
export class ProductionRepo {
  constructor(private readonly db: Kysely<Database>) {}

  with(trx: Kysely<Database>): ProductionRepo {
    return new ProductionRepo(trx);
  }

  async insertBatch(row: Insertable<BatchesTable>): Promise<void> {
    await this.db.insertInto('batches').values(row).execute();
  }

  async findBatch(id: string): Promise<BatchRow | undefined> {
    return this.db.selectFrom('batches').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Newest first; keyset on (created_at, id). */
  async listBatches(q: {
    vendorId?: string;
    modelId?: string;
    before?: { createdAt: number; id: string };
    limit: number;
  }): Promise<BatchRow[]> {
    let s = this.db.selectFrom('batches').selectAll();
    if (q.vendorId) s = s.where('vendor_id', '=', q.vendorId);
    if (q.modelId) s = s.where('model_id', '=', q.modelId);
    if (q.before) {
      const b = q.before;
      s = s.where((eb) =>
        eb.or([eb('created_at', '<', b.createdAt), eb.and([eb('created_at', '=', b.createdAt), eb('id', '<', b.id)])]),
      );
    }
    return s.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(q.limit).execute();
  }

  async counts(batchIds: string[]): Promise<Map<string, BatchCounts>> {
    const out = new Map<string, BatchCounts>();
    if (batchIds.length === 0) return out;
    const rows = await this.db
      .selectFrom('devices')
      .select((eb) => [
        'batch_id',
        eb.fn.countAll().as('generated'),
        eb.fn.count('device_key').as('paired'),
        eb.fn.count('activated_at').as('activated'),
        eb.fn.count('owner_id').as('bound'),
        eb.fn.min('sn').as('first_sn'),
        eb.fn.max('sn').as('last_sn'),
      ])
      .where('batch_id', 'in', batchIds)
      .groupBy('batch_id')
      .execute();
    for (const r of rows) {
      // pg returns count(*) as a string (bigint); SQLite as a number.
      out.set(r.batch_id!, {
        generated: Number(r.generated),
        paired: Number(r.paired),
        activated: Number(r.activated),
        bound: Number(r.bound),
        first_sn: r.first_sn,
        last_sn: r.last_sn,
      });
    }
    return out;
  }

  /**
   * SN keys of length `length` in [low, high], highest first, one page at a time: used to find
   * the highest counter already taken under a prefix.
   */
  async snKeysDescending(q: { prefix: string; length: number; low: string; high: string; below?: string; limit: number }) {
    let s = this.db
      .selectFrom('devices')
      .select('sn_key')
      .where('sn_key', 'like', `${q.prefix}%`)
      .where((eb) => eb(eb.fn<number>('length', ['sn_key']), '=', q.length))
      .where('sn_key', '>=', q.low)
      .where('sn_key', '<=', q.high);
    if (q.below !== undefined) s = s.where('sn_key', '<', q.below);
    const rows = await s.orderBy('sn_key', 'desc').limit(q.limit).execute();
    return rows.map((r) => r.sn_key);
  }

  /**
   * What a label shows, in registration order, a page at a time. The sealed SecretNo comes only
   * so the caller can derive the printed verification code; it is never written anywhere.
   */
  async batchLabels(batchId: string, afterId: number, limit: number) {
    return this.db
      .selectFrom('devices')
      .select(['id', 'sn', 'hw_code', 'secret_no_enc'])
      .where('batch_id', '=', batchId)
      .where('id', '>', afterId)
      .orderBy('id')
      .limit(limit)
      .execute();
  }

  /** One label's data: the batch's first device, or the one whose SN is `sn` (any case). */
  async batchLabel(batchId: string, sn?: string) {
    let s = this.db.selectFrom('devices').select(['sn', 'hw_code', 'secret_no_enc']).where('batch_id', '=', batchId);
    if (sn !== undefined) s = s.where('sn_key', '=', sn.toLowerCase());
    return s.orderBy('id').limit(1).executeTakeFirst();
  }

  /** Sealed SecretNos for the flashing file, in registration order, a page at a time. */
  async batchSecrets(batchId: string, afterId: number, limit: number) {
    return this.db
      .selectFrom('devices')
      .select(['id', 'sn', 'secret_no_enc'])
      .where('batch_id', '=', batchId)
      .where('id', '>', afterId)
      .orderBy('id')
      .limit(limit)
      .execute();
  }

  async incrementDownloads(id: string): Promise<void> {
    await this.db
      .updateTable('batches')
      .set((eb) => ({ downloads: eb('downloads', '+', 1) }))
      .where('id', '=', id)
      .execute();
  }
}
