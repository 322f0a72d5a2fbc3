/**
 * bench:dashboard — issue 14's dashboard target: the fleet dashboard's queries over a year of
 * rollups for a fleet of 1 M devices (one vendor, 20 models, BENCH_ORGS organisations owning
 * them), on SQLite and (when DATABASE_URL is set) PostgreSQL. Rollups are written as the sampler and
 * the event counters write them (hourly online points per scope and model plus the all-models row,
 * and the sampler's daily fold of them, daily counters, error codes, versions); then GET …/fleet-stats is timed in-process (the service,
 * as the route calls it) for 7, 30, 90 and 365 days, vendor-wide, one model, and one organisation.
 * Target: p99 ≤ 100 ms per dashboard load.
 *
 *   npm run bench:dashboard
 *   BENCH_ORGS=200 BENCH_LOADS=200 npm run bench:dashboard
 */
import { type Principal, SYSTEM_CLI } from '../packages/server/src/shared/principal.js';
import { postgresBackend, postgresUrl, sqliteBackend, type TestBackend } from '../packages/server/src/testing/backends.js';
import { startHarness } from '../packages/server/src/testing/harness.js';
import { machine, percentile } from './gateway/machine.js';
import { now } from './pool.js';

const DEVICES = 1_000_000;
const MODELS = 20;
/** Organisations with a year of hourly history (each owns devices of 2 models). */
const ORGS = Number(process.env.BENCH_ORGS ?? 20);
const LOADS = Number(process.env.BENCH_LOADS ?? 100);
const TARGET_MS = 100;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const CODES = [600010, 600020, 600030, 600040, 600050, 600060, 600070, 600080, 600090, 600100, 600110, 600120];

