/**
 * bench:campaign-page — issue 14's campaign page target alone (p99 ≤ 50 ms at 100 000 executions),
 * without the live fleet of bench:campaign-100k: one campaign, BENCH_EXECUTIONS (100 000)
 * executions inserted directly in a finished campaign's mix of states, then BENCH_LOADS (500)
 * sequential `GET /api/v1/campaigns/{id}` over loopback HTTP, on SQLite and (when DATABASE_URL is
 * set) PostgreSQL. Two ways in the same run, alternating blocks of 100 so load drifts hit both:
 * - count: the engine's counts read as before migration 028 (COUNT … GROUP BY state over the
 *   campaign's executions on every load; the engine's method swapped for that query);
 * - stored: the counts kept by every transition (campaign_counts, 028), as the app now reads them.
 * On PostgreSQL it runs once as inserted and once after VACUUM ANALYZE (autovacuum's state).
 *
 *   npm run bench:campaign-page
 *   DATABASE_URL=postgres://… REDIS_URL=redis://… npm run bench:campaign-page
 */
import type { AddressInfo } from 'node:net';
import { sql } from 'kysely';
import { countExecutions } from '../packages/server/src/features/campaigns/campaigns.counts.js';
import { SYSTEM_CLI } from '../packages/server/src/shared/principal.js';
import { postgresBackend, postgresUrl, sqliteBackend, type TestBackend } from '../packages/server/src/testing/backends.js';
import { startHarness } from '../packages/server/src/testing/harness.js';
import { machine, percentile } from './gateway/machine.js';

const EXECUTIONS = Number(process.env.BENCH_EXECUTIONS ?? 100_000);
const LOADS = Number(process.env.BENCH_LOADS ?? 500);
const BLOCK = 100;
const TARGET_MS = 50;
/** A finished campaign's mix (succeeded, failed, timed_out, skipped, cancelled, queued). */
const MIX: Array<[string, number]> = [
  ['succeeded', 0.7],
  ['failed', 0.05],
  ['timed_out', 0.05],
  ['skipped', 0.15],
  ['cancelled', 0.04],
  ['queued', 0.01],
];

function stats(lat: number[]): { text: string; p99: number } {
  const s = [...lat].sort((a, b) => a - b);
  const p99 = percentile(s, 99);
  return {
    text: `p50 ${percentile(s, 50).toFixed(2)} ms, p99 ${p99.toFixed(2)} ms, max ${s.at(-1)?.toFixed(2)} ms (n ${s.length})`,
    p99,
  };
}

