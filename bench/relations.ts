/**
 * bench:relations — a 100 000-row SN↔DeviceKey relation import (csv; issue 2 §8), against the
 * baseline of a raw multi-row update of the same rows in one transaction (no parsing, no
 * validation), on SQLite and on PostgreSQL, in the same run. Target: the import ≤ 20 s.
 *
 *   npm run bench:relations                      # SQLite, and PostgreSQL when DATABASE_URL is set
 *   BENCH_ROWS=20000 npm run bench:relations     # a smaller run
 *
 * Run it holding the bench lock: flock /tmp/bench.lock npm run bench:relations
 */
import { once } from 'node:events';
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { snKey } from '@bindery/protocol';
import ExcelJS from 'exceljs';
import { sql } from 'kysely';
import type { Db } from '../packages/server/src/adapters/storage/database.js';
import { ModelsService } from '../packages/server/src/features/models/models.service.js';
import { RelationsService } from '../packages/server/src/features/relations/relations.service.js';
import { VendorsService } from '../packages/server/src/features/vendors/vendors.service.js';
import type { Principal } from '../packages/server/src/shared/principal.js';
import { type BenchBackend, benchSn, fillDevices, openBenchDb, settle } from './fleet-db.js';
import { machine } from './gateway/machine.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 100_000);
const TARGET_S = 20;
const SYS: Principal = { kind: 'system', name: 'bench' };

const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

const sn = (i: number) => benchSn('REL', i);
const imei = (i: number) => String(860_000_000_000_000 + i);

