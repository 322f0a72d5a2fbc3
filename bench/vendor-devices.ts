/**
 * bench:vendor-devices — the vendor's fleet list at 1 M devices (issue 13, item 3): search by SN
 * prefix + filter by model and state, pages of 50, through the service (DevicesService.list: the
 * merged search queries, the model lookup, the views) beside the raw SQL of the same page on the same
 * database in the same run, on SQLite and on PostgreSQL. Prints each query plan (EXPLAIN) and the
 * machine. Target: p99 ≤ 30 ms per page.
 *
 *   npm run bench:vendor-devices                        # SQLite, and PostgreSQL when DATABASE_URL is set
 *   BENCH_DEVICES=200000 npm run bench:vendor-devices   # a smaller fleet
 *
 * Run it holding the bench lock: flock /tmp/bench.lock npm run bench:vendor-devices
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { SecretBox } from '../packages/server/src/adapters/secrets/secret-box.js';
import { type Db, openDatabase } from '../packages/server/src/adapters/storage/database.js';
import { loadConfig } from '../packages/server/src/config.js';
import type { DeviceState } from '../packages/server/src/features/devices/device-state.js';
import { prefixUpperBound } from '../packages/server/src/features/devices/devices.repo.js';
import { DevicesService } from '../packages/server/src/features/devices/devices.service.js';
import { ModelsService } from '../packages/server/src/features/models/models.service.js';
import { VendorsService } from '../packages/server/src/features/vendors/vendors.service.js';
import { systemClock } from '../packages/server/src/shared/clock.js';
import { Metrics } from '../packages/server/src/shared/metrics.js';
import type { Principal } from '../packages/server/src/shared/principal.js';
import { createPgSchema } from '../packages/server/src/testing/backends.js';

const N = Number(process.env.BENCH_DEVICES ?? 1_000_000);
const QUERIES = Number(process.env.BENCH_QUERIES ?? 600);
const PAGE = 50;
const TARGET_MS = 30;
const MODELS = 4;
const SYS: Principal = { kind: 'system', name: 'bench' };
const pgUrl = process.env.DATABASE_URL;

function machine(): string {
  const cpus = os.cpus();
  return [
    `CPU: ${cpus[0]?.model ?? 'unknown'} × ${cpus.length} cores`,
    `RAM: ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `Node: ${process.version}`,
    `OS: ${os.type()} ${os.release()}`,
    `load average: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  ].join('\n');
}

const STATES: DeviceState[] = ['registered', 'activated', 'bound', 'online'];
/** The raw SQL of each state, as device-state.ts states it. */
const STATE_SQL: Record<DeviceState, ReturnType<typeof sql.raw>> = {
  registered: sql.raw('owner_id IS NULL AND activated_at IS NULL'),
  activated: sql.raw('owner_id IS NULL AND activated_at IS NOT NULL'),
  bound: sql.raw('owner_id IS NOT NULL AND online = 0'),
  online: sql.raw('owner_id IS NOT NULL AND online = 1'),
};

/**
 * The fleet, made by the database itself (one INSERT … SELECT over a generated series): SN
 * BDG0000000…, models in turn, an IMEI each, and per 20 devices 12 registered, 2 activated,
 * 4 bound and 2 online; three firmware versions.
 */
async function fill(db: Db, vendorId: string, models: string[]): Promise<void> {
  const now = Date.now();
  const m = (k: number) => models[k]!;
  const cols = sql.raw(
    '(sn, sn_key, model_id, vendor_id, secret_no_enc, hw_code, state, registered_at, device_key, device_key_norm, activated_at, online, owner_type, owner_id, firmware_version)',
  );
  const body = (pad7: string, pad13: string) => sql`
    SELECT 'BDG' || ${sql.raw(pad7)}, 'bdg' || ${sql.raw(pad7)},
      CASE i % 4 WHEN 0 THEN ${m(0)} WHEN 1 THEN ${m(1)} WHEN 2 THEN ${m(2)} ELSE ${m(3)} END,
      ${vendorId}, 'v1.bench', 'hw' || ${sql.raw(pad7)}, 'registered', ${sql.lit(now)},
      '86' || ${sql.raw(pad13)}, '86' || ${sql.raw(pad13)},
      CASE WHEN i % 20 >= 12 THEN ${sql.lit(now)} END,
      CASE WHEN i % 20 >= 18 THEN 1 ELSE 0 END,
      CASE WHEN i % 20 >= 14 THEN 'org' END,
      CASE WHEN i % 20 >= 14 THEN 'org_bench' END,
      '1.0.' || (i % 3)`;
  if (db.caps.backend === 'sqlite') {
    await sql`WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < ${N - 1})
      INSERT INTO devices ${cols} ${body("substr('0000000' || i, -7)", "substr('0000000000000' || i, -13)")} FROM c`.execute(
      db.kysely,
    );
    await sql`ANALYZE`.execute(db.kysely);
  } else {
    await sql`INSERT INTO devices ${cols} ${body("lpad(i::text, 7, '0')", "lpad(i::text, 13, '0')")} FROM generate_series(0, ${N - 1}) AS i`.execute(
      db.kysely,
    );
    await sql`VACUUM ANALYZE devices`.execute(db.kysely);
  }
}