async function runOn(backend: TestBackend): Promise<boolean> {
  const h = await startHarness(backend, { realClock: true });
  try {
    const s = h.services;
    const db = h.deps.db.kysely;
    const vendor = await s.vendors.create(SYSTEM_CLI, { name: 'Campaign page bench' });
    const { model } = await s.models.create(SYSTEM_CLI, vendor.id, {
      name: 'Bench',
      product_key: 'pkCPB',
      binding_mode: 'owner_only',
      require_check_char: false,
    });
    await s.devices.register(SYSTEM_CLI, model.model_id, 'CPB0000001');
    await db.updateTable('devices').set({ firmware_version: '1.0', online: 1 }).where('sn', '=', 'CPB0000001').execute();
    const fw = await s.firmware.publishUrl(SYSTEM_CLI, model.model_id, {
      version: '2.0',
      download_url: 'https://files.example.com/cpb-2.0.bin',
      md5sum: 'd41d8cd98f00b204e9800998ecf8427e',
      size: 1024,
      make_current: false,
    });
    const c = await s.campaigns.create(SYSTEM_CLI, vendor.id, {
      name: 'Page bench',
      model_id: model.model_id,
      firmware_id: fw.id,
      stages: { canary_count: 1, rate_per_minute: 60, factor: 2, stage_size: 10 },
      thresholds: { min_executions: 100, failure_pct: null, timeout_pct: null, did_not_come_back_pct: null },
    });
    const t0 = performance.now();
    const now = Date.now();
    const extra = EXECUTIONS - c.total;
    const chunk = h.deps.db.caps.insertChunk(14);
    const stateOf = (i: number) => {
      let x = (i % 1000) / 1000;
      for (const [state, share] of MIX) {
        if (x < share) return state;
        x -= share;
      }
      return 'succeeded';
    };
    for (let i = 0; i < extra; i += chunk) {
      await db
        .insertInto('campaign_executions')
        .values(
          Array.from({ length: Math.min(chunk, extra - i) }, (_, j) => {
            const state = stateOf(i + j);
            return {
              campaign_id: c.id,
              sn_key: `zzpage${String(i + j).padStart(7, '0')}`,
              sn: `ZZPAGE${String(i + j).padStart(7, '0')}`,
              device_id: 0,
              seq: c.total + i + j,
              stage: 1,
              state,
              detail: null,
              from_version: '1.0',
              attempts: 1,
              notified_at: now,
              deadline_at: now + 600_000,
              finished_at: state === 'queued' ? null : now,
              updated_at: now,
            };
          }),
        )
        .execute();
    }
    // The stored counts as the transitions would have left them (the rows were inserted behind the engine's back).
    for (const [state, n] of Object.entries(await countExecutions(db, c.id))) {
      await db.updateTable('campaign_counts').set({ n }).where('campaign_id', '=', c.id).where('state', '=', state).execute();
    }
    console.log(
      `${backend.name}: ${EXECUTIONS.toLocaleString('en')} executions in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );

    await h.app.listen({ port: 0, host: '127.0.0.1' });
    const url = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}/api/v1/campaigns/${c.id}`;
    const headers = { authorization: `Bearer ${h.operatorToken}` };
    const engine = s.campaigns.engine;
    const stored = engine.counts.bind(engine);
    const counted = (id: string) => countExecutions(db, id);
    const load = async () => {
      const t = performance.now();
      const r = await fetch(url, { headers });
      const body = (await r.json()) as { campaign: { counts: Record<string, number> } };
      if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
      return { ms: performance.now() - t, counts: body.campaign.counts };
    };
    let ok = true;
    for (const vacuumed of backend.name === 'sqlite' ? [false] : [false, true]) {
      if (vacuumed) await sql`VACUUM ANALYZE campaign_executions`.execute(db);
      const lat = { count: [] as number[], stored: [] as number[] };
      const seen = { count: '', stored: '' };
      for (const mode of ['count', 'stored'] as const) {
        engine.counts = mode === 'count' ? counted : stored;
        for (let i = 0; i < 20; i++) await load(); // warm-up
      }
      for (let done = 0; done < LOADS; done += BLOCK) {
        for (const mode of ['count', 'stored'] as const) {
          engine.counts = mode === 'count' ? counted : stored;
          for (let i = 0; i < BLOCK; i++) {
            const r = await load();
            lat[mode].push(r.ms);
            seen[mode] = JSON.stringify(r.counts);
          }
        }
      }
      engine.counts = stored;
      // Same answer either way: the shape and the figures.
      if (seen.count !== seen.stored) throw new Error(`answers differ: ${seen.count} vs ${seen.stored}`);
      const a = stats(lat.count);
      const b = stats(lat.stored);
      const label = `${backend.name}${vacuumed ? ', after VACUUM ANALYZE' : backend.name === 'sqlite' ? '' : ', as inserted'}`;
      console.log(`  campaign page (${label}), ${LOADS} loads each, load average ${machine().load.join(' ')}:`);
      console.log(`    count  (before 028): ${a.text}`);
      console.log(`    stored (028)       : ${b.text} — target p99 ≤ ${TARGET_MS} ms ${b.p99 <= TARGET_MS ? 'PASS' : 'FAIL'}`);
      console.log(
        `    p50 ratio count/stored ${(
          percentile(
            [...lat.count].sort((x, y) => x - y),
            50,
          ) /
            percentile(
              [...lat.stored].sort((x, y) => x - y),
              50,
            )
        ).toFixed(1)}×`,
      );
      ok = ok && b.p99 <= TARGET_MS;
    }
    return ok;
  } finally {
    await h.close();
  }
}

console.log(`# bench:campaign-page — GET of one campaign at ${EXECUTIONS.toLocaleString('en')} executions\n${machine().text}\n`);
let ok = await runOn(sqliteBackend);
if (postgresUrl) ok = (await runOn(postgresBackend)) && ok;
console.log(`\ntarget p99 ≤ ${TARGET_MS} ms: ${ok ? 'PASS' : 'FAIL'}\nload average at the end: ${machine().load.join(' ')}`);
process.exit(ok ? 0 : 1);
