import type { Insertable, Kysely, Selectable } from 'kysely';
import type { StorageCapabilities } from '../../adapters/storage/capabilities.js';
import type { Database, DevicesTable } from '../../adapters/storage/schema.js';
import { deviceKeyNorm } from './device-key.js';

export type DeviceRow = Selectable<DevicesTable>;
export type NewDevice = Insertable<DevicesTable>;

/** Device persistence as the features see it. One implementation over Kysely serves both backends. */
export interface DevicesRepo {
  insert(row: NewDevice): Promise<DeviceRow>;
  /** Inserts many rows in chunks sized for the backend; call inside a transaction for all-or-nothing. */
  insertMany(rows: NewDevice[]): Promise<void>;
  findBySn(sn: string): Promise<DeviceRow | undefined>;
  findBySnKeys(keys: string[]): Promise<Array<Pick<DeviceRow, 'sn_key' | 'device_key_norm' | 'model_id'>>>;
  findByHwCode(hwCode: string): Promise<DeviceRow | undefined>;
  deleteById(id: number): Promise<void>;
  list(q: DeviceListQuery): Promise<DeviceRow[]>;
}

export interface DeviceListQuery {
  vendorId?: string;
  modelId?: string;
  batchId?: string;
  /** Case-insensitive prefix match on SN or device key. */
  search?: string;
  afterId?: number;
  limit: number;
}

export class KyselyDevicesRepo implements DevicesRepo {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly caps: StorageCapabilities,
  ) {}

  /** The same repository bound to a transaction. */
  with(trx: Kysely<Database>): KyselyDevicesRepo {
    return new KyselyDevicesRepo(trx, this.caps);
  }

  async insert(row: NewDevice): Promise<DeviceRow> {
    return this.db.insertInto('devices').values(row).returningAll().executeTakeFirstOrThrow();
  }

  async insertMany(rows: NewDevice[]): Promise<void> {
    if (rows.length === 0) return;
    const size = this.caps.insertChunk(Object.keys(rows[0]!).length);
    for (let i = 0; i < rows.length; i += size) {
      await this.db
        .insertInto('devices')
        .values(rows.slice(i, i + size))
        .execute();
    }
  }

  async findBySn(sn: string): Promise<DeviceRow | undefined> {
    return this.db.selectFrom('devices').selectAll().where('sn_key', '=', sn.toLowerCase()).executeTakeFirst();
  }

  async findBySnKeys(keys: string[]) {
    const out: Array<Pick<DeviceRow, 'sn_key' | 'device_key_norm' | 'model_id'>> = [];
    const size = Math.min(this.caps.maxParams - 10, 10_000);
    for (let i = 0; i < keys.length; i += size) {
      const part = await this.db
        .selectFrom('devices')
        .select(['sn_key', 'device_key_norm', 'model_id'])
        .where('sn_key', 'in', keys.slice(i, i + size))
        .execute();
      out.push(...part);
    }
    return out;
  }

  async findByHwCode(hwCode: string): Promise<DeviceRow | undefined> {
    return this.db.selectFrom('devices').selectAll().where('hw_code', '=', hwCode).executeTakeFirst();
  }

  async deleteById(id: number): Promise<void> {
    await this.db.deleteFrom('devices').where('id', '=', id).execute();
  }

  async list(q: DeviceListQuery): Promise<DeviceRow[]> {
    let s = this.db.selectFrom('devices').selectAll();
    if (q.vendorId) s = s.where('vendor_id', '=', q.vendorId);
    if (q.modelId) s = s.where('model_id', '=', q.modelId);
    if (q.batchId) s = s.where('batch_id', '=', q.batchId);
    if (q.search) {
      const clean = q.search.replace(/[%_\\]/g, '');
      const snPrefix = `${clean.toLowerCase()}%`;
      const keyPrefix = `${deviceKeyNorm(clean)}%`;
      s = s.where((eb) => eb.or([eb('sn_key', 'like', snPrefix), eb('device_key_norm', 'like', keyPrefix)]));
    }
    if (q.afterId !== undefined) s = s.where('id', '>', q.afterId);
    return s.orderBy('id').limit(q.limit).execute();
  }
}
