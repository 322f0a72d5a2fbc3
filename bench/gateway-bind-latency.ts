import { FleetCluster } from '@bindery/sdk/sim/cluster.js';
import { Fleet, type FleetDeviceSpec } from '@bindery/sdk/sim/fleet.js';
import { hiResClock } from '@bindery/sdk/sim/protocol.js';
import { WebSocket, WebSocketServer } from 'ws';
import { loopbacks, machine, percentile, sleep } from './gateway/machine.js';
import { type Provisioned, provision } from './gateway/provision.js';
import { type ServerHandle, startServer } from './gateway/server.js';

/**
 * Bind request → push_bind_corp at the device, with BENCH_BACKGROUND (10 000) subscribed devices
 * connected to the same gateway process. Each bind is `POST /api/v1/devices/:sn/bind` by an
 * operator; the clock starts before the request is sent and stops when the device's SDK emits
 * push_bind_corp. The probes (unbound devices polling `active`) live in this process so both ends
 * are read from one clock; the background devices come from a separate load process.
 *
 *  1. SQLite, one process, in-process bus: bind on the device's own process.
 *  2. PostgreSQL + Redis, two processes A and B: devices on A, binds sent to B, so the push crosses
 *     processes through Redis presence + pub/sub. Binds on A in the same run separate the cost of
 *     PostgreSQL from the cost of crossing.
 * Baseline in the same run: a bare `ws` server relaying a message from one socket to another
 * (the floor for "an HTTP-triggered event reaches a socket" on this machine).
 */

const BACKGROUND = Number(process.env.BENCH_BACKGROUND ?? 10_000);
const BINDS = Number(process.env.BENCH_BINDS ?? 400);
const GAP_MS = Number(process.env.BENCH_GAP_MS ?? 15);
const DEADLINE_MS = 20 * 60_000;
setTimeout(() => {
  console.error(`gateway-bind-latency: still running after ${DEADLINE_MS / 60_000} min; giving up`);
  process.exit(2);
}, DEADLINE_MS).unref();

interface Stat {
  label: string;
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** Time until the HTTP 204, for reference. */
  httpP50: number;
}

function summarise(label: string, push: number[], http: number[]): Stat {
  const s = [...push].sort((a, b) => a - b);
  const h = [...http].sort((a, b) => a - b);
  const r = {
    label,
    n: s.length,
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    max: s.at(-1)!,
    httpP50: percentile(h, 50),
  };
  console.log(
    `${label}: n=${r.n} bind→push p50 ${r.p50.toFixed(2)} ms, p90 ${r.p90.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, ` +
      `max ${r.max.toFixed(2)} ms (HTTP 204 p50 ${r.httpP50.toFixed(2)} ms)`,
  );
  return r;
}

/** Brings BACKGROUND bound devices up (in a load process) and the probes (here) to waiting. */
async function fleets(url: string, p: Provisioned, probes: FleetDeviceSpec[]): Promise<{ bg: FleetCluster; fleet: Fleet }> {
  const bg = await FleetCluster.start({
    url,
    devices: p.bound,
    processes: Math.max(1, Math.ceil(BACKGROUND / 19_000)),
    localAddresses: loopbacks(2, 4),
    maxInFlight: 250,
  });
  bg.startDevices();
  await bg.waitUntil((c) => c.subscribed === p.bound.length, 10 * 60_000);
  const fleet = new Fleet({ url, devices: probes, localAddresses: loopbacks(20, 2), maxInFlight: 200, clock: hiResClock });
  fleet.start();
  const t0 = Date.now();
  while (fleet.counts().waiting < probes.length) {
    if (Date.now() - t0 > 120_000) throw new Error(`probes not waiting: ${JSON.stringify(fleet.counts())}`);
    await sleep(100);
  }
  // Past the connection burst: background devices idle, pinging every 30 s.
  await sleep(3000);
  return { bg, fleet };
}

/** Binds each probe through `http` and times push_bind_corp at its device. */
async function bindAll(
  fleet: Fleet,
  http: string,
  token: string,
  orgId: string,
  probes: FleetDeviceSpec[],
): Promise<[number[], number[]]> {
  const push: number[] = [];
  const httpMs: number[] = [];
  for (const spec of probes) {
    const d = fleet.device(spec.sn)!;
    const got = d.waitFor('push_bind_corp', undefined, 10_000).then(() => performance.now());
    const t0 = performance.now();
    const res = await fetch(`${http}/api/v1/devices/${spec.sn}/bind`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ owner_type: 'org', owner_id: orgId }),
    });
    const t1 = performance.now();
    if (res.status !== 204) throw new Error(`bind ${spec.sn}: HTTP ${res.status} ${await res.text()}`);
    push.push((await got) - t0);
    httpMs.push(t1 - t0);
    await sleep(GAP_MS);
  }
  return [push, httpMs];
}