interface Case {
  prefix: string;
  modelId: string;
  state: DeviceState;
}

/** The raw SQL of the service's SN-prefix query (devices.repo.ts list), nothing around it. */
function rawPage(db: Db, vendorId: string, c: Case) {
  const lower = c.prefix.toLowerCase();
  const upper = prefixUpperBound(lower);
  return sql`SELECT * FROM devices WHERE vendor_id = ${vendorId} AND model_id = ${c.modelId} AND ${STATE_SQL[c.state]}
    AND sn_key >= ${lower} AND sn_key LIKE ${`${lower}%`} ${upper ? sql`AND sn_key < ${upper}` : sql``}
    ORDER BY sn_key LIMIT ${PAGE + 1}`.execute(db.kysely);
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

interface Result {
  backend: string;
  fillS: number;
  service: number[];
  raw: number[];
  rowsPerPage: number;
  deep: number[];
}

async function run(backend: 'sqlite' | 'postgres', dir: string): Promise<Result> {
  let db: Db;
  let drop = async () => {};
  if (backend === 'sqlite') db = openDatabase({ kind: 'sqlite', file: path.join(dir, 'bench.sqlite') });
  else {
    const s = await createPgSchema(pgUrl!);
    drop = s.drop;
    db = openDatabase({ kind: 'postgres', url: pgUrl!, schema: s.schema, poolSize: 4 });
  }
  try {
    await db.migrate();
    const config = loadConfig({
      BINDERY_DATA_DIR: dir,
      BINDERY_PUBLIC_URL: 'https://bindery.bench',
      BINDERY_LOG_LEVEL: 'silent',
    });
    const deps = { config, db, clock: systemClock, secrets: new SecretBox(randomBytes(32)), metrics: new Metrics(false) };
    const models = new ModelsService(deps);
    const devices = new DevicesService(deps, models);
    const vendor = await new VendorsService(deps).create(SYS, { name: 'Bench' });
    const modelIds: string[] = [];
    for (let k = 0; k < MODELS; k++) {
      modelIds.push((await models.create(SYS, vendor.id, { name: `Model ${k}`, product_key: `pkBench${k}` })).model.model_id);
    }
    let t = process.hrtime.bigint();
    await fill(db, vendor.id, modelIds);
    const fillS = Number(process.hrtime.bigint() - t) / 1e9;

    // SN prefixes of 4 to 6 digits (each matches 1 000 to 100 000 devices), every model and state.
    const cases: Case[] = Array.from({ length: QUERIES }, (_, k) => {
      const digits = 4 + (k % 3);
      const n = Math.floor(Math.random() * 10 ** (digits - 4 + 1));
      return {
        prefix: `BDG0${String(n).padStart(digits - 3, '0')}`.slice(0, 3 + digits),
        modelId: modelIds[k % MODELS]!,
        state: STATES[(k >> 2) % STATES.length]!,
      };
    });
    const explain = async (title: string, text: string) => {
      const plan = await sql<
        Record<string, unknown>
      >`${sql.raw(backend === 'sqlite' ? 'EXPLAIN QUERY PLAN' : 'EXPLAIN ANALYZE')} ${sql.raw(text)}`.execute(db.kysely);
      console.log(`\n[${backend}] plan of ${title}:`);
      for (const r of plan.rows) console.log(`  ${String(r.detail ?? r['QUERY PLAN'])}`);
    };
    await explain(
      'the page (prefix BDG001, model 1, state bound)',
      rawSqlText(vendor.id, { prefix: 'BDG001', modelId: modelIds[1]!, state: 'bound' }),
    );
    await explain(
      'the whole fleet filtered by state online',
      rawSqlText(vendor.id, { prefix: '', modelId: '', state: 'online' }),
    );

    const service: number[] = [];
    const raw: number[] = [];
    let rows = 0;
    // Warm up both paths (statement caches, pages in memory), then alternate them case by case.
    for (const c of cases.slice(0, 50)) {
      await devices.list(SYS, { vendorId: vendor.id, modelId: c.modelId, state: c.state, search: c.prefix, limit: PAGE });
      await rawPage(db, vendor.id, c);
    }
    for (const c of cases) {
      t = process.hrtime.bigint();
      const page = await devices.list(SYS, {
        vendorId: vendor.id,
        modelId: c.modelId,
        state: c.state,
        search: c.prefix,
        limit: PAGE,
      });
      service.push(Number(process.hrtime.bigint() - t) / 1e6);
      rows += page.devices.length;
      t = process.hrtime.bigint();
      await rawPage(db, vendor.id, c);
      raw.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    // Deep pages: follow the cursor 20 pages into the whole fleet, filtered by state only.
    const deep: number[] = [];
    for (const state of STATES) {
      let cursor: string | undefined;
      for (let p = 0; p < 20; p++) {
        t = process.hrtime.bigint();
        const page = await devices.list(SYS, { vendorId: vendor.id, state, cursor, limit: PAGE });
        deep.push(Number(process.hrtime.bigint() - t) / 1e6);
        cursor = page.next_cursor ?? undefined;
      }
    }
    return { backend, fillS, service, raw, rowsPerPage: rows / cases.length, deep };
  } finally {
    await db.close();
    await drop();
  }
}

/** The explained statement with its values inlined (EXPLAIN takes no parameters on PostgreSQL). */
function rawSqlText(vendorId: string, c: Case): string {
  const q = (s: string) => `'${s.replace(/'/g, "''")}'`;
  const lower = c.prefix.toLowerCase();
  const upper = prefixUpperBound(lower);
  const states: Record<DeviceState, string> = {
    registered: 'owner_id IS NULL AND activated_at IS NULL',
    activated: 'owner_id IS NULL AND activated_at IS NOT NULL',
    bound: 'owner_id IS NOT NULL AND online = 0',
    online: 'owner_id IS NOT NULL AND online = 1',
  };
  const model = c.modelId ? ` AND model_id = ${q(c.modelId)}` : '';
  const prefix = lower
    ? ` AND sn_key >= ${q(lower)} AND sn_key LIKE ${q(`${lower}%`)}${upper ? ` AND sn_key < ${q(upper)}` : ''}`
    : '';
  return `SELECT * FROM devices WHERE vendor_id = ${q(vendorId)}${model} AND ${states[c.state]}${prefix} ORDER BY sn_key LIMIT ${PAGE + 1}`;
}

async function main(): Promise<void> {
  console.log(`bench:vendor-devices — ${N} devices, ${QUERIES} pages of ${PAGE}\n${machine()}`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bindery-bench-fleet-'));
  const results: Result[] = [];
  try {
    results.push(await run('sqlite', dir));
    if (pgUrl) results.push(await run('postgres', dir));
    else console.log('PostgreSQL skipped: set DATABASE_URL=postgres://… to measure it');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const ms = (x: number) => `${x.toFixed(2)} ms`;
  console.log(
    '\n| backend | devices | fill | page via service p50 / p95 / p99 | raw SQL p50 / p95 / p99 | rows per page | 20 pages deep (state only) p99 | target |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    const s99 = pct(r.service, 99);
    console.log(
      `| ${r.backend} | ${N.toLocaleString('en')} | ${r.fillS.toFixed(1)} s | ${ms(pct(r.service, 50))} / ${ms(pct(r.service, 95))} / ${ms(s99)} | ${ms(pct(r.raw, 50))} / ${ms(pct(r.raw, 95))} / ${ms(pct(r.raw, 99))} | ${r.rowsPerPage.toFixed(1)} | ${ms(pct(r.deep, 99))} | ${s99 <= TARGET_MS ? `met (≤ ${TARGET_MS} ms)` : `MISSED (> ${TARGET_MS} ms)`} |`,
    );
  }
  console.log(
    `\nload average at the end: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