async function writeCsv(file: string, pk: string): Promise<void> {
  const out = createWriteStream(file);
  out.write('\uFEFF*设备DeviceKey,*产品ProductKey,设备SN,设备名称,证书指纹\r\n');
  for (let i = 0; i < ROWS; i++) {
    if (!out.write(`${imei(i)},${pk},${sn(i)},Till ${i},\r\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

async function writeXlsx(file: string, pk: string): Promise<void> {
  const wb = new ExcelJS.stream.xlsx.WorkbookWriter({ filename: file, useSharedStrings: false });
  const ws = wb.addWorksheet('设备导入');
  ws.addRow(['*设备DeviceKey', '*产品ProductKey', '设备SN', '设备名称', '证书指纹']).commit();
  for (let i = 0; i < ROWS; i++) ws.addRow([imei(i), pk, sn(i), `Till ${i}`]).commit();
  ws.commit();
  await wb.commit();
}

interface Result {
  backend: string;
  register: number;
  baseline: number;
  importCsv: number;
  dryRun: number;
  reimport: number;
  importXlsx: number;
}

async function unpairAll(db: Db): Promise<void> {
  await db.kysely
    .updateTable('devices')
    .set({ device_key: null, device_key_norm: null, device_name: null, paired_at: null })
    .execute();
}

async function pairedCount(db: Db): Promise<number> {
  const r = await db.kysely
    .selectFrom('devices')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('device_key_norm', 'is not', null)
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

async function run(backend: BenchBackend, dir: string): Promise<Result> {
  const b = await openBenchDb(backend, dir);
  const { db, deps } = b;
  try {
    const vendors = new VendorsService(deps);
    const models = new ModelsService(deps);
    const relations = new RelationsService(deps);

    const vendor = await vendors.create(SYS, { name: 'Bench' });
    const { model } = await models.create(SYS, vendor.id, { name: 'Cellular', product_key: 'pkBench' });

    // 1. Register ROWS devices in bulk (setup, timed for reference).
    let t = process.hrtime.bigint();
    await fillDevices(db, { vendorId: vendor.id, modelIds: [model.model_id], count: ROWS, prefix: 'REL' });
    const register = seconds(t);

    const csvFile = path.join(dir, 'relations.csv');
    const xlsxFile = path.join(dir, 'relations.xlsx');
    await writeCsv(csvFile, model.product_key);
    await writeXlsx(xlsxFile, model.product_key);

    await settle(db);
    // 2. Baseline: the same pairs as raw multi-row updates by SN in one transaction, nothing checked.
    t = process.hrtime.bigint();
    await db.kysely.transaction().execute(async (trx) => {
      const size = db.caps.insertChunk(4);
      for (let i = 0; i < ROWS; i += size) {
        const values = [];
        for (let j = i; j < Math.min(ROWS, i + size); j++) {
          values.push(sql`(${snKey(sn(j))}, ${imei(j)}, ${imei(j)}, ${`Till ${j}`})`);
        }
        await sql`UPDATE devices SET device_key = v.column2, device_key_norm = v.column3, device_name = v.column4
          FROM (VALUES ${sql.join(values)}) AS v WHERE devices.sn_key = v.column1`.execute(trx);
      }
    });
    const baseline = seconds(t);
    if ((await pairedCount(db)) !== ROWS) throw new Error('baseline did not pair every row');
    await unpairAll(db);
    await settle(db);

    // 3. Dry run of the csv: read and validate everything, write nothing.
    t = process.hrtime.bigint();
    const dry = await relations.importFile(SYS, vendor.id, createReadStream(csvFile), { format: 'csv', dryRun: true });
    const dryRun = seconds(t);
    if (dry.paired !== ROWS || dry.error_count !== 0) throw new Error(`dry run: ${JSON.stringify(dry).slice(0, 300)}`);

    // 4. The import itself.
    await settle(db);
    t = process.hrtime.bigint();
    const report = await relations.importFile(SYS, vendor.id, createReadStream(csvFile), {
      format: 'csv',
      fileName: 'relations.csv',
    });
    const importCsv = seconds(t);
    if (!report.imported || report.paired !== ROWS) throw new Error(`import: ${JSON.stringify(report).slice(0, 300)}`);
    if ((await pairedCount(db)) !== ROWS) throw new Error('import did not pair every row');

    // 5. The same file again: everything unchanged, nothing written.
    await settle(db);
    t = process.hrtime.bigint();
    const again = await relations.importFile(SYS, vendor.id, createReadStream(csvFile), { format: 'csv' });
    const reimport = seconds(t);
    if (again.unchanged !== ROWS) throw new Error(`re-import: ${JSON.stringify(again).slice(0, 300)}`);

    // 6. The same rows as xlsx (exceljs streaming reader).
    await unpairAll(db);
    await settle(db);
    t = process.hrtime.bigint();
    const x = await relations.importFile(SYS, vendor.id, createReadStream(xlsxFile), { format: 'xlsx' });
    const importXlsx = seconds(t);
    if (x.paired !== ROWS) throw new Error(`xlsx import: ${JSON.stringify(x).slice(0, 300)}`);

    return { backend, register, baseline, importCsv, dryRun, reimport, importXlsx };
  } finally {
    await b.close();
  }
}

async function main(): Promise<void> {
  console.log(`bench:relations — ${ROWS} rows\n${machine().text}\n`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bindery-bench-relations-'));
  const results: Result[] = [];
  try {
    results.push(await run('sqlite', dir));
    if (process.env.DATABASE_URL) results.push(await run('postgres', dir));
    else console.log('PostgreSQL skipped: set DATABASE_URL=postgres://… to measure it');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const f = (s: number) => `${s.toFixed(2)} s`;
  console.log(
    '| backend | register (INSERT … SELECT) | baseline raw update | import csv | dry run csv | re-import (unchanged) | import xlsx | import ÷ baseline | target |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    console.log(
      `| ${r.backend} | ${f(r.register)} | ${f(r.baseline)} | ${f(r.importCsv)} | ${f(r.dryRun)} | ${f(r.reimport)} | ${f(r.importXlsx)} | ${(r.importCsv / r.baseline).toFixed(1)}× | ${r.importCsv <= TARGET_S ? `met (≤ ${TARGET_S} s)` : `MISSED (> ${TARGET_S} s)`} |`,
    );
  }
  console.log(`\nload average at the end: ${machine().load.join(' ')}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
