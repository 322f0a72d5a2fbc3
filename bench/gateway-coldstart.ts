import { FleetCluster } from '@bindery/sdk/sim/cluster.js';
import { loopbacks, machine, percentile, sleep, sumCpu } from './gateway/machine.js';
import { provision } from './gateway/provision.js';
import { startServer } from './gateway/server.js';

/**
 * Cold start on SQLite: N pre-registered, pre-bound devices power on together and each goes
 * connect → register → active (gets its secret) → subscribe_corp, the issue's flow and §A2's
 * official order; then, on a fresh database, the same with Lombo's get_timestamp first.
 * Figure: devices/s from the first connect to the last subscribe, and the per-device flow time.
 * Each repeat starts a fresh database and server, then powers on two fleets of N different
 * devices one after the other: the first meets a server that has just started, the second the
 * same server warm. The baselines in the same run, with the same processes, window and source
 * addresses: N bare `ws` connects to a bare ws server, and the same flow against a bare ws
 * server that answers every request with a canned reply (the transport's own ceiling).
 *
 * One process may hold at most ~19 980 sockets here (open-file limit 20 000), so N = 20 000 runs
 * on BENCH_WORKERS=2 gateway processes under node:cluster sharing one port and one SQLite file
 * (WAL), with Redis for the bus and presence as any multi-process deployment needs.
 * BENCH_WORKERS=0 runs a single process (then keep BENCH_DEVICES ≤ 19 900).
 *
 * Both servers run their workers with node:cluster's SCHED_NONE (each worker accepts on the
 * shared socket): with the default round robin the primary accepts every connection and passes
 * it over IPC, which on this 2-core machine costs as much CPU as the ws handshake itself.
 * BENCH_SCHED=rr measures that default instead.
 *
 * BENCH_DEVICES (20 000), BENCH_WORKERS (2), BENCH_LOADGEN_PROCS (2), BENCH_IN_FLIGHT (per
 * load-generator process, 250), BENCH_SCHED (none), BENCH_FLOW (official | lombo; default both),
 * BENCH_RUNS (3: repeats of the first flow; this machine's figures vary by ±20 % from run to run),
 * BENCH_SERVER_NODE_FLAGS / BENCH_LOADGEN_NODE_FLAGS (extra node flags for experiments),
 * BENCH_LOADGEN_WARMUP (4 000: devices each fleet's load processes first take through the same
 * flow against a separate bare server, so that V8 has optimised the load generator's code before
 * the measured devices power on; 0 measures with a cold load generator).
 */

const N = Number(process.env.BENCH_DEVICES ?? 20_000);
const WORKERS = Number(process.env.BENCH_WORKERS ?? 2);
const PROCS = Number(process.env.BENCH_LOADGEN_PROCS ?? 2);
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 250);
const SCHED = process.env.BENCH_SCHED === 'rr' ? 'rr' : 'none';
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 3));
const LOADGEN_WARMUP = Math.max(0, Number(process.env.BENCH_LOADGEN_WARMUP ?? 4000));
const WARM_DEVICES = Array.from({ length: LOADGEN_WARMUP }, (_, i) => ({ sn: `WARM${i}`, secretNo: 'BARE-SECRET-NO' }));
/** A bare ws server with canned replies that the load processes warm up against (never the measured server). */
let warmTarget: string | null = null;
type Flow = 'official' | 'lombo';
/**
 * `official`: the issue's cold start and §A2's official order, devices with their own clock
 * (timeSync on-demand). `lombo`: Lombo firmware, which asks get_timestamp first on every connect.
 */
const FLOW_STEPS: Record<Flow, string> = {
  official: 'connect→register→active→subscribe',
  lombo: 'connect→get_timestamp→register→active→subscribe',
};
const FLOW_TIME_SYNC: Record<Flow, 'connect' | 'on-demand'> = { official: 'on-demand', lombo: 'connect' };
const FLOWS: Flow[] =
  process.env.BENCH_FLOW === 'official' || process.env.BENCH_FLOW === 'lombo' ? [process.env.BENCH_FLOW] : ['official', 'lombo'];
const TARGET = 2000;
const cpus = (await import('node:os')).cpus().length;
const DEADLINE_MS = 20 * 60_000;
setTimeout(() => {
  console.error(`gateway-coldstart: still running after ${DEADLINE_MS / 60_000} min; giving up`);
  process.exit(2);
}, DEADLINE_MS).unref();

