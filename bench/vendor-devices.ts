/**
 * bench:vendor-devices — the vendor's fleet list at 1 M devices (issue 13, item 3): search by SN
 * prefix + filter by model and state, pages of 50, through the service (DevicesService.list: the
 * SN-prefix and device-key queries merged, the model lookup, the views) beside the raw SQL of the
 * same page on the same database in the same run, on SQLite and on PostgreSQL. A second baseline
 * is the page as it was asked before migration 026 (the state as conditions on owner, activation
 * and connection over (model_id, sn_key)), to show what the stored state column changes. Prints
 * each query plan (SQLite EXPLAIN QUERY PLAN, PostgreSQL EXPLAIN ANALYZE) and the machine.
 * Target: p99 ≤ 30 ms per page.
 *
 *   npm run bench:vendor-devices                        # SQLite, and PostgreSQL when DATABASE_URL is set
 *   BENCH_DEVICES=200000 npm run bench:vendor-devices   # a smaller fleet
 *   BENCH_BACKEND=postgres npm run bench:vendor-devices # one backend only
 *
 * Run it holding the bench lock: flock /tmp/bench.lock npm run bench:vendor-devices
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CompiledQuery, sql } from 'kysely';
import type { Db } from '../packages/server/src/adapters/storage/database.js';
import type { DeviceState } from '../packages/server/src/features/devices/device-state.js';
import { prefixUpperBound } from '../packages/server/src/features/devices/devices.repo.js';
import { DevicesService } from '../packages/server/src/features/devices/devices.service.js';
import { ModelsService } from '../packages/server/src/features/models/models.service.js';
import { VendorsService } from '../packages/server/src/features/vendors/vendors.service.js';
import type { Principal } from '../packages/server/src/shared/principal.js';
import { type BenchBackend, fillDevices, openBenchDb, settle } from './fleet-db.js';
import { machine, percentile } from './gateway/machine.js';

const N = Number(process.env.BENCH_DEVICES ?? 1_000_000);
const QUERIES = Number(process.env.BENCH_QUERIES ?? 600);
const PAGE = 50;
const TARGET_MS = 30;
const MODELS = 4;
const SYS: Principal = { kind: 'system', name: 'bench' };

const STATES: DeviceState[] = ['registered', 'activated', 'bound', 'online'];
/** The state as conditions on the columns each step writes: how the page asked before migration 026. */
const DERIVED: Record<DeviceState, string> = {
  registered: 'owner_id IS NULL AND activated_at IS NULL',
  activated: 'owner_id IS NULL AND activated_at IS NOT NULL',
  bound: 'owner_id IS NOT NULL AND online = 0',
  online: 'owner_id IS NOT NULL AND online = 1',
};

interface Case {
  prefix: string;
  modelId: string;
  state: DeviceState;
}

/** A statement's text and its parameters; `inline` puts the values in the text (for EXPLAIN, which takes none on PostgreSQL). */
function statement(backend: BenchBackend, inline: boolean) {
  const parameters: string[] = [];
  const v = (s: string) => {
    if (inline) return `'${s.replace(/'/g, "''")}'`;
    parameters.push(s);
    return backend === 'sqlite' ? '?' : `$${parameters.length}`;
  };
  return { v, parameters };
}

/**
 * The SN-prefix query of the page as devices.repo.ts list asks it. `derived`: the state as it was
 * asked before 026; `column`: device_key_norm for the search's device-key query.
 */
function pageQuery(
  backend: BenchBackend,
  vendorId: string,
  c: Case,
  o: { derived?: boolean; column?: string; inline?: boolean } = {},
) {
  const { v, parameters } = statement(backend, o.inline ?? false);
  const col = o.column ?? 'sn_key';
  const lower = c.prefix.toLowerCase();
  const upper = prefixUpperBound(lower);
  let text = `SELECT * FROM devices WHERE vendor_id = ${v(vendorId)}`;
  if (c.modelId) text += ` AND model_id = ${v(c.modelId)}`;
  text += ` AND ${o.derived ? DERIVED[c.state] : `fleet_state = ${v(c.state)}`}`;
  if (lower) {
    text += ` AND ${col} >= ${v(lower)} AND ${col} LIKE ${v(`${lower}%`)}`;
    if (upper) text += ` AND ${col} < ${v(upper)}`;
  }
  text += ` ORDER BY sn_key LIMIT ${PAGE + 1}`;
  return CompiledQuery.raw(text, parameters);
}

const rawPage = (db: Db, query: CompiledQuery) => db.kysely.executeQuery<{ sn: string }>(query);

interface Result {
  backend: BenchBackend;
  fillS: number;
  service: number[];
  raw: number[];
  before: number[];
  rowsPerPage: number;
  deep: number[];
}

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

