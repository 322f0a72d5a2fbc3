import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { Fleet, type FleetCounts } from './fleet.js';
import { type FromWorker, hiResClock, type SettledRecord, type ToWorker, type WorkerInit } from './protocol.js';

/**
 * One load-generator process of a FleetCluster: runs a Fleet (or, in `raw` mode, bare idle
 * sockets) and reports counts to its parent. It only ever connects to the URL it is given, and
 * it exits when its parent goes away.
 */

function send(m: FromWorker): void {
  process.send?.(m);
}

function rssBytes(): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : process.memoryUsage().rss;
}

interface Runner {
  start(): void;
  stop(): void;
  counts(): FleetCounts;
}

let runner: Runner | null = null;
let settled: SettledRecord[] = [];
let reportTimer: ReturnType<typeof setInterval> | null = null;

function report(): void {
  if (!runner) return;
  const batch = settled;
  settled = [];
  send({ t: 'counts', counts: runner.counts(), settled: batch, rssBytes: rssBytes() });
}

function sdkRunner(init: WorkerInit): Runner {
  const fleet = new Fleet({
    url: init.url,
    devices: init.devices,
    localAddresses: init.localAddresses,
    maxInFlight: init.maxInFlight,
    firmwareVersion: init.firmwareVersion,
    upgrade: init.upgrade,
    clock: hiResClock,
    device: { reqIds: init.reqIds, numbers: init.numbers, timeSync: init.timeSync, intervals: init.intervals },
  });
  fleet.on('settled', (s) => settled.push([s.state, s.ms, hiResClock.now()]));
  fleet.on('push', (p) => send({ t: 'push', sn: p.sn, cmd: p.cmd, at: p.at }));
  return fleet;
}

/** Bare sockets for the baseline: connect with the same window and source addresses, then idle. */
function rawRunner(init: WorkerInit): Runner {
  const sockets: WebSocket[] = [];
  let next = 0;
  let inFlight = 0;
  let connected = 0;
  let errors = 0;
  let stopped = false;
  const fill = () => {
    while (!stopped && next < init.devices.length && inFlight < init.maxInFlight) {
      const i = next++;
      inFlight++;
      const started = hiResClock.now();
      const addr = init.localAddresses[i % Math.max(1, init.localAddresses.length)];
      const ws = new WebSocket(init.url, { perMessageDeflate: false, ...(addr ? { localAddress: addr } : {}) });
      let done = false;
      let opened = false;
      const finish = () => {
        if (done) return;
        done = true;
        inFlight--;
        fill();
      };
      ws.on('open', () => {
        opened = true;
        connected++;
        settled.push(['subscribed', hiResClock.now() - started, hiResClock.now()]);
        finish();
      });
      ws.on('error', () => {
        errors++;
      });
      ws.on('close', () => {
        if (opened) connected--;
        opened = false;
        finish();
      });
      sockets.push(ws);
    }
  };
  // Heartbeats: one timer walks the sockets so each sends a ping every heartbeatMs, spread evenly.
  let beat: ReturnType<typeof setInterval> | null = null;
  if (init.heartbeatMs) {
    const tickMs = 1000;
    const perTick = Math.max(1, Math.ceil(init.devices.length / (init.heartbeatMs / tickMs)));
    let cursor = 0;
    const ping = '{"cmd":"ping","headers":{"req_id":"ping"}}';
    beat = setInterval(() => {
      for (let k = 0; k < perTick && sockets.length > 0; k++) {
        const ws = sockets[cursor++ % sockets.length]!;
        if (ws.readyState === WebSocket.OPEN) ws.send(ping);
      }
    }, tickMs);
  }
  return {
    start: fill,
    stop: () => {
      stopped = true;
      if (beat) clearInterval(beat);
      for (const s of sockets) s.terminate();
    },
    counts: () => ({
      total: init.devices.length,
      started: next,
      connected,
      waiting: 0,
      subscribed: connected,
      reconnecting: 0,
      errors,
      protocolErrors: 0,
      restarts: 0,
      lost: errors,
      pushes: 0,
    }),
  };
}

/** Runs the warm-up devices' flow to the end and closes them; their settle times are not reported. */
async function warmUp(init: WorkerInit): Promise<void> {
  const w = init.warmup;
  if (!w || w.devices.length === 0) return;
  const spec: WorkerInit = { ...init, url: w.url, devices: w.devices, warmup: undefined, heartbeatMs: undefined };
  const r = spec.mode === 'raw' ? rawRunner(spec) : sdkRunner(spec);
  r.start();
  const until = Date.now() + 120_000;
  for (;;) {
    const c = r.counts();
    if (c.subscribed + c.waiting >= c.total) break;
    if (Date.now() > until) throw new Error(`warm-up did not finish: ${JSON.stringify(c)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  r.stop();
  settled = [];
}

process.on('message', async (m: ToWorker) => {
  try {
    switch (m.t) {
      case 'init':
        await warmUp(m);
        runner = m.mode === 'raw' ? rawRunner(m) : sdkRunner(m);
        reportTimer = setInterval(report, m.reportMs);
        send({ t: 'ready', pid: process.pid });
        break;
      case 'start':
        runner?.start();
        break;
      case 'stop':
        runner?.stop();
        report();
        send({ t: 'stopped' });
        break;
      case 'exit':
        if (reportTimer) clearInterval(reportTimer);
        // The last counts first: a push since the last 250 ms report would be missing from the total.
        report();
        runner?.stop();
        process.disconnect?.();
        setTimeout(() => process.exit(0), 200).unref();
        break;
    }
  } catch (e) {
    send({ t: 'fatal', message: e instanceof Error ? e.message : String(e) });
  }
});

// The parent died or closed the channel: never linger with thousands of sockets open.
process.on('disconnect', () => {
  runner?.stop();
  process.exit(0);
});