interface Run {
  perSec: number;
  seconds: number;
  p50: number;
  p99: number;
  /** CPU seconds the server processes and the load processes used during the run. */
  serverCpuSec: number;
  loadCpuSec: number;
  errors: number;
  restarts: number;
  lost: number;
  /** Devices settled in each second of the run. */
  curve: number[];
}

async function run(
  label: string,
  server: { pids: number[]; url: string },
  devices: Array<{ sn: string; secretNo?: string }>,
  opts: { mode: 'raw' | 'sdk'; addrs: string[]; flow?: Flow; onDone?: () => Promise<void> },
): Promise<Run> {
  const { mode, addrs, onDone } = opts;
  const url = server.url;
  const serverPids = server.pids;
  const timeSync = opts.flow ? FLOW_TIME_SYNC[opts.flow] : 'connect';
  const fleet = await FleetCluster.start({
    url,
    devices,
    mode,
    timeSync,
    ...(warmTarget ? { warmup: { url: warmTarget, devices: WARM_DEVICES } } : {}),
    processes: PROCS,
    localAddresses: addrs,
    maxInFlight: IN_FLIGHT,
    // BENCH_LOADGEN_CPU_PROF=<dir>: V8 CPU profiles of the load processes too.
    execArgv: [
      ...(process.env.BENCH_LOADGEN_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_LOADGEN_CPU_PROF}`] : []),
      ...(process.env.BENCH_LOADGEN_NODE_FLAGS?.split(' ').filter(Boolean) ?? []),
    ],
  });
  const flow: number[] = [];
  const at: number[] = [];
  fleet.on('settled', (e) => {
    for (const [, ms, when] of e.records) {
      flow.push(ms);
      at.push(when);
    }
  });
  try {
    const cpu0 = [sumCpu(serverPids), sumCpu(fleet.pids)];
    const t0 = performance.timeOrigin + performance.now();
    fleet.startDevices();
    const c = await fleet.waitUntil((x) => x.subscribed === devices.length, DEADLINE_MS);
    await onDone?.();
    const cpu1 = [sumCpu(serverPids), sumCpu(fleet.pids)];
    // The last report carries the last settle records.
    await sleep(300);
    const last = Math.max(...at);
    const seconds = (last - t0) / 1000;
    flow.sort((a, b) => a - b);
    const curve: number[] = [];
    for (const w of at) {
      const s = Math.floor((w - t0) / 1000);
      curve[s] = (curve[s] ?? 0) + 1;
    }
    const r: Run = {
      perSec: devices.length / seconds,
      seconds,
      p50: percentile(flow, 50),
      p99: percentile(flow, 99),
      serverCpuSec: cpu1[0]! - cpu0[0]!,
      loadCpuSec: cpu1[1]! - cpu0[1]!,
      errors: c.errors,
      restarts: c.restarts,
      lost: c.lost,
      curve: Array.from(curve, (x) => x ?? 0),
    };
    console.log(
      `${label}: ${devices.length} in ${seconds.toFixed(2)} s = ${r.perSec.toFixed(0)} devices/s; ` +
        `per device p50 ${r.p50.toFixed(0)} ms, p99 ${r.p99.toFixed(0)} ms; errors ${r.errors} (restarts ${r.restarts}, lost connections ${r.lost})`,
    );
    console.log(
      `  CPU used: server ${r.serverCpuSec.toFixed(1)} s (${((r.serverCpuSec / devices.length) * 1e6).toFixed(0)} µs per device), ` +
        `load generator ${r.loadCpuSec.toFixed(1)} s, over ${seconds.toFixed(1)} s on ${cpus} cores`,
    );
    console.log(`  per second: ${r.curve.join(' ')}`);
    return r;
  } finally {
    await fleet.stop();
  }
}

async function main(): Promise<void> {
  const m0 = machine();
  const warmServer = LOADGEN_WARMUP > 0 ? await startServer('bare', {}) : null;
  warmTarget = warmServer?.url ?? null;
  console.log(
    `gateway-coldstart: ${N} devices, ${WORKERS || 1} gateway process(es)${WORKERS ? ` (node:cluster, scheduling ${SCHED})` : ''}, ` +
      `${PROCS} load processes × ${IN_FLIGHT} in flight, each warmed up on ${LOADGEN_WARMUP / PROCS} devices against a bare server\n${m0.text}\n`,
  );

  // Two baselines on a bare ws server (same processes, window and source addresses): bare
  // connects, and the devices' whole flow answered with canned replies — the same frames over
  // the same transport with none of Bindery's work, the most this machine could do.
  let base: Run;
  let bareFlow: Run;
  for (const what of ['connect', 'flow'] as const) {
    const bare = await startServer('bare', {}, { workers: WORKERS, scheduling: SCHED });
    try {
      const r = await run(
        what === 'connect' ? 'bare ws connect' : `bare ws, ${FLOW_STEPS[FLOWS[0]!]} with canned replies`,
        bare,
        Array.from({ length: N }, (_, i) => ({ sn: `RAW${i}`, secretNo: 'BARE-SECRET-NO' })),
        what === 'connect' ? { mode: 'raw', addrs: loopbacks(2, 8) } : { mode: 'sdk', addrs: loopbacks(2, 8), flow: FLOWS[0]! },
      );
      if (what === 'connect') base = r;
      else bareFlow = r;
    } finally {
      await bare.close();
    }
  }

  // Each flow and each repeat gets a fresh database and fresh server processes: the first
  // power-on writes what later ones only read. Within one, two fleets of different devices power
  // on one after the other: the first meets a server that has just started (its code not yet
  // optimised by V8), the second the same server warm, as a gateway that has been up for a while
  // meets a site whose devices all come back at once.
  const results: Record<Flow, Array<{ first: Run; warm: Run }>> = { official: [], lombo: [] };
  for (const flow of FLOWS) {
    const repeats = flow === FLOWS[0] ? RUNS : 1;
    for (let rep = 1; rep <= repeats; rep++) {
      const p = await provision({ backend: 'sqlite', redis: WORKERS > 0, bound: 2 * N });
      try {
        const server = await startServer('bindery', p.env, { workers: WORKERS, scheduling: SCHED });
        try {
          const fleet = async (label: string, devices: typeof p.bound) =>
            run(`bindery ${FLOW_STEPS[flow]} (SQLite), run ${rep}/${repeats}, ${label}`, server, devices, {
              mode: 'sdk',
              addrs: loopbacks(10, 8),
              flow,
              onDone: async () => {
                const held = (await server.stats()).map((s) => s.devices);
                console.log(`  devices held per gateway process: ${held.join(' + ')}`);
              },
            });
          const first = await fleet('server just started', p.bound.slice(0, N));
          // The first fleet's sockets are closed by now; let their offline writes reach the database.
          await waitFor(async () => (await server.stats()).every((s) => s.connections === 0 && (s.pendingWrites ?? 0) === 0));
          const warm = await fleet('server warm', p.bound.slice(N));
          results[flow].push({ first, warm });
        } finally {
          await server.close();
        }
      } finally {
        await p.cleanup();
      }
    }
  }

  await warmServer?.close();
  const m1 = machine();
  const lead = FLOWS[0]!;
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  const verdict = (x: number) => (x >= TARGET ? 'met' : `MISSED by ${((1 - x / TARGET) * 100).toFixed(0)} %`);
  const firsts = results[lead].map((r) => r.first.perSec);
  const warms = results[lead].map((r) => r.warm.perSec);
  const fmt = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(', ');
  console.log(`
cold start (${FLOW_STEPS[lead]}), ${results[lead].length} run(s), target ≥ ${TARGET} devices/s:`);
  console.log(`  server just started: ${fmt(firsts)}; median ${median(firsts).toFixed(0)} (${verdict(median(firsts))})`);
  console.log(`  server warm:         ${fmt(warms)}; median ${median(warms).toFixed(0)} (${verdict(median(warms))})`);
  console.log(
    `  in the same run, bare ws: connects ${base!.perSec.toFixed(0)}/s; the same flow with canned replies ${bareFlow!.perSec.toFixed(0)}/s`,
  );
  console.log(`load average at the end: ${m1.load.join(' ')}`);
  const strip = (r: Run) => ({ ...r, curve: undefined });
  console.log(
    JSON.stringify({
      bench: 'gateway-coldstart',
      devices: N,
      workers: WORKERS,
      scheduling: SCHED,
      bare: strip(base!),
      bare_flow: strip(bareFlow!),
      bindery: Object.fromEntries(FLOWS.map((f) => [f, results[f].map((r) => ({ first: strip(r.first), warm: strip(r.warm) }))])),
      load_start: m0.load,
      load_end: m1.load,
    }),
  );
}

async function waitFor(ok: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > until) throw new Error('the server did not settle after the first fleet');
    await sleep(250);
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
