import { type Kysely, type Selectable, sql } from 'kysely';
import type { StorageCapabilities } from '../../adapters/storage/capabilities.js';
import type { Database, DevicesTable, RelationImportsTable } from '../../adapters/storage/schema.js';

/** The device columns an import reads and writes. */
export type PairingRow = Pick<
  Selectable<DevicesTable>,
  | 'id'
  | 'sn'
  | 'sn_key'
  | 'vendor_id'
  | 'model_id'
  | 'device_key'
  | 'device_key_norm'
  | 'device_name'
  | 'cert_fingerprint'
  | 'camera_sn'
  | 'app_scene_code'
  | 'operating_system'
  | 'paired_at'
>;

/** The full new state of one device's pairing columns. */
export interface PairingWrite {
  id: number;
  device_key: string;
  device_key_norm: string;
  device_name: string | null;
  cert_fingerprint: string | null;
  camera_sn: string | null;
  app_scene_code: string | null;
  operating_system: string | null;
  paired_at: number;
}

const PAIRING_COLUMNS = [
  'id',
  'sn',
  'sn_key',
  'vendor_id',
  'model_id',
  'device_key',
  'device_key_norm',
  'device_name',
  'cert_fingerprint',
  'camera_sn',
  'app_scene_code',
  'operating_system',
  'paired_at',
] as const;

/** Values per row of the multi-row update below. */
const WRITE_COLUMNS = 9;

export class RelationsRepo {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly caps: StorageCapabilities,
  ) {}

  with(trx: Kysely<Database>): RelationsRepo {
    return new RelationsRepo(trx, this.caps);
  }

  private get inChunk(): number {
    return Math.min(this.caps.maxParams - 10, 10_000);
  }

  async findBySnKeys(keys: string[]): Promise<PairingRow[]> {
    const out: PairingRow[] = [];
    for (let i = 0; i < keys.length; i += this.inChunk) {
      out.push(
        ...(await this.db
          .selectFrom('devices')
          .select(PAIRING_COLUMNS)
          .where('sn_key', 'in', keys.slice(i, i + this.inChunk))
          .execute()),
      );
    }
    return out;
  }

  async findByDeviceKeyNorms(norms: string[]): Promise<PairingRow[]> {
    const out: PairingRow[] = [];
    for (let i = 0; i < norms.length; i += this.inChunk) {
      out.push(
        ...(await this.db
          .selectFrom('devices')
          .select(PAIRING_COLUMNS)
          .where('device_key_norm', 'in', norms.slice(i, i + this.inChunk))
          .execute()),
      );
    }
    return out;
  }

  /**
   * Writes pairings as multi-row `UPDATE … FROM (VALUES …)` statements (one per chunk; both
   * SQLite ≥ 3.33 and PostgreSQL name VALUES columns column1…N). A device whose key changed
   * since it was validated is not touched, so the returned count tells the caller to roll back.
   */
  async applyPairings(rows: PairingWrite[]): Promise<number> {
    let changed = 0;
    const size = this.caps.insertChunk(WRITE_COLUMNS);
    for (let i = 0; i < rows.length; i += size) {
      const values = rows
        .slice(i, i + size)
        .map(
          (r) =>
            sql`(CAST(${r.id} AS integer), ${r.device_key}, ${r.device_key_norm}, ${r.device_name}, ${r.cert_fingerprint}, ${r.camera_sn}, ${r.app_scene_code}, ${r.operating_system}, CAST(${r.paired_at} AS bigint))`,
        );
      const result = await sql`
        UPDATE devices SET
          device_key = v.column2, device_key_norm = v.column3, device_name = v.column4,
          cert_fingerprint = v.column5, camera_sn = v.column6, app_scene_code = v.column7,
          operating_system = v.column8, paired_at = v.column9
        FROM (VALUES ${sql.join(values)}) AS v
        WHERE devices.id = v.column1
          AND (devices.device_key_norm IS NULL OR devices.device_key_norm = v.column3)`.execute(this.db);
      changed += Number(result.numAffectedRows ?? 0n);
    }
    return changed;
  }

  async insertImport(row: RelationImportsTable): Promise<void> {
    await this.db.insertInto('relation_imports').values(row).execute();
  }

  /** Newest first; `before` is the (started_at, id) of the last row of the previous page. */
  async listImports(
    vendorId: string,
    limit: number,
    before?: { startedAt: number; id: string },
  ): Promise<Array<Selectable<RelationImportsTable>>> {
    let q = this.db.selectFrom('relation_imports').selectAll().where('vendor_id', '=', vendorId);
    if (before) {
      q = q.where((eb) =>
        eb.or([
          eb('started_at', '<', before.startedAt),
          eb.and([eb('started_at', '=', before.startedAt), eb('id', '<', before.id)]),
        ]),
      );
    }
    return q.orderBy('started_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
  }
}
