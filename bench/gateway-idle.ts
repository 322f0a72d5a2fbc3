import { FleetCluster } from '@bindery/sdk/sim/cluster.js';
import type { FleetDeviceSpec } from '@bindery/sdk/sim/fleet.js';
import { kb, loopbacks, machine, mb, sleep } from './gateway/machine.js';
import { provision } from './gateway/provision.js';
import { startServer } from './gateway/server.js';

/**
 * Idle subscribed devices in ONE server process: memory per connection of the Bindery gateway
 * against a bare `ws` server measured in the same run. The server's RSS is read from
 * /proc/<pid>/status after forced GC, before any connection and again once every device is
 * connected (bare) or subscribed (Bindery, on SQLite, devices pre-bound so `active` returns a
 * secret). The load comes from separate processes over loopback source addresses.
 *
 * BENCH_DEVICES (default 19 000: this machine's 20 000 open-file limit per process, minus what
 * the server needs for itself), BENCH_LOADGEN_PROCS (default 2), BENCH_IN_FLIGHT (per load
 * process, default 150), BENCH_HEAP_SNAPSHOT=<file> (write the Bindery server's heap at the end).
 */

const N = Number(process.env.BENCH_DEVICES ?? 19_000);
const PROCS = Number(process.env.BENCH_LOADGEN_PROCS ?? 2);
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 150);
const TARGET_RATIO = 1.5;
const WARMUP = Math.min(500, Math.ceil(N / 10));
const SETTLE_SEC = Number(process.env.BENCH_SETTLE_SEC ?? 90);
/**
 * When to read memory after the last device settled: at once, and after the transient per-device
 * state of the connection burst has expired (the 60 s register rate-limit windows and the 10 min
 * replay cache of signed requests, P-RATE-3 / P-SIG-5): the steady state of an idle fleet.
 */
const CHECKPOINTS = [5, Number(process.env.BENCH_IDLE_SEC ?? 660)];
const DEADLINE_MS = 45 * 60_000;
setTimeout(() => {
  console.error(`gateway-idle: still running after ${DEADLINE_MS / 60_000} min; giving up`);
  process.exit(2);
}, DEADLINE_MS).unref();

interface Point {
  /** Seconds after the last device settled. */
  at: number;
  after: number;
  perConn: number;
  /** V8 heapUsed growth per connection (part of the RSS growth). */
  heapPerConn: number;
  /** Growth of memory outside the V8 heap that V8 knows of (Buffers), per connection. */
  externalPerConn: number;
  /** RSS growth split into anonymous and file-backed/shared (SQLite's mapped WAL index is the latter), per connection. */
  anonPerConn: number;
  filePerConn: number;
}

interface Result {
  label: string;
  before: number;
  /** Right after the connection burst, and once idle long enough for every transient cache to expire. */
  points: Point[];
  connectSec: number;
  /** Connections lost (and re-made) on the way, flow restarts. */
  lost: number;
  restarts: number;
  rate: number;
  loadgenRss: number[];
}

