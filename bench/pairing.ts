/**
 * bench:pairing — the pairing station's server side (issue 13 item 6) over real HTTP on 127.0.0.1:
 * 10 stations on one label batch, each sending one pair per second (POST
 * /api/v1/vendors/:vendorId/pairing/pairs with a vendor key: label lookup, the relation rules,
 * one transaction of update + log row + audit), on SQLite and (when DATABASE_URL is set) PostgreSQL.
 * Server time is taken inside the process, from the request's arrival to the last byte of the
 * answer; one pair in 20 is sent twice with the same idempotency key (a station's retry).
 * Target: p99 server time per pair ≤ 20 ms.
 *
 *   npm run bench:pairing                          # 60 s per backend, a 20 000-device batch
 *   BENCH_SECONDS=20 BENCH_BATCH=5000 npm run bench:pairing
 *   flock /tmp/bench.lock npm run bench:pairing
 */
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { quectelPayload, staticBindUrl } from '@bindery/protocol';
import { sql } from 'kysely';
import { SYSTEM_CLI } from '../packages/server/src/shared/principal.js';
import { postgresBackend, postgresUrl, sqliteBackend, type TestBackend } from '../packages/server/src/testing/backends.js';
import { startHarness } from '../packages/server/src/testing/harness.js';
import { imei as luhnImei } from '../packages/server/src/testing/imei.js';
import { machine } from './gateway/machine.js';
import { now } from './pool.js';

const STATIONS = Number(process.env.BENCH_STATIONS ?? 10);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 60);
const BATCH = Number(process.env.BENCH_BATCH ?? 20_000);
const TARGET_MS = 20;

function quantiles(ms: number[]): { p50: number; p95: number; p99: number; max: number } {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? Number.NaN;
  return { p50: q(0.5), p95: q(0.95), p99: q(0.99), max: s[s.length - 1] ?? Number.NaN };
}
const fmt = (q: ReturnType<typeof quantiles>) =>
  `p50 ${q.p50.toFixed(2)} ms, p95 ${q.p95.toFixed(2)} ms, p99 ${q.p99.toFixed(2)} ms, max ${q.max.toFixed(2)} ms`;

/** An IMEI with its Luhn check digit, as a station would accept it. */
const imei = (n: number) => luhnImei(n, 35_000_000_000_000);