async function run(backend: BenchBackend, dir: string): Promise<Result> {
  const b = await openBenchDb(backend, dir);
  const { db, deps } = b;
  try {
    const models = new ModelsService(deps);
    const devices = new DevicesService(deps, models);
    const vendor = await new VendorsService(deps).create(SYS, { name: 'Bench' });
    const modelIds: string[] = [];
    for (let k = 0; k < MODELS; k++) {
      modelIds.push((await models.create(SYS, vendor.id, { name: `Model ${k}`, product_key: `pkBench${k}` })).model.model_id);
    }
    let t = process.hrtime.bigint();
    await fillDevices(db, { vendorId: vendor.id, modelIds, count: N, prefix: 'BDG', inUse: true });
    await settle(db);
    const fillS = ms(t) / 1000;
    console.log(
      `\n[${backend}] ${N.toLocaleString('en')} devices in ${fillS.toFixed(1)} s; load average ${os.loadavg()[0]!.toFixed(2)}`,
    );

    // SN prefixes of 4 to 6 digits (each matches 1 000 to 100 000 devices), every model and state.
    // Per 20 devices the models take turns, so models 0 and 1 have no online devices and model 0 no
    // bound ones after the first…: some pages are empty, the case a scan of the range paid most for.
    const cases: Case[] = Array.from({ length: QUERIES }, (_, k) => {
      const digits = 4 + (k % 3);
      const n = Math.floor(Math.random() * 10 ** (digits - 4 + 1));
      return {
        prefix: `BDG0${String(n).padStart(digits - 3, '0')}`.slice(0, 3 + digits),
        modelId: modelIds[k % MODELS]!,
        state: STATES[(k >> 2) % STATES.length]!,
      };
    });
    const explain = async (title: string, c: Case, o: { derived?: boolean; column?: string } = {}) => {
      const how = backend === 'sqlite' ? 'EXPLAIN QUERY PLAN' : 'EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)';
      const text = pageQuery(backend, vendor.id, c, { ...o, inline: true }).sql;
      const plan = await sql<Record<string, unknown>>`${sql.raw(how)} ${sql.raw(text)}`.execute(db.kysely);
      console.log(`[${backend}] plan of ${title}:`);
      for (const r of plan.rows) console.log(`    ${String(r.detail ?? r['QUERY PLAN'])}`);
    };
    const empty: Case = { prefix: 'BDG0', modelId: modelIds[0]!, state: 'online' };
    const full: Case = { prefix: 'BDG01', modelId: modelIds[3]!, state: 'bound' };
    await explain('a page (prefix BDG01, model 3, bound)', full);
    await explain('an empty page (prefix BDG0, model 0, online: none)', empty);
    await explain('the same empty page before 026', empty, { derived: true });
    await explain("the search's device-key query (prefix bdg0)", empty, { column: 'device_key_norm' });
    await explain('the whole fleet, online only', { prefix: '', modelId: '', state: 'online' });

    const list = (c: Case) =>
      devices.list(SYS, { vendorId: vendor.id, modelId: c.modelId, state: c.state, search: c.prefix, limit: PAGE });
    // Warm up every path (statement caches, pages in memory), then alternate them case by case.
    for (const c of cases.slice(0, 50)) {
      await list(c);
      await rawPage(db, pageQuery(backend, vendor.id, c));
      await rawPage(db, pageQuery(backend, vendor.id, c, { derived: true }));
    }
    const service: number[] = [];
    const rawMs: number[] = [];
    const before: number[] = [];
    let rows = 0;
    for (const c of cases) {
      t = process.hrtime.bigint();
      const page = await list(c);
      service.push(ms(t));
      rows += page.devices.length;
      t = process.hrtime.bigint();
      const r = await rawPage(db, pageQuery(backend, vendor.id, c));
      rawMs.push(ms(t));
      t = process.hrtime.bigint();
      const old = await rawPage(db, pageQuery(backend, vendor.id, c, { derived: true }));
      before.push(ms(t));
      // The service's page is the raw page (less its look-ahead row), and the same as before 026.
      const sns = (xs: Array<{ sn: string }>) =>
        xs
          .slice(0, PAGE)
          .map((x) => x.sn)
          .join();
      if (sns(page.devices) !== sns(r.rows) || sns(page.devices) !== sns(old.rows)) {
        throw new Error(`pages differ for ${JSON.stringify(c)}`);
      }
    }
    // Deep pages: follow the cursor 20 pages into the whole fleet, filtered by state only.
    const deep: number[] = [];
    for (const state of STATES) {
      let cursor: string | undefined;
      for (let p = 0; p < 20; p++) {
        t = process.hrtime.bigint();
        const page = await devices.list(SYS, { vendorId: vendor.id, state, cursor, limit: PAGE });
        deep.push(ms(t));
        cursor = page.next_cursor ?? undefined;
      }
    }
    return { backend, fillS, service, raw: rawMs, before, rowsPerPage: rows / cases.length, deep };
  } finally {
    await b.close();
  }
}

function pcts(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  return [50, 95, 99].map((p) => percentile(s, p).toFixed(2)).join(' / ');
}

async function main(): Promise<void> {
  console.log(`bench:vendor-devices — ${N} devices, ${QUERIES} pages of ${PAGE}\n${machine().text}`);
  const only = process.env.BENCH_BACKEND;
  const backends: BenchBackend[] = [];
  if (only !== 'postgres') backends.push('sqlite');
  if (only !== 'sqlite') {
    if (process.env.DATABASE_URL) backends.push('postgres');
    else console.log('PostgreSQL skipped: set DATABASE_URL=postgres://… to measure it');
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bindery-bench-fleet-'));
  const results: Result[] = [];
  try {
    for (const backend of backends) results.push(await run(backend, dir));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(
    '\n| backend | devices | fill | page via service p50 / p95 / p99 (ms) | raw SQL of the page p50 / p95 / p99 | the page before 026 p50 / p95 / p99 | rows per page | 20 pages deep (state only) p99 | target |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    const s99 = percentile(
      [...r.service].sort((a, b) => a - b),
      99,
    );
    console.log(
      `| ${r.backend} | ${N.toLocaleString('en')} | ${r.fillS.toFixed(1)} s | ${pcts(r.service)} | ${pcts(r.raw)} | ${pcts(r.before)} | ${r.rowsPerPage.toFixed(1)} | ${percentile(
        [...r.deep].sort((a, b) => a - b),
        99,
      ).toFixed(2)} ms | ${s99 <= TARGET_MS ? `met (≤ ${TARGET_MS} ms)` : `MISSED (> ${TARGET_MS} ms)`} |`,
    );
  }
  console.log(`\nload average at the end: ${machine().load.join(' ')}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
