import { FleetCluster } from '@bindery/sdk/sim/cluster.js';
import type { FleetDeviceSpec } from '@bindery/sdk/sim/fleet.js';
import pg from 'pg';
import { kb, loopbacks, machine, mb, sleep } from './gateway/machine.js';
import { provision } from './gateway/provision.js';
import { type ServerHandle, startServer } from './gateway/server.js';

/**
 * 100 000 subscribed devices on this one machine: BENCH_WORKERS gateway processes under
 * node:cluster share one port (each holds ≤ 19 980 sockets under the open-file limit), on
 * PostgreSQL + Redis — PostgreSQL because several processes writing one SQLite file take turns on
 * its single write lock, and Redis because presence and pushes must cross processes anyway. The
 * load comes from as many processes over 12 loopback source addresses. Then a push is sent to
 * devices held by every gateway process, through the shared port (so most requests land on
 * another process than the device's), and counted at the devices.
 * Baseline in the same run: a bare `ws` server under the same node:cluster, same sockets.
 *
 * BENCH_DEVICES (100 000), BENCH_WORKERS (6), BENCH_LOADGEN_PROCS (6), BENCH_PUSH_PER_NODE (20).
 */

const N = Number(process.env.BENCH_DEVICES ?? 100_000);
const WORKERS = Number(process.env.BENCH_WORKERS ?? 6);
const PROCS = Number(process.env.BENCH_LOADGEN_PROCS ?? 6);
const PUSH_PER_NODE = Number(process.env.BENCH_PUSH_PER_NODE ?? 20);
const DEADLINE_MS = 45 * 60_000;
setTimeout(() => {
  console.error(`gateway-100k: still running after ${DEADLINE_MS / 60_000} min; giving up`);
  process.exit(2);
}, DEADLINE_MS).unref();

interface Mem {
  before: number[];
  after: number[];
  perConn: number;
  heapPerConn: number;
  seconds: number;
  held: number[];
}

const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);

async function hold(
  label: string,
  server: ServerHandle,
  devices: FleetDeviceSpec[],
  mode: 'raw' | 'sdk',
  addrs: string[],
  whileHeld?: (fleet: FleetCluster) => Promise<void>,
): Promise<Mem> {
  await sleep(1000);
  const m0 = await server.memory();
  const before = m0.rss;
  const fleet = await FleetCluster.start({
    url: server.url,
    devices,
    mode,
    heartbeatMs: 30_000,
    processes: PROCS,
    localAddresses: addrs,
    maxInFlight: 200,
  });
  try {
    const t0 = performance.now();
    fleet.startDevices();
    let last = 0;
    const off = fleet.on('counts', (c) => {
      if (performance.now() - last < 10_000) return;
      last = performance.now();
      console.log(`  ${((last - t0) / 1000).toFixed(0)} s: subscribed ${c.subscribed}/${N}, errors ${c.errors}`);
    });
    const c = await fleet.waitUntil((x) => x.subscribed === N, DEADLINE_MS);
    off();
    const seconds = (performance.now() - t0) / 1000;
    await sleep(5000);
    const m1 = await server.memory();
    const after = m1.rss;
    const heapPerConn = (sum(m1.heap) - sum(m0.heap)) / N;
    const held = (await server.stats()).map((s) => s.connections);
    const perConn = (sum(after) - sum(before)) / N;
    console.log(
      `${label}: ${N} in ${seconds.toFixed(0)} s (${(N / seconds).toFixed(0)}/s), errors ${c.errors}; ` +
        `sockets per process ${held.join(' + ')} = ${sum(held)}; ` +
        `RSS ${mb(sum(before))} → ${mb(sum(after))} over ${after.length} processes = ${kb(perConn)} per connection (V8 heap ${kb(heapPerConn)})`,
    );
    if (sum(held) !== N) throw new Error(`${label}: servers hold ${sum(held)} sockets, expected ${N}`);
    await whileHeld?.(fleet);
    return { before, after, perConn, heapPerConn, seconds, held };
  } finally {
    await fleet.stop();
  }
}

