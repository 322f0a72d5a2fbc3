import type { Kysely, Selectable } from 'kysely';
import type { Database, MerchantKeysTable, MerchantsTable, OrganisationsTable } from '../../adapters/storage/schema.js';

export type OrgRow = Selectable<OrganisationsTable>;
export type MerchantRow = Selectable<MerchantsTable>;
export type MerchantKeyRow = Selectable<MerchantKeysTable>;

/** What authenticating one /v3 request needs, in one round trip. */
export interface CallerKeyRow {
  org_id: string;
  mchid: string;
  merchant_shortname: string | null;
  key_mode: string;
  fleet_version: number;
  public_key_pem: string | null;
  serial_key: string | null;
}

export interface FleetPageRow {
  sn: string;
  camera_sn: string | null;
  app_scene_code: string | null;
  operating_system: string | null;
  activated_at: number | null;
  owner_id: string | null;
  category_code: string;
  class_code: string;
  model_name: string;
  owner_mchid: string | null;
  owner_shortname: string | null;
}

/** Merchant persistence: organisations acting as merchants, their keys, and fleet pages. */
export class MerchantRepo {
  constructor(private readonly db: Kysely<Database>) {}

  with(trx: Kysely<Database>): MerchantRepo {
    return new MerchantRepo(trx);
  }

  orgById(id: string): Promise<OrgRow | undefined> {
    return this.db.selectFrom('organisations').selectAll().where('id', '=', id).executeTakeFirst();
  }

  orgByMchid(mchid: string): Promise<OrgRow | undefined> {
    return this.db.selectFrom('organisations').selectAll().where('mchid', '=', mchid).executeTakeFirst();
  }

  /** Whether the user is a super admin of the organisation (merchant self-service). */
  async isSuperAdmin(orgId: string, userId: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('org_members')
      .select('user_id')
      .where('org_id', '=', orgId)
      .where('user_id', '=', userId)
      .where('role', '=', 'super_admin')
      .executeTakeFirst();
    return row !== undefined;
  }

  merchantRow(orgId: string): Promise<MerchantRow | undefined> {
    return this.db.selectFrom('merchants').selectAll().where('org_id', '=', orgId).executeTakeFirst();
  }

  /** The merchant behind an mchid, with its organisation. */
  async merchantByMchid(mchid: string): Promise<{ org: OrgRow; merchant: MerchantRow } | undefined> {
    const org = await this.orgByMchid(mchid);
    if (!org) return undefined;
    const merchant = await this.merchantRow(org.id);
    return merchant ? { org, merchant } : undefined;
  }

  async listMerchants(): Promise<Array<{ org: OrgRow; merchant: MerchantRow }>> {
    const rows = await this.db
      .selectFrom('merchants as m')
      .innerJoin('organisations as o', 'o.id', 'm.org_id')
      .selectAll('m')
      .select(['o.id', 'o.name', 'o.parent_id', 'o.mchid', 'o.merchant_shortname', 'o.created_at as org_created_at'])
      .orderBy('o.mchid')
      .execute();
    return rows.map((r) => ({
      org: {
        id: r.id,
        name: r.name,
        parent_id: r.parent_id,
        mchid: r.mchid,
        merchant_shortname: r.merchant_shortname,
        created_at: r.org_created_at,
      },
      merchant: {
        org_id: r.org_id,
        key_mode: r.key_mode,
        apiv3_key_enc: r.apiv3_key_enc,
        fleet_next_seq: r.fleet_next_seq,
        fleet_total: r.fleet_total,
        fleet_version: r.fleet_version,
        created_at: r.created_at,
        updated_at: r.updated_at,
      },
    }));
  }

  subMerchants(merchantOrgId: string): Promise<OrgRow[]> {
    return this.db
      .selectFrom('organisations')
      .selectAll()
      .where('parent_id', '=', merchantOrgId)
      .where('mchid', 'is not', null)
      .orderBy('mchid')
      .execute();
  }

  keys(merchantOrgId: string, includeRevoked = false): Promise<MerchantKeyRow[]> {
    let q = this.db.selectFrom('merchant_keys').selectAll().where('merchant_org_id', '=', merchantOrgId);
    if (!includeRevoked) q = q.where('revoked_at', 'is', null);
    return q.orderBy('created_at').execute();
  }

  /**
   * The merchant for an mchid and, when one is active, its key with this serial. A left join so
   * "unknown serial" and "unknown merchant" can be told apart in the SIGN_ERROR detail.
   */
  async callerKey(mchid: string, serialKey: string): Promise<CallerKeyRow | undefined> {
    const row = await this.db
      .selectFrom('organisations as o')
      .innerJoin('merchants as m', 'm.org_id', 'o.id')
      .leftJoin('merchant_keys as k', (j) =>
        j.onRef('k.merchant_org_id', '=', 'o.id').on('k.serial_key', '=', serialKey).on('k.revoked_at', 'is', null),
      )
      .select([
        'o.id as org_id',
        'o.mchid',
        'o.merchant_shortname',
        'm.key_mode',
        'm.fleet_version',
        'k.public_key_pem',
        'k.serial_key',
      ])
      .where('o.mchid', '=', mchid)
      .executeTakeFirst();
    if (!row) return undefined;
    return { ...row, mchid: row.mchid!, fleet_version: Number(row.fleet_version) };
  }

  /**
   * One page of a merchant's fleet: seek to the block, skip `skip` members inside it (an
   * index-only walk of at most one block), then read `limit` rows with their model and owner.
   */
  fleetPage(merchantOrgId: string, fromSeq: number, skip: number, limit: number): Promise<FleetPageRow[]> {
    return this.db
      .selectFrom('devices as d')
      .innerJoin('models as m', 'm.model_id', 'd.model_id')
      .leftJoin('organisations as o', 'o.id', 'd.owner_id')
      .select([
        'd.sn',
        'd.camera_sn',
        'd.app_scene_code',
        'd.operating_system',
        'd.activated_at',
        'd.owner_id',
        'm.category_code',
        'm.class_code',
        'm.name as model_name',
        'o.mchid as owner_mchid',
        'o.merchant_shortname as owner_shortname',
      ])
      .where('d.merchant_org_id', '=', merchantOrgId)
      .where((eb) =>
        eb(
          'd.merchant_seq',
          '>=',
          eb
            .selectFrom('devices as s')
            .select('s.merchant_seq')
            .where('s.merchant_org_id', '=', merchantOrgId)
            .where('s.merchant_seq', '>=', fromSeq)
            .orderBy('s.merchant_seq')
            .limit(1)
            .offset(skip),
        ),
      )
      .orderBy('d.merchant_seq')
      .limit(limit)
      .execute();
  }
}
