import { type Kysely, sql } from 'kysely';
import type { Database } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import type { DomainEvents } from '../../shared/domain-events.js';
import { isOperator, type Principal, requireVendor } from '../../shared/principal.js';

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
/** How often a process samples online counts and versions; the hour's row keeps the latest. */
export const FLEET_SAMPLE_MS = 5 * 60_000;
/** Ranges up to this many days chart hourly samples; longer ones one point per day. */
const HOURLY_UP_TO_DAYS = 14;
/** Error codes charted one by one; the rest are summed as "other". */
const TOP_CODES = 8;
/**
 * The model_id of a scope's all-models rows: written beside each model's, so a whole-fleet chart
 * reads one row per point instead of summing every model's.
 */
export const ALL_MODELS = '*';

export interface FleetStatsQuery {
  days?: number;
  model_id?: string;
}

export interface FleetStats {
  scope: 'vendor' | 'org';
  days: number;
  model_id: string | null;
  /** When the versions and the last online point were sampled; null before the first sample. */
  sampled_at: string | null;
  /** Hourly points (≤ 14 days) or one per day (the day's highest sample). */
  online: Array<{ at: string; devices: number; online: number }>;
  versions: Array<{ version: string | null; devices: number; online: number }>;
  /** Every day of the range, oldest first, zero-filled. */
  daily: Array<{ day: string; binds: number; unbinds: number; errors: number }>;
  /** The most frequent codes; `code` null sums the others. `per_day` follows `daily`. */
  error_codes: Array<{ code: number | null; total: number; per_day: number[] }>;
}

type Delta = { binds?: number; unbinds?: number; errors?: number };

const dayOf = (t: number) => Math.floor(t / DAY_MS);
const dayIso = (d: number) => new Date(d * DAY_MS).toISOString().slice(0, 10);

/**
 * The fleet dashboard's rollups (issue 14, item 6): binds, unbinds and error reports per scope,
 * model and UTC day, counted from domain events; online counts and firmware versions sampled from
 * the devices table by a periodic job. Dashboards read only these tables, so they stay fast at
 * 1 M devices. Scopes: `v:<vendorId>`, `o:<orgId>` (devices an organisation owns).
 */
export class FleetStatsService {
  constructor(private readonly deps: Pick<Deps, 'db' | 'clock'>) {}

  private get db(): Kysely<Database> {
    return this.deps.db.kysely;
  }

  /** Counts ownership changes and error reports as they happen (on the process that made them). */
  attach(events: DomainEvents): void {
    events.on('device.bound', (e) => this.bump(scopesOf(e.vendorId, e.ownerType, e.ownerId), e.modelId, e.at, { binds: 1 }));
    events.on('device.unbound', (e) => this.bump(scopesOf(e.vendorId, e.ownerType, e.ownerId), e.modelId, e.at, { unbinds: 1 }));
    events.on('device.error_report', async (e) => {
      const r = await this.db
        .selectFrom('device_error_reports as r')
        .innerJoin('devices as d', 'd.id', 'r.device_id')
        .select(['r.errcode', 'd.owner_type', 'd.owner_id'])
        .where('r.id', '=', Number(e.reportId))
        .executeTakeFirst();
      if (!r) return;
      await this.recordError(scopesOf(e.vendorId, r.owner_type, r.owner_id), e.modelId, e.at, r.errcode);
    });
  }

  /** Adds to a day's counters; an upsert, so every process may count at once. */
  async bump(scopes: string[], modelId: string, at: number, d: Delta): Promise<void> {
    const day = dayOf(at);
    for (const scope of scopes) {
      for (const model_id of [modelId, ALL_MODELS])
        await this.db
          .insertInto('fleet_daily')
          .values({ scope, day, model_id, binds: d.binds ?? 0, unbinds: d.unbinds ?? 0, errors: d.errors ?? 0 })
          .onConflict((oc) =>
            oc.columns(['scope', 'day', 'model_id']).doUpdateSet({
              binds: sql`fleet_daily.binds + excluded.binds`,
              unbinds: sql`fleet_daily.unbinds + excluded.unbinds`,
              errors: sql`fleet_daily.errors + excluded.errors`,
            }),
          )
          .execute();
    }
  }

