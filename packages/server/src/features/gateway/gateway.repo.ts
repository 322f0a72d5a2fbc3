import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { StorageCapabilities } from '../../adapters/storage/capabilities.js';
import type { Database } from '../../adapters/storage/schema.js';
import { arg, precompile } from './compiled.js';

/** What `register` / `get_secret_no` need, in one read (P-PERF-1: the device is looked up once). */
export interface RegisterRow {
  id: number;
  sn: string;
  sn_key: string;
  model_id: string;
  vendor_id: string;
  secret_no_enc: string;
  /** SHA-256 of the active_code (finding 10). */
  active_code: string | null;
  /** The active_code sealed; null for codes from before migration 011 (a new one is issued). */
  active_code_enc: string | null;
  registered_net_at: number | null;
  seed_secret_no_enc: string | null;
}

/** What `active` / `subscribe_corp` check: the current credentials of a device. */
export interface AuthRow {
  id: number;
  sn: string;
  sn_key: string;
  model_id: string;
  vendor_id: string;
  /** SHA-256 of the active_code (finding 10). */
  active_code: string | null;
  secret_enc: string | null;
  bound_at: number | null;
  activated_at: number | null;
}

export interface OnlineWrite {
  id: number;
  addr: string;
  seen: number;
  /** null keeps the stored firmware_version. */
  fw: string | null;
}

