import { FleetCluster } from '@bindery/sdk/sim/cluster.js';
import { loopbacks, machine, percentile, sleep, sumCpu } from './gateway/machine.js';
import { provision } from './gateway/provision.js';
import { startServer } from './gateway/server.js';

/**
 * Cold start on SQLite: N pre-registered, pre-bound devices power on together and each goes
 * connect → register → active (gets its secret) → subscribe_corp, the issue's flow and §A2's
 * official order; then, on a fresh database, the same with Lombo's get_timestamp first.
 * Figure: devices/s from the first connect to the last subscribe, and the per-device flow time.
 * The baseline in the same run: the same number of bare `ws` connects to a bare ws server with the
 * same processes, window and source addresses.
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
 * load-generator process, 250), BENCH_SCHED (none), BENCH_FLOW (official | lombo; default both).
 */

const N = Number(process.env.BENCH_DEVICES ?? 20_000);
const WORKERS = Number(process.env.BENCH_WORKERS ?? 2);
const PROCS = Number(process.env.BENCH_LOADGEN_PROCS ?? 2);
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 250);
const SCHED = process.env.BENCH_SCHED === 'rr' ? 'rr' : 'none';
type Flow = 'official' | 'lombo';
/**
 * `official`: the issue's cold start and §A2's official order, devices with their own clock
 * (timeSync on-demand). `lombo`: Lombo firmware, which asks get_timestamp first on every connect.
 */
const FLOW_STEPS: Record<Flow, string> = {
  official: 'connect→register→active→subscribe',
  lombo: 'connect→get_timestamp→register→active→subscribe',
};
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
  serverPids: number[],
  url: string,
  devices: Array<{ sn: string; secretNo?: string }>,
  mode: 'raw' | 'sdk',
  addrs: string[],
  onDone?: () => Promise<void>,
  timeSync: 'connect' | 'on-demand' = 'connect',
): Promise<Run> {
  const fleet = await FleetCluster.start({
    url,
    devices,
    mode,
    timeSync,
    processes: PROCS,
    localAddresses: addrs,
    maxInFlight: IN_FLIGHT,
    // BENCH_LOADGEN_CPU_PROF=<dir>: V8 CPU profiles of the load processes too.
    execArgv: process.env.BENCH_LOADGEN_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_LOADGEN_CPU_PROF}`] : [],
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
  console.log(
    `gateway-coldstart: ${N} devices, ${WORKERS || 1} gateway process(es)${WORKERS ? ` (node:cluster, scheduling ${SCHED})` : ''}, ` +
      `${PROCS} load processes × ${IN_FLIGHT} in flight\n${m0.text}\n`,
  );

  const bare = await startServer('bare', {}, { workers: WORKERS, scheduling: SCHED });
  let base: Run;
  try {
    base = await run(
      'bare ws connect',
      bare.pids,
      bare.url,
      Array.from({ length: N }, (_, i) => ({ sn: `RAW${i}` })),
      'raw',
      loopbacks(2, 8),
    );
  } finally {
    await bare.close();
  }

  // Each flow gets a fresh database: the first power-on writes what later ones only read.
  const flows: Record<Flow, Run> = {} as Record<Flow, Run>;
  for (const flow of FLOWS) {
    const p = await provision({ backend: 'sqlite', redis: WORKERS > 0, bound: N });
    try {
      const server = await startServer('bindery', p.env, { workers: WORKERS, scheduling: SCHED });
      try {
        flows[flow] = await run(
          `bindery ${FLOW_STEPS[flow]} (SQLite)`,
          server.pids,
          server.url,
          p.bound,
          'sdk',
          loopbacks(10, 8),
          async () => {
            const held = (await server.stats()).map((s) => s.devices);
            console.log(`  devices held per gateway process: ${held.join(' + ')}`);
          },
          flow === 'official' ? 'on-demand' : 'connect',
        );
      } finally {
        await server.close();
      }
    } finally {
      await p.cleanup();
    }
  }
  const ours = flows[FLOWS[0]!];

  const m1 = machine();
  console.log(
    `\ncold start (${FLOW_STEPS[FLOWS[0]!]}): ${ours.perSec.toFixed(0)} devices/s (target ≥ ${TARGET}: ${
      ours.perSec >= TARGET ? 'met' : `MISSED by ${((1 - ours.perSec / TARGET) * 100).toFixed(0)} %`
    }); bare ws connects in the same run: ${base.perSec.toFixed(0)}/s`,
  );
  console.log(`load average at the end: ${m1.load.join(' ')}`);
  console.log(
    JSON.stringify({
      bench: 'gateway-coldstart',
      devices: N,
      workers: WORKERS,
      scheduling: SCHED,
      bare: { ...base, curve: undefined },
      bindery: Object.fromEntries(FLOWS.map((f) => [f, { ...flows[f], curve: undefined }])),
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