  async recordError(scopes: string[], modelId: string, at: number, code: number): Promise<void> {
    await this.bump(scopes, modelId, at, { errors: 1 });
    const day = dayOf(at);
    for (const scope of scopes) {
      for (const model_id of [modelId, ALL_MODELS])
        await this.db
          .insertInto('fleet_daily_errors')
          .values({ scope, day, model_id, code, n: 1 })
          .onConflict((oc) =>
            oc.columns(['scope', 'day', 'model_id', 'code']).doUpdateSet({ n: sql`fleet_daily_errors.n + excluded.n` }),
          )
          .execute();
    }
  }

  /**
   * Samples devices and online devices per scope and model (into this hour's row) and the firmware
   * versions (replacing the last sample). Skipped when another process sampled within `minGapMs`.
   * One grouped scan of devices; a few seconds at 1 M devices, every few minutes.
   */
  async sample(minGapMs = 0): Promise<boolean> {
    const now = this.deps.clock.now();
    if (minGapMs > 0) {
      const last = await this.db
        .selectFrom('fleet_versions')
        .select((eb) => eb.fn.max('sampled_at').as('t'))
        .executeTakeFirst();
      if (last?.t != null && now - Number(last.t) < minGapMs) return false;
    }
    const rows = await this.db
      .selectFrom('devices')
      .select((eb) => [
        'vendor_id',
        'model_id',
        'owner_type',
        'owner_id',
        'firmware_version',
        eb.fn.countAll<string | number>().as('n'),
        eb.fn.sum<string | number | null>('online').as('on'),
      ])
      .groupBy(['vendor_id', 'model_id', 'owner_type', 'owner_id', 'firmware_version'])
      .execute();
    const online = new Map<string, { scope: string; model_id: string; devices: number; online: number }>();
    const versions = new Map<string, { scope: string; model_id: string; version: string; devices: number; online: number }>();
    for (const r of rows) {
      const n = Number(r.n);
      const on = Number(r.on ?? 0);
      for (const [scope, model_id] of scopesOf(r.vendor_id, r.owner_type, r.owner_id).flatMap((sc) => [
        [sc, r.model_id],
        [sc, ALL_MODELS],
      ])) {
        const k = `${scope}\n${model_id}`;
        const o = online.get(k) ?? { scope: scope!, model_id: model_id!, devices: 0, online: 0 };
        o.devices += n;
        o.online += on;
        online.set(k, o);
        const version = r.firmware_version ?? '';
        const vk = `${k}\n${version}`;
        const v = versions.get(vk) ?? { scope: scope!, model_id: model_id!, version, devices: 0, online: 0 };
        v.devices += n;
        v.online += on;
        versions.set(vk, v);
      }
    }
    const at = Math.floor(now / HOUR_MS) * HOUR_MS;
    const chunk = this.deps.db.caps.insertChunk(6);
    await this.db.transaction().execute(async (trx) => {
      const points = [...online.values()].map((o) => ({ ...o, at }));
      for (let i = 0; i < points.length; i += chunk) {
        await trx
          .insertInto('fleet_online')
          .values(points.slice(i, i + chunk))
          .onConflict((oc) =>
            oc.columns(['scope', 'at', 'model_id']).doUpdateSet({
              devices: sql`excluded.devices`,
              online: sql`excluded.online`,
            }),
          )
          .execute();
      }
      // The day's point of long charts: the highest of its hourly rows, refolded now that this
      // hour's changed (fleet_online_at keeps this to the day's rows).
      const dayStart = Math.floor(at / DAY_MS) * DAY_MS;
      await trx
        .insertInto('fleet_online_daily')
        .columns(['scope', 'model_id', 'day', 'devices', 'online'])
        .expression((eb) =>
          eb
            .selectFrom('fleet_online')
            .select((e) => [
              'scope',
              'model_id',
              sql<number>`${sql.lit(dayOf(at))}`.as('day'),
              e.fn.max('devices').as('devices'),
              e.fn.max('online').as('online'),
            ])
            .where('at', '>=', dayStart)
            .where('at', '<', dayStart + DAY_MS)
            .groupBy(['scope', 'model_id']),
        )
        .onConflict((oc) =>
          oc.columns(['scope', 'model_id', 'day']).doUpdateSet({
            devices: sql`excluded.devices`,
            online: sql`excluded.online`,
          }),
        )
        .execute();
      await trx.deleteFrom('fleet_versions').execute();
      const vs = [...versions.values()].map((v) => ({ ...v, sampled_at: now }));
      for (let i = 0; i < vs.length; i += chunk)
        await trx
          .insertInto('fleet_versions')
          .values(vs.slice(i, i + chunk))
          .execute();
    });
    return true;
  }