/** Baseline: a bare ws server that relays an HTTP-triggered message to one of BACKGROUND idle sockets. */
async function bareRelay(): Promise<Stat> {
  const { createServer } = await import('node:http');
  const sockets = new Map<string, WebSocket>();
  const server = createServer((req, res) => {
    const id = req.url!.slice(1);
    sockets.get(id)?.send('{"cmd":"push_bind_corp","headers":{"req_id":"x"}}');
    res.statusCode = 204;
    res.end();
  });
  const wss = new WebSocketServer({ server, perMessageDeflate: false });
  let n = 0;
  wss.on('connection', (ws) => sockets.set(String(n++), ws));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  // Background sockets from a load process, like the real runs; the probe socket here.
  const bg = await FleetCluster.start({
    url: `ws://127.0.0.1:${port}/`,
    devices: Array.from({ length: BACKGROUND }, (_, i) => ({ sn: `RAW${i}` })),
    mode: 'raw',
    processes: 1,
    localAddresses: loopbacks(30, 2),
    maxInFlight: 250,
  });
  try {
    bg.startDevices();
    await bg.waitUntil((c) => c.connected === BACKGROUND, 5 * 60_000);
    const probe = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
    await new Promise((r) => probe.once('open', r));
    await sleep(500);
    const id = String(n - 1);
    const push: number[] = [];
    const http: number[] = [];
    for (let i = 0; i < BINDS; i++) {
      const got = new Promise<number>((r) => probe.once('message', () => r(performance.now())));
      const t0 = performance.now();
      await fetch(`http://127.0.0.1:${port}/${id}`, { method: 'POST' });
      http.push(performance.now() - t0);
      push.push((await got) - t0);
      await sleep(GAP_MS);
    }
    probe.terminate();
    return summarise('bare ws relay (baseline)', push, http);
  } finally {
    await bg.stop();
    for (const ws of wss.clients) ws.terminate();
    await new Promise((r) => server.close(r));
  }
}

async function sqliteRun(): Promise<Stat> {
  const p = await provision({ backend: 'sqlite', bound: BACKGROUND, unbound: BINDS });
  let server: ServerHandle | null = null;
  try {
    server = await startServer('bindery', p.env);
    const { bg, fleet } = await fleets(server.url, p, p.unbound);
    try {
      const [push, http] = await bindAll(fleet, `http://127.0.0.1:${server.port}`, p.operatorToken, p.orgId, p.unbound);
      return summarise(`SQLite, one process, ${BACKGROUND} connected`, push, http);
    } finally {
      fleet.stop();
      await bg.stop();
    }
  } finally {
    await server?.close();
    await p.cleanup();
  }
}

async function redisRun(): Promise<[Stat, Stat]> {
  const p = await provision({ backend: 'postgres', bound: BACKGROUND, unbound: 2 * BINDS });
  const servers: ServerHandle[] = [];
  try {
    const a = await startServer('bindery', { ...p.env, BINDERY_NODE_ID: 'bench-a' });
    servers.push(a);
    const b = await startServer('bindery', { ...p.env, BINDERY_NODE_ID: 'bench-b' });
    servers.push(b);
    const { bg, fleet } = await fleets(a.url, p, p.unbound);
    try {
      const local = p.unbound.slice(0, BINDS);
      const remote = p.unbound.slice(BINDS);
      const [pushA, httpA] = await bindAll(fleet, `http://127.0.0.1:${a.port}`, p.operatorToken, p.orgId, local);
      const same = summarise(`PostgreSQL + Redis, bind on the device's process A`, pushA, httpA);
      const [pushB, httpB] = await bindAll(fleet, `http://127.0.0.1:${b.port}`, p.operatorToken, p.orgId, remote);
      const cross = summarise('PostgreSQL + Redis, bind on B, device on A (crosses processes)', pushB, httpB);
      return [same, cross];
    } finally {
      fleet.stop();
      await bg.stop();
    }
  } finally {
    for (const s of servers) await s.close();
    await p.cleanup();
  }
}

async function main(): Promise<void> {
  const m0 = machine();
  console.log(`gateway-bind-latency: ${BINDS} binds per case, ${GAP_MS} ms apart, ${BACKGROUND} devices connected\n${m0.text}\n`);
  const base = await bareRelay();
  const sqlite = await sqliteRun();
  const [same, cross] = await redisRun();
  const m1 = machine();
  const verdict = (v: number, t: number) => (v <= t ? 'met' : `MISSED by ${(v - t).toFixed(1)} ms`);
  console.log(`\np99 bind→push, one process (SQLite): ${sqlite.p99.toFixed(2)} ms (target ≤ 25 ms: ${verdict(sqlite.p99, 25)})`);
  console.log(`p99 bind→push across processes via Redis: ${cross.p99.toFixed(2)} ms (target ≤ 50 ms: ${verdict(cross.p99, 50)})`);
  console.log(`load average at the end: ${m1.load.join(' ')}`);
  console.log(
    JSON.stringify({
      bench: 'gateway-bind-latency',
      background: BACKGROUND,
      base,
      sqlite,
      same,
      cross,
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