async function runOn(backend: TestBackend): Promise<boolean> {
  const h = await startHarness(backend, { realClock: true });
  try {
    const s = h.services;
    const db = h.deps.db.kysely;
    const vendor = await s.vendors.create(SYSTEM_CLI, { name: 'Dashboard bench' });
    const models = Array.from({ length: MODELS }, (_, i) => `mdl_bench_${i}`);
    const orgs = Array.from({ length: ORGS }, (_, i) => `org_bench_${i}`);
    const end = Math.floor(Date.now() / HOUR) * HOUR;
    const hours = 365 * 24;
    const firstDay = Math.floor((end - 364 * DAY) / DAY);
    const perModel = DEVICES / MODELS;
    const chunk = h.deps.db.caps.insertChunk(6);
    let rows = 0;
    const insert = async (
      table: 'fleet_online' | 'fleet_online_daily' | 'fleet_daily' | 'fleet_daily_errors',
      batch: Array<Record<string, unknown>>,
    ) => {
      for (let i = 0; i < batch.length; i += chunk) {
        await db
          .insertInto(table)
          .values(batch.slice(i, i + chunk) as never)
          .execute();
      }
      rows += batch.length;
    };
    const t0 = now();
    // Scopes: the vendor (every model) and each organisation (two models, a share of the fleet).
    const scopes: Array<{ scope: string; models: string[]; devices: number }> = [
      { scope: `v:${vendor.id}`, models, devices: perModel },
      ...orgs.map((o, i) => ({ scope: `o:${o}`, models: [models[i % MODELS]!, models[(i + 7) % MODELS]!], devices: 2_000 })),
    ];
    for (const sc of scopes) {
      const online: Array<Record<string, unknown>> = [];
      for (let hr = hours - 1; hr >= 0; hr--) {
        const at = end - hr * HOUR;
        const wave = 0.55 + 0.25 * Math.sin((hr / 24) * 2 * Math.PI);
        let all = 0;
        for (const m of sc.models) {
          const on = Math.round(sc.devices * wave);
          all += on;
          online.push({ scope: sc.scope, at, model_id: m, devices: sc.devices, online: on });
        }
        online.push({ scope: sc.scope, at, model_id: '*', devices: sc.devices * sc.models.length, online: all });
      }
      await insert('fleet_online', online);
      // The sampler's daily fold of those hours (each day's highest hourly row), as it keeps it.
      const days = new Map<string, { scope: string; model_id: string; day: number; devices: number; online: number }>();
      for (const p of online as Array<{ scope: string; at: number; model_id: string; devices: number; online: number }>) {
        const day = Math.floor(p.at / DAY);
        const k = `${p.model_id}\n${day}`;
        const d = days.get(k);
        if (!d) days.set(k, { scope: p.scope, model_id: p.model_id, day, devices: p.devices, online: p.online });
        else {
          d.devices = Math.max(d.devices, p.devices);
          d.online = Math.max(d.online, p.online);
        }
      }
      await insert('fleet_online_daily', [...days.values()]);
      const daily: Array<Record<string, unknown>> = [];
      const errs: Array<Record<string, unknown>> = [];
      for (let d = 0; d < 365; d++) {
        for (const m of [...sc.models, '*']) {
          const k = m === '*' ? sc.models.length : 1;
          daily.push({ scope: sc.scope, day: firstDay + d, model_id: m, binds: 300 * k, unbinds: 40 * k, errors: 90 * k });
          for (const c of CODES) errs.push({ scope: sc.scope, day: firstDay + d, model_id: m, code: c, n: 7 * k });
        }
      }
      await insert('fleet_daily', daily);
      await insert('fleet_daily_errors', errs);
      await db
        .insertInto('fleet_versions')
        .values(
          [...sc.models, '*'].flatMap((m) =>
            ['1.0.0', '1.1.0', '1.2.0', '2.0.0'].map((version) => ({
              scope: sc.scope,
              model_id: m,
              version,
              devices: 1000,
              online: 600,
              sampled_at: end,
            })),
          ),
        )
        .execute();
    }
    console.log(
      `${backend.name}: ${rows.toLocaleString('en')} rollup rows (${scopes.length} scopes, a year) in ${((now() - t0) / 1000).toFixed(1)} s`,
    );

    // As a vendor key and an operator reach the service through the route (the gate resolved them).
    const vendorActor: Principal = { kind: 'vendor_key', vendorId: vendor.id, tokenId: 'bench' };
    const operator: Principal = SYSTEM_CLI;
    const cases: Array<{ name: string; run: () => Promise<unknown> }> = [];
    for (const days of [7, 30, 90, 365]) {
      cases.push({
        name: `vendor, all models, ${days} d`,
        run: () => s.fleetStats.vendorStats(vendorActor, vendor.id, { days }),
      });
    }
    cases.push({
      name: 'vendor, one model, 365 d',
      run: () => s.fleetStats.vendorStats(vendorActor, vendor.id, { days: 365, model_id: models[3] }),
    });
    cases.push({ name: 'organisation, 365 d', run: () => s.fleetStats.orgStats(operator, orgs[1]!, { days: 365 }) });
    // orgStats checks the organisation exists.
    await db
      .insertInto('organisations')
      .values({ id: orgs[1]!, name: 'Bench org', parent_id: null, mchid: null, merchant_shortname: null, created_at: end })
      .execute();

    let ok = true;
    for (const c of cases) {
      for (let i = 0; i < 5; i++) await c.run();
      const lat: number[] = [];
      for (let i = 0; i < LOADS; i++) {
        const t = now();
        await c.run();
        lat.push(now() - t);
      }
      lat.sort((a, b) => a - b);
      const p99 = percentile(lat, 99);
      ok &&= p99 <= TARGET_MS;
      console.log(
        `${backend.name.padEnd(8)} ${c.name.padEnd(28)} p50 ${percentile(lat, 50).toFixed(1)} ms  p99 ${p99.toFixed(1)} ms  max ${lat.at(-1)!.toFixed(1)} ms ${p99 <= TARGET_MS ? 'ok' : 'OVER'}`,
      );
    }
    return ok;
  } finally {
    await h.close();
  }
}

console.log(
  `# bench:dashboard — ${DEVICES.toLocaleString('en')} devices, ${MODELS} models, ${ORGS} organisations, a year of rollups; ${LOADS} loads per case\n${machine().text}\n`,
);
let ok = await runOn(sqliteBackend);
if (postgresUrl) ok = (await runOn(postgresBackend)) && ok;
else console.log('(PostgreSQL skipped: set DATABASE_URL)');
console.log(`\ntarget p99 ≤ ${TARGET_MS} ms: ${ok ? 'PASS' : 'FAIL'}\nload average at the end: ${machine().load.join(' ')}`);
process.exit(ok ? 0 : 1);