  async vendorStats(actor: Principal, vendorId: string, q: FleetStatsQuery): Promise<FleetStats> {
    requireVendor(actor, vendorId, 'read');
    return this.read('vendor', `v:${vendorId}`, q);
  }

  /** For an organisation's super admins (the rollups cover the whole organisation) and operators. */
  async orgStats(actor: Principal, orgId: string, q: FleetStatsQuery): Promise<FleetStats> {
    const org = await this.db.selectFrom('organisations').select('id').where('id', '=', orgId).executeTakeFirst();
    if (!org) fail('ORG_NOT_FOUND');
    if (!isOperator(actor)) {
      const m =
        actor.kind === 'user'
          ? await this.db
              .selectFrom('org_members')
              .select('role')
              .where('org_id', '=', orgId)
              .where('user_id', '=', actor.userId)
              .executeTakeFirst()
          : undefined;
      if (m?.role !== 'super_admin') fail('FORBIDDEN', "Only the organisation's super admins see its fleet dashboard");
    }
    return this.read('org', `o:${orgId}`, q);
  }

  private async read(kind: 'vendor' | 'org', scope: string, q: FleetStatsQuery): Promise<FleetStats> {
    const days = Math.min(366, Math.max(1, Math.floor(q.days ?? 30)));
    const modelId = q.model_id ?? null;
    const now = this.deps.clock.now();
    const today = dayOf(now);
    const firstDay = today - days + 1;

    // (scope, model_id, …) is each table's key, so every read is one index range and needs no grouping.
    const model = modelId ?? ALL_MODELS;
    const [onlineRows, versionRows, dailyRows, errorRows] = await Promise.all([
      days <= HOURLY_UP_TO_DAYS
        ? this.db
            .selectFrom('fleet_online')
            .select(['at', 'devices', 'online'])
            .where('scope', '=', scope)
            .where('model_id', '=', model)
            .where('at', '>=', firstDay * DAY_MS)
            .orderBy('at')
            .execute()
        : // One point per day (its highest hourly sample), folded by the sampler: 365 rows, not 8 760.
          this.db
            .selectFrom('fleet_online_daily')
            .select(['day', 'devices', 'online'])
            .where('scope', '=', scope)
            .where('model_id', '=', model)
            .where('day', '>=', firstDay)
            .orderBy('day')
            .execute()
            .then((rows) => rows.map((r) => ({ at: Number(r.day) * DAY_MS, devices: r.devices, online: r.online }))),
      this.db
        .selectFrom('fleet_versions')
        .select(['version', 'devices', 'online', 'sampled_at'])
        .where('scope', '=', scope)
        .where('model_id', '=', model)
        .execute(),
      this.db
        .selectFrom('fleet_daily')
        .select(['day', 'binds', 'unbinds', 'errors'])
        .where('scope', '=', scope)
        .where('model_id', '=', model)
        .where('day', '>=', firstDay)
        .execute(),
      // One row per code, its days packed as "day:n,…": a year of 12 codes is 12 rows, not 4 380
      // (row objects were most of a long range's time on both drivers; bench:dashboard).
      this.db
        .selectFrom('fleet_daily_errors')
        .select(['code', sql<string>`string_agg(CAST(day AS text) || ':' || CAST(n AS text), ',')`.as('days')])
        .where('scope', '=', scope)
        .where('model_id', '=', model)
        .where('day', '>=', firstDay)
        .groupBy('code')
        .execute(),
    ]);

    const online = onlineRows.map((r) => ({
      at: new Date(Number(r.at)).toISOString(),
      devices: Number(r.devices),
      online: Number(r.online),
    }));

    const idx = (d: number) => d - firstDay;
    const daily = Array.from({ length: days }, (_, i) => ({ day: dayIso(firstDay + i), binds: 0, unbinds: 0, errors: 0 }));
    for (const r of dailyRows) {
      const x = daily[idx(Number(r.day))];
      if (!x) continue;
      x.binds = Number(r.binds);
      x.unbinds = Number(r.unbinds);
      x.errors = Number(r.errors);
    }
    const codes = new Map<number, number[]>();
    for (const r of errorRows) {
      const arr = new Array<number>(days).fill(0);
      for (const point of r.days.split(',')) {
        const colon = point.indexOf(':');
        const i = idx(Number(point.slice(0, colon)));
        if (i >= 0 && i < days) arr[i] = (arr[i] ?? 0) + Number(point.slice(colon + 1));
      }
      codes.set(Number(r.code), arr);
    }
    const ranked = [...codes]
      .map(([code, per_day]) => ({ code: code as number | null, per_day, total: per_day.reduce((a, b) => a + b, 0) }))
      .sort((a, b) => b.total - a.total || Number(a.code) - Number(b.code));
    const error_codes = ranked.slice(0, TOP_CODES);
    if (ranked.length > TOP_CODES) {
      const other = new Array<number>(days).fill(0);
      for (const c of ranked.slice(TOP_CODES)) {
        c.per_day.forEach((n, i) => {
          other[i] = (other[i] ?? 0) + n;
        });
      }
      error_codes.push({ code: null, per_day: other, total: other.reduce((a, b) => a + b, 0) });
    }

    const sampled = versionRows.reduce((t, r) => Math.max(t, Number(r.sampled_at ?? 0)), 0);
    return {
      scope: kind,
      days,
      model_id: modelId,
      sampled_at: sampled > 0 ? new Date(sampled).toISOString() : null,
      online,
      versions: versionRows
        .map((r) => ({ version: r.version === '' ? null : r.version, devices: Number(r.devices), online: Number(r.online) }))
        .sort((a, b) => b.devices - a.devices || String(a.version).localeCompare(String(b.version))),
      daily,
      error_codes,
    };
  }
}

/** The rollup scopes a device counts in: its vendor's, and its owner's when an organisation owns it. */
export function scopesOf(vendorId: string, ownerType: string | null, ownerId: string | null): string[] {
  return ownerType === 'org' && ownerId ? [`v:${vendorId}`, `o:${ownerId}`] : [`v:${vendorId}`];
}

/** The sampling loop of a running server (main.ts); every process runs it, the gap check skips repeats. */
export function startFleetSampler(
  s: FleetStatsService,
  logger: { error(o: object, m: string): void },
  everyMs = FLEET_SAMPLE_MS,
): { stop(): Promise<void> } {
  let running: Promise<unknown> | null = null;
  const tick = () => {
    if (running) return;
    running = s
      .sample(everyMs / 2)
      .catch((err) => logger.error({ err }, 'fleet sampling failed; retrying on the next tick'))
      .finally(() => {
        running = null;
      });
  };
  const timer = setInterval(tick, everyMs);
  timer.unref();
  tick();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