/** Sends push_restart_device to PUSH_PER_NODE devices held by each gateway process; counts arrivals. */
async function pushEverywhere(
  fleet: FleetCluster,
  server: ServerHandle,
  env: Record<string, string>,
  token: string,
): Promise<Array<{ node: string; sent: number; arrived: number }>> {
  // Where each device is connected, as the gateway wrote it (batched every 2 s).
  const db = new pg.Client({ connectionString: env.DATABASE_URL });
  await db.connect();
  const r = await db.query<{ node_id: string; sn: string }>(
    `SELECT node_id, sn FROM (
       SELECT node_id, sn, row_number() OVER (PARTITION BY node_id ORDER BY id) AS k
       FROM devices WHERE online = 1 AND node_id IS NOT NULL) x
     WHERE k <= $1`,
    [PUSH_PER_NODE],
  );
  await db.end();
  const arrived = new Set<string>();
  const off = fleet.on('push', (p) => {
    if (p.cmd === 'push_restart_device') arrived.add(p.sn);
  });
  for (const row of r.rows) {
    const res = await fetch(`http://127.0.0.1:${server.port}/api/v1/devices/${row.sn}/commands`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ cmd: 'restart' }),
    });
    if (res.status !== 202) throw new Error(`command to ${row.sn}: HTTP ${res.status} ${await res.text()}`);
  }
  const t0 = Date.now();
  while (arrived.size < r.rows.length && Date.now() - t0 < 15_000) await sleep(100);
  off();
  const byNode = new Map<string, { node: string; sent: number; arrived: number }>();
  for (const row of r.rows) {
    const e = byNode.get(row.node_id) ?? { node: row.node_id, sent: 0, arrived: 0 };
    e.sent++;
    if (arrived.has(row.sn)) e.arrived++;
    byNode.set(row.node_id, e);
  }
  return [...byNode.values()].sort((a, b) => a.node.localeCompare(b.node));
}

async function main(): Promise<void> {
  const m0 = machine();
  console.log(`gateway-100k: ${N} devices, ${WORKERS} gateway processes (node:cluster), ${PROCS} load processes\n${m0.text}\n`);
  const addrsA = loopbacks(2, 12);
  const addrsB = loopbacks(20, 12);

  const bare = await startServer('bare', {}, { workers: WORKERS });
  let base: Mem;
  try {
    const raw = Array.from({ length: N }, (_, i) => ({ sn: `RAW${i}` }));
    base = await hold('bare ws (node:cluster)', bare, raw, 'raw', addrsA);
  } finally {
    await bare.close();
  }

  const p = await provision({ backend: 'postgres', bound: N });
  let ours: Mem;
  let pushes: Array<{ node: string; sent: number; arrived: number }> = [];
  try {
    const server = await startServer('bindery', p.env, { workers: WORKERS });
    try {
      ours = await hold('bindery gateway (PostgreSQL + Redis, node:cluster)', server, p.bound, 'sdk', addrsB, async (fleet) => {
        pushes = await pushEverywhere(fleet, server, p.env, p.operatorToken);
        for (const x of pushes) console.log(`  push_restart_device to devices on ${x.node}: ${x.arrived}/${x.sent} arrived`);
      });
    } finally {
      await server.close();
    }
  } finally {
    await p.cleanup();
  }

  const ratio = ours.perConn / base.perConn;
  const allArrived = pushes.length === WORKERS && pushes.every((x) => x.arrived === x.sent);
  const m1 = machine();
  console.log(
    `\n${N} subscribed across ${WORKERS} processes: ${kb(ours.perConn)} per connection vs bare ws ${kb(base.perConn)} = ${ratio.toFixed(2)}×`,
  );
  console.log(`pushes reached devices on every process: ${allArrived ? 'yes' : 'NO'}`);
  console.log(`load average at the end: ${m1.load.join(' ')}`);
  console.log(
    JSON.stringify({
      bench: 'gateway-100k',
      devices: N,
      workers: WORKERS,
      bare: base,
      bindery: ours,
      ratio,
      pushes,
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
