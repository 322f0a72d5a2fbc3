import type { Insertable, Kysely, Selectable } from 'kysely';
import type { StorageCapabilities } from '../../adapters/storage/capabilities.js';
import type { Database, DevicesTable } from '../../adapters/storage/schema.js';
import { deviceKeyNorm } from './device-key.js';
import { type DeviceState, stateCondition } from './device-state.js';

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

export type OwnerKind = 'none' | 'user' | 'org';

export interface DeviceListQuery {
  vendorId?: string;
  modelId?: string;
  batchId?: string;
  /** Case-insensitive prefix match on SN or device key, or an exact hw_code (or a label URL carrying one). */
  search?: string;
  state?: DeviceState;
  online?: boolean;
  ownerKind?: OwnerKind;
  firmwareVersion?: string;
  /** An explicit selection (SN keys); the other filters still apply. */
  snKeys?: string[];
  /** Keyset page: rows whose SN key sorts after this one. */
  after?: string;
  limit: number;
}

const SN_ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';

/**
 * The exclusive upper bound of a prefix range over lowercase SN keys: the prefix with its last
 * character stepped within [0-9a-z] (`ab9` → `aba`, `abz` → `ac`), so the bound sorts right under
 * byte-order and linguistic collations alike. Null when there is none (all `z`, other characters):
 * then LIKE alone bounds the scan.
 */
export function prefixUpperBound(prefix: string): string | null {
  let p = prefix;
  while (p.length > 0) {
    const i = SN_ALPHABET.indexOf(p.at(-1)!);
    if (i < 0) return null;
    if (i < SN_ALPHABET.length - 1) return p.slice(0, -1) + SN_ALPHABET[i + 1];
    p = p.slice(0, -1);
  }
  return null;
}

/** A hw_code typed or pasted as the label's URL. */
function hwCodeOf(q: string): string | null {
  const m = /[?&]hw_code=([A-Za-z0-9_-]{16,64})/.exec(q);
  if (m) return m[1]!;
  return /^[A-Za-z0-9_-]{16,64}$/.test(q) ? q : null;
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

  /**
   * The fleet list, ordered by SN key and paged by it. A search runs as one indexed query per kind
   * (SN prefix over (vendor_id|model_id, sn_key), device-key prefix over its unique index, exact
   * hw_code) merged here, rather than one OR that no index serves (docs/console.md, bench/vendor-devices.ts).
   */
  async list(q: DeviceListQuery): Promise<DeviceRow[]> {
    const base = () => {
      let s = this.db.selectFrom('devices').selectAll();
      if (q.vendorId) s = s.where('vendor_id', '=', q.vendorId);
      if (q.modelId) s = s.where('model_id', '=', q.modelId);
      if (q.batchId) s = s.where('batch_id', '=', q.batchId);
      if (q.state) {
        const state = q.state;
        s = s.where((eb) => stateCondition(eb, state));
      }
      if (q.online !== undefined) s = s.where('online', '=', q.online ? 1 : 0);
      if (q.ownerKind === 'none') s = s.where('owner_id', 'is', null);
      else if (q.ownerKind) s = s.where('owner_type', '=', q.ownerKind).where('owner_id', 'is not', null);
      if (q.firmwareVersion) s = s.where('firmware_version', '=', q.firmwareVersion);
      if (q.snKeys) s = s.where('sn_key', 'in', q.snKeys.length ? q.snKeys : ['']);
      if (q.after !== undefined) s = s.where('sn_key', '>', q.after);
      return s;
    };
    const search = q.search?.trim();
    if (!search) return base().orderBy('sn_key').limit(q.limit).execute();

    const queries: Array<Promise<DeviceRow[]>> = [];
    // LIKE wildcards typed by a person are not wildcards.
    const clean = search.replace(/[%_\\]/g, '');
    if (clean) {
      const byPrefix = (col: 'sn_key' | 'device_key_norm', prefix: string) => {
        let s = base().where(col, '>=', prefix).where(col, 'like', `${prefix}%`);
        const upper = prefixUpperBound(prefix);
        if (upper !== null) s = s.where(col, '<', upper);
        return s.orderBy('sn_key').limit(q.limit).execute();
      };
      queries.push(byPrefix('sn_key', clean.toLowerCase()));
      const key = deviceKeyNorm(clean);
      if (key) queries.push(byPrefix('device_key_norm', key));
    }
    const hw = hwCodeOf(search);
    if (hw) queries.push(base().where('hw_code', '=', hw).execute());
    const seen = new Set<number>();
    const merged: DeviceRow[] = [];
    for (const rows of await Promise.all(queries)) {
      for (const r of rows) {
        if (seen.has(r.id)) continue;
        seen.add(r.id);
        merged.push(r);
      }
    }
    merged.sort((a, b) => (a.sn_key < b.sn_key ? -1 : a.sn_key > b.sn_key ? 1 : 0));
    return merged.slice(0, q.limit);
  }
}