async function measure(
  label: string,
  server: Awaited<ReturnType<typeof startServer>>,
  devices: FleetDeviceSpec[],
  mode: 'raw' | 'sdk',
  addrs: string[],
): Promise<Result> {
  // Warm-up: a few hundred devices through the whole flow and away again, so start-up garbage,
  // compiled code and pools already sit in "before" and only what stays per connection counts.
  const warm = await FleetCluster.start({
    url: server.url,
    devices: devices.slice(0, WARMUP),
    mode,
    processes: 1,
    localAddresses: addrs,
    maxInFlight: IN_FLIGHT,
  });
  warm.startDevices();
  await warm.waitUntil((c) => c.subscribed === WARMUP, 5 * 60_000);
  await warm.stop();
  // As long as the idle checkpoint: the process sheds start-up memory slowly (V8's memory reducer).
  await sleep(SETTLE_SEC * 1000);
  await server.memory();
  const m0 = await server.memory();
  const before = m0.rss[0]!;
  const fleet = await FleetCluster.start({
    url: server.url,
    devices,
    mode,
    heartbeatMs: 30_000,
    processes: PROCS,
    localAddresses: addrs,
    maxInFlight: IN_FLIGHT,
  });
  try {
    const t0 = performance.now();
    fleet.startDevices();
    const done = (c: { subscribed: number }) => c.subscribed === N;
    await fleet.waitUntil(done, 15 * 60_000);
    const connectSec = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    const points: Point[] = [];
    for (const at of CHECKPOINTS) {
      await sleep(Math.max(0, at * 1000 - (performance.now() - t1)));
      const m1 = await server.memory();
      const p: Point = {
        at,
        after: m1.rss[0]!,
        perConn: (m1.rss[0]! - before) / N,
        heapPerConn: (m1.heap[0]! - m0.heap[0]!) / N,
        externalPerConn: (m1.external[0]! - m0.external[0]!) / N,
        anonPerConn: (m1.parts[0]!.anon - m0.parts[0]!.anon) / N,
        filePerConn: (m1.parts[0]!.file + m1.parts[0]!.shmem - m0.parts[0]!.file - m0.parts[0]!.shmem) / N,
      };
      points.push(p);
      console.log(
        `  ${label} +${at} s: server RSS ${mb(before)} → ${mb(p.after)} = ${kb(p.perConn)} per connection (anonymous ${kb(p.anonPerConn)}, file/shared ${kb(p.filePerConn)}; ` +
          `of it V8 heap ${kb(p.heapPerConn)}, external ${kb(p.externalPerConn)})`,
      );
      const stats = await server.stats();
      const held = stats.reduce((a, s) => a + s.connections, 0);
      if (held !== N) throw new Error(`${label}: the server holds ${held} connections, expected ${N}`);
    }
    if (process.env.BENCH_HEAP_SNAPSHOT && mode === 'sdk') {
      console.log(`  heap snapshot: ${await server.snapshot(process.env.BENCH_HEAP_SNAPSHOT)}`);
    }
    const final = fleet.counts();
    if (final.subscribed !== N) throw new Error(`${label}: fleet ended with ${JSON.stringify(final)}`);
    const r: Result = {
      label,
      before,
      points,
      connectSec,
      lost: final.lost,
      restarts: final.restarts,
      rate: N / connectSec,
      loadgenRss: fleet.rssBytes(),
    };
    console.log(
      `${label}: ${N} ${mode === 'raw' ? 'connected' : 'subscribed'} in ${connectSec.toFixed(1)} s (${r.rate.toFixed(0)}/s); ` +
        `connections lost on the way ${r.lost}, flow restarts ${r.restarts}`,
    );
    return r;
  } finally {
    await fleet.stop();
  }
}

async function main(): Promise<void> {
  const m0 = machine();
  console.log(`gateway-idle: ${N} idle devices in one server process, load from ${PROCS} processes\n${m0.text}\n`);

  // Baseline: a bare ws server, sockets that connect and idle.
  const bare = await startServer('bare', {});
  let base: Result;
  try {
    const specs = Array.from({ length: N }, (_, i) => ({ sn: `RAW${i}`, secretNo: 'x' }));
    base = await measure('bare ws', bare, specs, 'raw', loopbacks(2, 8));
  } finally {
    await bare.close();
  }

  // Bindery on SQLite: devices pre-bound, each goes register → active → subscribe, then idles (ping every 30 s).
  const p = await provision({ backend: 'sqlite', bound: N });
  let ours: Result;
  try {
    const server = await startServer('bindery', p.env);
    try {
      // Fresh source addresses: the baseline's closed sockets sit in TIME_WAIT on the others.
      ours = await measure('bindery gateway (SQLite)', server, p.bound, 'sdk', loopbacks(10, 8));
    } finally {
      await server.close();
    }
  } finally {
    await p.cleanup();
  }

  const m1 = machine();
  const ratios = ours.points.map((p, i) => p.perConn / base.points[i]!.perConn);
  console.log('');
  ours.points.forEach((p, i) => {
    const b = base.points[i]!;
    const ratio = ratios[i]!;
    console.log(
      `memory per idle connection at ${N}, +${p.at} s: Bindery ${kb(p.perConn)} (heap ${kb(p.heapPerConn)}) vs bare ws ` +
        `${kb(b.perConn)} (heap ${kb(b.heapPerConn)}) = ${ratio.toFixed(2)}× — target ≤ ${TARGET_RATIO}×: ` +
        `${ratio <= TARGET_RATIO ? 'met' : `MISSED by ${((ratio / TARGET_RATIO - 1) * 100).toFixed(0)} %`}`,
    );
  });
  console.log(`load average at the end: ${m1.load.join(' ')}`);
  console.log(
    JSON.stringify({
      bench: 'gateway-idle',
      devices: N,
      bare: base,
      bindery: ours,
      ratios,
      load_start: m0.load,
      load_end: m1.load,
    }),
  );
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