/** Device reads and writes of the gateway. One implementation over Kysely serves both backends. */
export class GatewayRepo {
  // The per-device queries, compiled once (P-PERF-1).
  private readonly q;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly caps: StorageCapabilities,
  ) {
    const auth = db
      .selectFrom('devices')
      .select(['id', 'sn', 'sn_key', 'model_id', 'vendor_id', 'active_code', 'secret_enc', 'bound_at', 'activated_at']);
    this.q = {
      registerRow: precompile<RegisterRow>(
        db,
        db
          .selectFrom('devices')
          .innerJoin('models', 'models.model_id', 'devices.model_id')
          .select([
            'devices.id',
            'devices.sn',
            'devices.sn_key',
            'devices.model_id',
            'devices.vendor_id',
            'devices.secret_no_enc',
            'devices.active_code',
            'devices.active_code_enc',
            'devices.registered_net_at',
            'models.seed_secret_no_enc',
          ])
          .where('devices.sn_key', '=', arg<string>(0)),
      ),
      authRow: precompile<AuthRow>(db, auth.where('id', '=', arg<number>(0))),
      authRowByActiveCode: precompile<AuthRow>(db, auth.where('active_code', '=', arg<string>(0))),
      // Finding 9: one UPDATE per event, before the reply (never left in a batch a crash loses).
      recordRegistered: precompile(
        db,
        db
          .updateTable('devices')
          .set({ registered_net_at: arg<number>(0) })
          .where('id', '=', arg<number>(1))
          .where('registered_net_at', 'is', null),
      ),
      recordActivated: precompile(
        db,
        db
          .updateTable('devices')
          .set({ activated_at: arg<number>(0) })
          .where('id', '=', arg<number>(1)),
      ),
    };
  }

  async registerRow(snKey: string): Promise<RegisterRow | undefined> {
    return (await this.q.registerRow(snKey)).rows[0];
  }

  async authRow(id: number): Promise<AuthRow | undefined> {
    return (await this.q.authRow(id)).rows[0];
  }

  /** The device whose active_code hashes to `codeHash` (hashActiveCode): the code itself is never stored. */
  async authRowByActiveCode(codeHash: string): Promise<AuthRow | undefined> {
    return (await this.q.authRowByActiveCode(codeHash)).rows[0];
  }

  /**
   * Stores a new active_code (its hash and sealed copy) unless the device has a sealed one
   * already, and records the first network register; returns the sealed code the device now has.
   */
  async issueActiveCode(id: number, code: { active_code: string; active_code_enc: string }, now: number): Promise<string> {
    const r = await this.db
      .updateTable('devices')
      .set({ ...code, registered_net_at: sql<number>`COALESCE(registered_net_at, ${now})` })
      .where('id', '=', id)
      .where('active_code_enc', 'is', null)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) === 1) return code.active_code_enc;
    // Another connection of the same device won the race: everyone gets the stored one.
    const row = await this.db.selectFrom('devices').select('active_code_enc').where('id', '=', id).executeTakeFirstOrThrow();
    return row.active_code_enc!;
  }

  /** The device's first network `register`, unless one was recorded already. */
  async recordRegistered(id: number, now: number): Promise<void> {
    await this.q.recordRegistered(now, id);
  }

  /** The first `active` of a binding (P-CMD-active-3), written before the device gets its secret. */
  async recordActivated(id: number, now: number): Promise<void> {
    await this.q.recordActivated(now, id);
  }

  /** `corp_name` for get_corp_info: the organisation's name, or the person's display name. */
  async ownerName(id: number): Promise<string | null> {
    const d = await this.db.selectFrom('devices').select(['owner_type', 'owner_id']).where('id', '=', id).executeTakeFirst();
    if (!d?.owner_id) return null;
    if (d.owner_type === 'org') {
      const o = await this.db.selectFrom('organisations').select('name').where('id', '=', d.owner_id).executeTakeFirst();
      return o?.name ?? null;
    }
    const u = await this.db.selectFrom('users').select('display_name').where('id', '=', d.owner_id).executeTakeFirst();
    return u?.display_name ?? null;
  }

  /** Records a static login code (as its SHA-256) for the landing page to resolve; idempotent. */
  async storeLoginCode(deviceId: number, codeHash: string, now: number): Promise<void> {
    await this.db
      .insertInto('login_codes')
      .values({ code_hash: codeHash, device_id: deviceId, created_at: now })
      .onConflict((oc) => oc.column('code_hash').doNothing())
      .execute();
  }

  // ---- P-LIVE-2/3: the stored per-device state, in batches -------------------------------------------------------

  /**
   * Writes a batch of state changes (P-LIVE-3): devices that came online (with their node, address
   * and firmware), devices whose connection on this node ended, and last-seen refreshes. Each kind
   * is one UPDATE … FROM (VALUES …) per chunk, valid on both backends, and each chunk commits on
   * its own, rows in id order: one transaction for the whole batch held thousands of row locks
   * while its later chunks ran, and activations and campaign writes of those devices waited.
   * Every statement is idempotent, so a batch that fails part-way is simply written again.
   */
  async writeStates(
    nodeId: string,
    onlineRows: readonly OnlineWrite[],
    offlineRows: ReadonlyArray<{ id: number; seen: number }>,
    touchRows: ReadonlyArray<{ id: number; seen: number }>,
  ): Promise<void> {
    if (onlineRows.length + offlineRows.length + touchRows.length === 0) return;
    const byId = <T extends { id: number }>(rows: readonly T[]) => [...rows].sort((a, b) => a.id - b.id);
    const [online, offline, touches] = [byId(onlineRows), byId(offlineRows), byId(touchRows)];
    for (const part of this.chunks(online, 5)) {
      const values = sql.join(
        part.map(
          (r) => sql`(${int(r.id)}, ${text(nodeId)}, ${text(r.addr)}, ${big(r.seen)}, ${text(r.fw)})` as RawBuilder<unknown>,
        ),
      );
      await sql`UPDATE devices SET online = 1, node_id = v.column2, remote_addr = v.column3, last_seen_at = v.column4,
        firmware_version = COALESCE(v.column5, devices.firmware_version)
        FROM (VALUES ${values}) AS v WHERE devices.id = v.column1`.execute(this.db);
    }
    for (const part of this.chunks(offline, 2)) {
      const values = sql.join(part.map((r) => sql`(${int(r.id)}, ${big(r.seen)})`));
      // Only while the row still names this node: a newer connection elsewhere wins (P-CL-4).
      await sql`UPDATE devices SET online = 0, node_id = NULL, last_seen_at = v.column2
        FROM (VALUES ${values}) AS v WHERE devices.id = v.column1 AND devices.node_id = ${nodeId}`.execute(this.db);
    }
    for (const part of this.chunks(touches, 2)) {
      const values = sql.join(part.map((r) => sql`(${int(r.id)}, ${big(r.seen)})`));
      await sql`UPDATE devices SET last_seen_at = v.column2, online = 1, node_id = ${nodeId}
        FROM (VALUES ${values}) AS v WHERE devices.id = v.column1`.execute(this.db);
    }
  }

  /** At start: whatever a previous run of this node left online is offline now. */
  async markNodeOffline(nodeId: string): Promise<number> {
    const r = await this.db
      .updateTable('devices')
      .set({ online: 0, node_id: null })
      .where('node_id', '=', nodeId)
      .where('online', '=', 1)
      .executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  /** P-LIVE-4: devices of crashed nodes, whose last_seen stopped moving, are offline. */
  async sweepStaleOnline(seenBefore: number): Promise<number> {
    // Cloud devices (no node) go offline by their own, longer silence window (features/cloud-api).
    const stale = this.db
      .selectFrom('devices')
      .select('id')
      .where('online', '=', 1)
      .where('node_id', 'is not', null)
      .where('last_seen_at', '<', seenBefore);
    // Rows a live node is writing right now (writeStates) are skipped, not waited for: two bulk
    // updates taking row locks in different orders deadlocked at 100 000 devices on PostgreSQL.
    // A skipped row is being refreshed, so not stale; if it is, the next sweep takes it.
    const r = await this.db
      .updateTable('devices')
      .set({ online: 0, node_id: null })
      .where('id', 'in', this.caps.skipLockedRows(stale))
      .where('online', '=', 1)
      .where('last_seen_at', '<', seenBefore)
      .executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  private *chunks<T>(rows: readonly T[], columns: number): Generator<T[]> {
    const size = this.caps.insertChunk(columns + 1);
    for (let i = 0; i < rows.length; i += size) yield rows.slice(i, i + size);
  }
}

// Explicit casts give every VALUES column a type on PostgreSQL; SQLite accepts them as affinities.
const int = (v: number) => sql`CAST(${v} AS integer)`;
const big = (v: number | null) => sql`CAST(${v} AS bigint)`;
const text = (v: string | null) => sql`CAST(${v} AS text)`;