async function runOn(backend: TestBackend): Promise<boolean> {
  const h = await startHarness(backend, { realClock: true });
  try {
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
    // Server time: from the request's arrival to the answer's last byte, for the pairing route only.
    const server: number[] = [];
    h.app.server.on('request', (req, res) => {
      if (req.method !== 'POST' || !req.url?.includes('/pairing/pairs')) return;
      const t0 = now();
      res.on('finish', () => server.push(now() - t0));
    });
    const s = h.services;
    const vendor = await s.vendors.create(SYSTEM_CLI, { name: 'Bench line' });
    const { model } = await s.models.create(SYSTEM_CLI, vendor.id, { name: 'Bench tracker', product_key: 'pkBench' });
    const key = (await s.accounts.createVendorKey(SYSTEM_CLI, vendor.id, 'bench')).token;
    let t = now();
    const batch = await s.production.createBatch(SYSTEM_CLI, model.model_id, {
      count: BATCH,
      pattern: { kind: 'counter', prefix: 'BP', width: 7 },
    });
    const devices = await h.deps.db.kysely
      .selectFrom('devices')
      .select(['sn', 'hw_code'])
      .where('batch_id', '=', batch.id)
      .orderBy('sn')
      .execute();
    console.log(`[${backend.name}] batch of ${BATCH} registered in ${((now() - t) / 1000).toFixed(1)} s`);
    // The batch's device.registered announcements run in the background: let them finish, and the
    // SQLite WAL they and the batch left be checkpointed, before anything is timed.
    await s.events.settled();
    if (backend.name === 'sqlite') await sql`PRAGMA wal_checkpoint(TRUNCATE)`.execute(h.deps.db.kysely);

    // Warm-up (JIT, statement caches): a few pairs from the end of the batch, not counted.
    for (let j = 0; j < 30; j++) {
      const d = devices[devices.length - 1 - j]!;
      const r = await fetch(`${base}/api/v1/vendors/${vendor.id}/pairing/pairs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          idempotency_key: `warm-up-${j}`,
          shift_id: 'warm-up',
          station: 'warm',
          batch_id: batch.id,
          device_key: imei(900_000 + j),
          label: d.sn,
        }),
      });
      await r.arrayBuffer();
    }
    server.length = 0;
    const client: number[] = [];
    let paired = 0;
    let replays = 0;
    const problems: string[] = [];
    const send = async (body: Record<string, unknown>) => {
      const t1 = now();
      const r = await fetch(`${base}/api/v1/vendors/${vendor.id}/pairing/pairs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const a = (await r.json()) as { outcome?: string; replayed?: boolean; reason?: string };
      client.push(now() - t1);
      if (r.status !== 200) problems.push(`HTTP ${r.status}`);
      return a;
    };
    const perStation = SECONDS;
    if (perStation * STATIONS > devices.length) throw new Error('BENCH_BATCH is too small for this run');
    // Beside the latency: the process's CPU per pair (the work, whatever the machine's load) and
    // how late the event loop ran (how long the process waited for a core).
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    const cpu0 = process.cpuUsage();
    const load0 = machine().load;
    t = now();
    await Promise.all(
      Array.from({ length: STATIONS }, async (_, st) => {
        // Staggered: the stations' scanners are not in step.
        const start = now() + (st * 1000) / STATIONS;
        for (let k = 0; k < perStation; k++) {
          const wait = start + k * 1000 - now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          const i = k * STATIONS + st;
          const d = devices[i]!;
          const label =
            i % 3 === 0 ? staticBindUrl('https://bindery.test', d.hw_code) : i % 3 === 1 ? quectelPayload('pkBench', d.sn) : d.sn;
          const body = {
            idempotency_key: `bench-${st}-${k}-${i}`,
            shift_id: 'bench',
            station: `st${st}`,
            batch_id: batch.id,
            device_key: imei(i),
            label,
            scanned_at: Date.now(),
          };
          const a = await send(body);
          if (a.outcome === 'paired') paired++;
          else problems.push(`${d.sn}: ${a.reason}`);
          if (i % 20 === 0) {
            const again = await send(body);
            if (again.outcome === 'paired' && again.replayed) replays++;
            else problems.push(`${d.sn}: replay ${JSON.stringify(again)}`);
          }
        }
      }),
    );
    const wall = (now() - t) / 1000;
    lag.disable();
    const cpu = process.cpuUsage(cpu0);
    const sq = quantiles(server);
    console.log(
      `[${backend.name}] ${STATIONS} stations × ${SECONDS} s: ${paired} pairs + ${replays} replays in ${wall.toFixed(1)} s ` +
        `(${(paired / wall).toFixed(1)} pairs/s), ${problems.length} problems${problems.length ? `: ${problems.slice(0, 5).join('; ')}` : ''}`,
    );
    console.log(`[${backend.name}] server time per pair: ${fmt(sq)}`);
    console.log(`[${backend.name}] client round trip:    ${fmt(quantiles(client))}`);
    console.log(
      `[${backend.name}] process CPU ${((cpu.user + cpu.system) / 1000 / (paired + replays)).toFixed(2)} ms per request (server and load generator); ` +
        `event-loop timer (10 ms interval included) p50 ${(lag.percentile(50) / 1e6).toFixed(1)} ms, p99 ${(lag.percentile(99) / 1e6).toFixed(1)} ms, max ${(lag.max / 1e6).toFixed(1)} ms; ` +
        `load average ${load0[0]} at the start, ${machine().load[0]} at the end`,
    );
    const ok = sq.p99 <= TARGET_MS && problems.length === 0;
    console.log(`[${backend.name}] ${ok ? 'MEETS' : 'MISSES'} p99 ≤ ${TARGET_MS} ms`);
    return ok;
  } finally {
    await h.close();
  }
}

async function main(): Promise<void> {
  console.log(machine().text);
  console.log(`stations ${STATIONS}, ${SECONDS} s each at one pair per second, batch ${BATCH}\n`);
  const only = process.env.BENCH_BACKEND; // sqlite | postgres: one backend only
  let ok = true;
  if (only !== 'postgres') ok = await runOn(sqliteBackend);
  if (postgresUrl && only !== 'sqlite') ok = (await runOn(postgresBackend)) && ok;
  else console.log('(PostgreSQL skipped: set DATABASE_URL)');
  console.log(`\nload average at the end: ${machine().load.join(' ')}`);
  process.exitCode = ok ? 0 : 1;
}

void main();
