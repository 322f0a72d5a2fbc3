/**
 * bench:merchant — one merchant with 1 000 000 devices (and two sub-merchants among them), on
 * SQLite and on PostgreSQL (issue 6). Measures, through the full app on 127.0.0.1 (request
 * signature verified, nonce and limits checked, reply signed):
 *   - the deep page GET /v3/iotmanage/devices?offset=999900&limit=100, p50/p99 over 500 requests
 *     (target p99 ≤ 20 ms), beside the raw SQL of the same page in the same run: the seek the app
 *     runs, and the plain ORDER BY … OFFSET query it replaces;
 *   - signed list requests per second (random offsets, limit 100) from a client on the same
 *     machine, in a worker thread with keep-alive connections.
 *
 *   npm run bench:merchant                         # SQLite, and PostgreSQL when DATABASE_URL is set
 *   BENCH_DEVICES=100000 npm run bench:merchant    # a smaller run
 *   BENCH_BACKENDS=postgres npm run bench:merchant # one backend only
 *
 * Run it holding the bench lock: flock /tmp/bench.lock npm run bench:merchant
 */
import { createPublicKey, createSign, createVerify, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { sql } from 'kysely';
import { MemoryEventBus } from '../packages/server/src/adapters/bus/memory-bus.js';
import { FlexibleRateLimiter } from '../packages/server/src/adapters/ratelimit/flexible-limiter.js';
import { SecretBox } from '../packages/server/src/adapters/secrets/secret-box.js';
import { type Db, openDatabase } from '../packages/server/src/adapters/storage/database.js';
import { buildApp } from '../packages/server/src/app.js';
import { loadConfig } from '../packages/server/src/config.js';
import type { Deps } from '../packages/server/src/deps.js';
import type { NewDevice } from '../packages/server/src/features/devices/devices.repo.js';
import { makeMerchantKey } from '../packages/server/src/features/merchant/merchant.fixtures.js';
import { MerchantService } from '../packages/server/src/features/merchant/merchant.service.js';
import { buildServices } from '../packages/server/src/services.js';
import { systemClock } from '../packages/server/src/shared/clock.js';
import { createLogger } from '../packages/server/src/shared/logger.js';
import { Metrics } from '../packages/server/src/shared/metrics.js';
import type { Principal } from '../packages/server/src/shared/principal.js';
import { createPgSchema } from '../packages/server/src/testing/backends.js';

const DEVICES = Number(process.env.BENCH_DEVICES ?? 1_000_000);
const LATENCY_REQUESTS = 500;
const RAW_RUNS = 500;
const NAIVE_RUNS = 30;
const RPS_SECONDS = Number(process.env.BENCH_RPS_SECONDS ?? 10);
const TARGET_P99_MS = 20;
const MCHID = '1900000001';
const SYS: Principal = { kind: 'system', name: 'bench' };
const pgUrl = process.env.DATABASE_URL;

function machine(): string {
  const cpus = os.cpus();
  return [
    `CPU: ${cpus[0]?.model ?? 'unknown'} × ${cpus.length} cores`,
    `RAM: ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `Node: ${process.version}`,
    `OS: ${os.type()} ${os.release()}`,
    `load average: ${loadavg()}`,
  ].join('\n');
}
const loadavg = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

function percentiles(xs: number[]): { p50: number; p99: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
  return { p50: at(0.5), p99: at(0.99), max: s[s.length - 1]! };
}

/** One signed GET, as a WeChat Pay v3 client signs it (§A1). */
function authorization(url: string, key: { privateKeyPem: string; serial: string }): string {
  const ts = String(Math.floor(Date.now() / 1000));
  const nonce = randomBytes(16).toString('hex');
  const signature = createSign('RSA-SHA256').update(`GET\n${url}\n${ts}\n${nonce}\n\n`).sign(key.privateKeyPem, 'base64');
  return `WECHATPAY2-SHA256-RSA2048 mchid="${MCHID}",nonce_str="${nonce}",timestamp="${ts}",serial_no="${key.serial}",signature="${signature}"`;
}

function get(
  agent: Agent,
  port: number,
  url: string,
  auth: string,
): Promise<{ status: number; body: string; headers: Record<string, string> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: url, agent, headers: { authorization: auth, accept: 'application/json' } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers as Record<string, string> }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** The client for the throughput run: plain JS in a worker thread so it has its own core. */
const CLIENT_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const { createSign, randomBytes } = require('node:crypto');
const http = require('node:http');
const { port, privateKeyPem, serial, mchid, total, seconds, concurrency } = workerData;
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
// Sign ahead of time, so the run measures the server, not the client's RSA.
const pool = [];
const n = Math.max(1000, Math.round(seconds * 1500));
for (let i = 0; i < n; i++) {
  const offset = Math.floor(Math.random() * Math.max(1, total / 100)) * 100;
  const url = '/v3/iotmanage/devices?offset=' + offset + '&limit=100';
  const ts = String(Math.floor(Date.now() / 1000));
  const nonce = randomBytes(16).toString('hex');
  const sig = createSign('RSA-SHA256').update('GET\\n' + url + '\\n' + ts + '\\n' + nonce + '\\n\\n').sign(privateKeyPem, 'base64');
  pool.push({ url, auth: 'WECHATPAY2-SHA256-RSA2048 mchid="' + mchid + '",nonce_str="' + nonce + '",timestamp="' + ts + '",serial_no="' + serial + '",signature="' + sig + '"' });
}
let next = 0, ok = 0, bad = 0;
const t0 = Date.now();
const deadline = t0 + seconds * 1000;
function one() {
  return new Promise((resolve) => {
    const item = pool[next++];
    const req = http.request({ host: '127.0.0.1', port, path: item.url, agent, headers: { authorization: item.auth } }, (res) => {
      res.resume();
      res.on('end', () => { if (res.statusCode === 200) ok++; else bad++; resolve(); });
    });
    req.on('error', () => { bad++; resolve(); });
    req.end();
  });
}
async function lane() { while (Date.now() < deadline && next < pool.length) await one(); }
Promise.all(Array.from({ length: concurrency }, lane)).then(() => {
  parentPort.postMessage({ ok, bad, elapsed: (Date.now() - t0) / 1000, presigned: pool.length });
});
`;

function throughput(port: number, key: { privateKeyPem: string; serial: string }, total: number) {
  return new Promise<{ ok: number; bad: number; elapsed: number; presigned: number }>((resolve, reject) => {
    const w = new Worker(CLIENT_SOURCE, {
      eval: true,
      workerData: {
        port,
        privateKeyPem: key.privateKeyPem,
        serial: key.serial,
        mchid: MCHID,
        total,
        seconds: RPS_SECONDS,
        concurrency: 16,
      },
    });
    w.once('message', resolve);
    w.once('error', reject);
  });
}

async function openBackend(kind: 'sqlite' | 'postgres'): Promise<{ db: Db; cleanup: () => Promise<void> }> {
  if (kind === 'sqlite') {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bindery-bench-merchant-'));
    const db = openDatabase({ kind: 'sqlite', file: path.join(dir, 'bench.sqlite') });
    await db.migrate();
    return {
      db,
      cleanup: async () => {
        await db.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const { schema, drop } = await createPgSchema(pgUrl!);
  const db = openDatabase({ kind: 'postgres', url: pgUrl!, schema, poolSize: 10 });
  await db.migrate();
  return {
    db,
    cleanup: async () => {
      await db.close();
      await drop();
    },
  };
}

interface Result {
  backend: string;
  insertS: number;
  reindexS: number;
  page: { p50: number; p99: number; max: number };
  seek: { p50: number; p99: number; max: number };
  naive: { p50: number; p99: number; max: number };
  rps: number;
  rpsBad: number;
  loadBefore: string;
  loadAfter: string;
}

async function run(kind: 'sqlite' | 'postgres'): Promise<Result> {
  console.log(`\n== ${kind}: ${DEVICES.toLocaleString('en')} devices`);
  const { db, cleanup } = await openBackend(kind);
  const config = loadConfig({
    BINDERY_LOG_LEVEL: 'silent',
    BINDERY_DATA_DIR: os.tmpdir(),
    BINDERY_PUBLIC_URL: 'http://127.0.0.1',
  });
  const deps: Deps = {
    config,
    db,
    secrets: new SecretBox(randomBytes(32)),
    bus: new MemoryEventBus(),
    limiter: FlexibleRateLimiter.memory(),
    logger: createLogger(config),
    clock: systemClock,
    metrics: new Metrics(false),
  };
  const services = buildServices(deps);
  // The documented limits (20/s per client) would cap the run itself; the limiter is still consulted on every request.
  services.merchant = new MerchantService(deps, { limits: { perClientPerSecond: 1e9, perMerchantPerDay: 1e9 } });
  const { app } = await buildApp(deps, services);
  try {
    const vendor = await services.vendors.create(SYS, { name: 'Bench vendor' });
    const model = await services.models.create(SYS, vendor.id, {
      name: 'Face Terminal 5510R',
      category_code: '3',
      class_code: '101',
    });
    const m = await services.merchant.createMerchant(SYS, { name: 'Bench merchant', mchid: MCHID, merchant_shortname: '某公司' });
    const subs: string[] = [];
    for (let i = 1; i <= 2; i++) {
      const v = await services.merchant.addSubMerchant(SYS, MCHID, {
        name: `Branch ${i}`,
        sub_mchid: `${MCHID}${i}`,
        sub_merchant_shortname: `分店${i}`,
      });
      subs.push(v.sub_merchants.find((s) => s.sub_mchid === `${MCHID}${i}`)!.org_id);
    }
    const owners = [m.org_id, m.org_id, m.org_id, m.org_id, m.org_id, m.org_id, m.org_id, m.org_id, subs[0]!, subs[1]!];

    // Bulk insert: the devices already bound (owners set), in transactions of 50 000.
    let t0 = process.hrtime.bigint();
    const repo = services.devices.repo;
    for (let start = 0; start < DEVICES; start += 50_000) {
      const rows: NewDevice[] = [];
      for (let i = start; i < Math.min(DEVICES, start + 50_000); i++) {
        const r = services.devices.newDeviceRow(model.model, `BENCH${String(i).padStart(8, '0')}`, 1_700_000_000_000, {
          camera_sn: `CAM${i}`,
          app_scene_code: '1',
          operating_system: 'ANDROID',
        });
        // Only the columns with values: fewer parameters per statement.
        rows.push({
          sn: r.sn,
          sn_key: r.sn_key,
          model_id: r.model_id,
          vendor_id: r.vendor_id,
          secret_no_enc: r.secret_no_enc,
          hw_code: r.hw_code,
          state: i % 3 === 0 ? 'active' : 'registered',
          online: 0,
          registered_at: r.registered_at,
          camera_sn: r.camera_sn,
          app_scene_code: r.app_scene_code,
          operating_system: r.operating_system,
          activated_at: i % 3 === 0 ? 1_700_000_000_000 + i : null,
          owner_type: 'org',
          owner_id: owners[i % owners.length]!,
          bound_at: 1_700_000_000_000,
        });
      }
      await db.kysely.transaction().execute((trx) => repo.with(trx).insertMany(rows));
      process.stdout.write(`\r  inserted ${Math.min(DEVICES, start + 50_000).toLocaleString('en')}`);
    }
    const insertS = seconds(t0);
    console.log(`\n  insert: ${insertS.toFixed(1)} s`);

    // The fleet order for pre-existing ownership: the operator's reindex.
    t0 = process.hrtime.bigint();
    const re = await services.merchant.reindexFleet(SYS, MCHID);
    const reindexS = seconds(t0);
    console.log(
      `  reindex: ${reindexS.toFixed(1)} s (${re.added.toLocaleString('en')} joined, total ${re.total.toLocaleString('en')})`,
    );
    if (re.total !== DEVICES) throw new Error(`fleet total ${re.total} ≠ ${DEVICES}`);
    await sql`ANALYZE`.execute(db.kysely);

    const key = makeMerchantKey(MCHID);
    await services.merchant.addKey(SYS, MCHID, { certificate_pem: key.certificatePem });
    const platform = await services.merchant.platformKey(SYS);
    await app.listen({ port: 0, host: '127.0.0.1' });
    const port = (app.server.address() as AddressInfo).port;
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });

    const offset = Math.max(0, DEVICES - 100);
    const url = `/v3/iotmanage/devices?offset=${offset}&limit=100`;
    // Presigned, so the timings are the server's (plus loopback), not the client's RSA.
    const auths = Array.from({ length: LATENCY_REQUESTS + 50 }, () => authorization(url, key));
    const replies: Array<{ status: number; body: string; headers: Record<string, string> }> = [];
    const times: number[] = [];
    for (let i = 0; i < auths.length; i++) {
      const t = process.hrtime.bigint();
      const r = await get(agent, port, url, auths[i]!);
      if (i >= 50) {
        times.push(ms(t));
        replies.push(r);
      }
    }
    // Every reply was a full, correctly signed page.
    const pub = createPublicKey(platform.public_key_pem);
    const expectedFirst = `BENCH${String(offset).padStart(8, '0')}`;
    for (const r of replies) {
      if (r.status !== 200) throw new Error(`status ${r.status}: ${r.body.slice(0, 300)}`);
      const ok = createVerify('RSA-SHA256')
        .update(`${r.headers['wechatpay-timestamp']}\n${r.headers['wechatpay-nonce']}\n${r.body}\n`)
        .verify(pub, r.headers['wechatpay-signature']!, 'base64');
      if (!ok) throw new Error('a reply signature did not verify');
    }
    const sample = JSON.parse(replies[0]!.body) as { data: Array<{ device_sn: string }>; total_count: number };
    if (
      sample.data.length !== Math.min(100, DEVICES) ||
      sample.data[0]!.device_sn !== expectedFirst ||
      sample.total_count !== DEVICES
    ) {
      throw new Error(`unexpected page: ${replies[0]!.body.slice(0, 300)}`);
    }
    agent.destroy();
    const page = percentiles(times);
    console.log(
      `  page offset=${offset} via app: p50 ${page.p50.toFixed(2)} ms, p99 ${page.p99.toFixed(2)} ms, max ${page.max.toFixed(2)} ms`,
    );

    // The same page as raw SQL: the seek the app runs (block counts already known), then plain OFFSET.
    const index = await db.kysely
      .selectFrom('merchant_fleet_blocks')
      .select(['block_no', 'count'])
      .where('merchant_org_id', '=', m.org_id)
      .orderBy('block_no')
      .execute();
    let before = 0;
    let fromSeq = 0;
    let skip = 0;
    for (const b of index) {
      if (before + Number(b.count) > offset) {
        fromSeq = Number(b.block_no) * 1024;
        skip = offset - before;
        break;
      }
      before += Number(b.count);
    }
    const seekTimes: number[] = [];
    for (let i = 0; i < RAW_RUNS; i++) {
      const t = process.hrtime.bigint();
      const rows = await services.merchant.repo.fleetPage(m.org_id, fromSeq, skip, 100);
      seekTimes.push(ms(t));
      if (rows[0]?.sn !== expectedFirst) throw new Error('raw seek returned another page');
    }
    const seek = percentiles(seekTimes);
    console.log(`  raw SQL seek (same page): p50 ${seek.p50.toFixed(2)} ms, p99 ${seek.p99.toFixed(2)} ms`);
    const naiveTimes: number[] = [];
    for (let i = 0; i < NAIVE_RUNS; i++) {
      const t = process.hrtime.bigint();
      const rows = await db.kysely
        .selectFrom('devices as d')
        .innerJoin('models as mo', 'mo.model_id', 'd.model_id')
        .leftJoin('organisations as o', 'o.id', 'd.owner_id')
        .select(['d.sn', 'd.camera_sn', 'd.activated_at', 'mo.category_code', 'mo.name', 'o.mchid'])
        .where('d.merchant_org_id', '=', m.org_id)
        .orderBy('d.merchant_seq')
        .limit(100)
        .offset(offset)
        .execute();
      naiveTimes.push(ms(t));
      if (rows[0]?.sn !== expectedFirst) throw new Error('raw OFFSET returned another page');
    }
    const naive = percentiles(naiveTimes);
    console.log(`  raw SQL plain OFFSET (same page): p50 ${naive.p50.toFixed(2)} ms, p99 ${naive.p99.toFixed(2)} ms`);

    const loadBefore = loadavg();
    const tp = await throughput(port, key, DEVICES);
    const loadAfter = loadavg();
    const rps = tp.ok / tp.elapsed;
    console.log(
      `  signed list requests: ${rps.toFixed(0)} req/s (${tp.ok} ok, ${tp.bad} not ok, ${tp.elapsed.toFixed(1)} s, 16 connections, random offsets, limit 100)`,
    );
    return { backend: kind, insertS, reindexS, page, seek, naive, rps, rpsBad: tp.bad, loadBefore, loadAfter };
  } finally {
    await app.close();
    await deps.limiter.close();
    await cleanup();
  }
}

async function main(): Promise<void> {
  console.log(`bench:merchant — ${DEVICES.toLocaleString('en')} devices for one merchant\n${machine()}`);
  // BENCH_BACKENDS=postgres (or sqlite) re-measures one backend alone.
  const only = process.env.BENCH_BACKENDS?.split(',');
  const results: Result[] = [];
  if (!only || only.includes('sqlite')) results.push(await run('sqlite'));
  if (pgUrl && (!only || only.includes('postgres'))) results.push(await run('postgres'));
  else console.log('\n(PostgreSQL skipped: set DATABASE_URL to include it)');
  console.log('\nsummary');
  for (const r of results) {
    const verdict = r.page.p99 <= TARGET_P99_MS ? 'meets' : 'MISSES';
    console.log(
      `  ${r.backend}: page p50 ${r.page.p50.toFixed(2)} / p99 ${r.page.p99.toFixed(2)} ms (${verdict} p99 ≤ ${TARGET_P99_MS} ms); ` +
        `raw seek p50 ${r.seek.p50.toFixed(2)} / p99 ${r.seek.p99.toFixed(2)} ms; plain OFFSET p50 ${r.naive.p50.toFixed(1)} / p99 ${r.naive.p99.toFixed(1)} ms; ` +
        `${r.rps.toFixed(0)} signed list req/s (load ${r.loadBefore} → ${r.loadAfter}); insert ${r.insertS.toFixed(0)} s, reindex ${r.reindexS.toFixed(1)} s`,
    );
  }
  console.log(`load average at the end: ${loadavg()}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
