import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { DeviceIntervals } from '../device.js';
import { TypedEmitter } from '../events.js';
import type { FleetCounts, FleetDeviceSpec, SimUpgradeOptions } from './fleet.js';
import { type FromWorker, MAX_SOCKETS_PER_PROCESS, type SettledRecord, type ToWorker, type WorkerMode } from './protocol.js';

export interface FleetClusterOptions {
  url: string;
  devices: readonly FleetDeviceSpec[];
  /** Worker processes; default: as few as hold the devices at ≤ 19 000 sockets each. */
  processes?: number;
  /** Source addresses, shared round-robin by every worker (staggered), e.g. 127.0.0.2–127.0.0.9. */
  localAddresses?: readonly string[];
  /** Per worker: devices between power-on and their first stable state. */
  maxInFlight?: number;
  mode?: WorkerMode;
  firmwareVersion?: string;
  upgrade?: SimUpgradeOptions;
  reqIds?: 'unique' | 'fixed';
  numbers?: 'string' | 'number';
  /** Devices' time sync (see DeviceOptions.timeSync); default `connect`, as Lombo firmware. */
  timeSync?: 'connect' | 'on-demand';
  intervals?: Partial<DeviceIntervals>;
  reportMs?: number;
  /** Raw mode: a ping text frame per socket this often (default: none, fully idle). */
  heartbeatMs?: number;
  /** Extra Node flags for the worker processes (e.g. `--cpu-prof` when profiling a benchmark). */
  execArgv?: readonly string[];
  /**
   * Before `start` resolves, each worker takes its share of these devices through their whole
   * flow against `url` (same mode and options) and closes them. A benchmark points this at a
   * server other than the one it measures, so the load generator's own code is optimised by V8
   * before the measured fleet powers on, and the measured server sees none of it.
   */
  warmup?: { url: string; devices: readonly FleetDeviceSpec[] };
}

export interface ClusterEvents {
  counts: FleetCounts;
  push: { sn: string; cmd: string; at: number; worker: number };
  settled: { records: SettledRecord[]; worker: number };
}

interface WorkerHandle {
  child: ChildProcess;
  counts: FleetCounts;
  rssBytes: number;
  exited: Promise<void>;
}

const ZERO: FleetCounts = {
  total: 0,
  started: 0,
  connected: 0,
  waiting: 0,
  subscribed: 0,
  reconnecting: 0,
  errors: 0,
  protocolErrors: 0,
  restarts: 0,
  lost: 0,
  pushes: 0,
};

/** Only loopback: the load generator must never aim at another machine. */
function assertLoopback(url: string, addrs: readonly string[]): void {
  const host = new URL(url).hostname;
  if (!/^127\.\d+\.\d+\.\d+$/.test(host) && host !== 'localhost')
    throw new Error(`the fleet only targets 127.0.0.0/8, not ${host}`);
  for (const a of addrs) if (!/^127\.\d+\.\d+\.\d+$/.test(a)) throw new Error(`source address ${a} is not in 127.0.0.0/8`);
}

/**
 * A fleet spread over worker processes (each holds at most ~19 900 sockets under this machine's
 * open-file limit) and over loopback source addresses (each address has ~28 000 ephemeral
 * ports). The parent only aggregates: counts every `reportMs`, settle times, and every push.
 */
export class FleetCluster extends TypedEmitter<ClusterEvents> {
  private readonly workers: WorkerHandle[] = [];

  private constructor() {
    super();
  }

  static async start(opts: FleetClusterOptions): Promise<FleetCluster> {
    const addrs = opts.localAddresses ?? [];
    assertLoopback(opts.url, addrs);
    if (opts.warmup) assertLoopback(opts.warmup.url, addrs);
    const n = opts.processes ?? Math.max(1, Math.ceil(opts.devices.length / 19_000));
    const per = Math.ceil(opts.devices.length / n);
    if (per > MAX_SOCKETS_PER_PROCESS) {
      throw new Error(`${per} sockets per process exceed ${MAX_SOCKETS_PER_PROCESS}; use more processes`);
    }
    const warmPer = Math.ceil((opts.warmup?.devices.length ?? 0) / n);
    const c = new FleetCluster();
    const workerPath = fileURLToPath(new URL('./worker.ts', import.meta.url));
    const tsx = import.meta.resolve('tsx');
    const ready: Array<Promise<void>> = [];
    for (let i = 0; i < n; i++) {
      const devices = opts.devices.slice(i * per, (i + 1) * per);
      const child = fork(workerPath, [], {
        execArgv: ['--import', tsx, ...(opts.execArgv ?? [])],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      const h: WorkerHandle = {
        child,
        counts: { ...ZERO, total: devices.length },
        rssBytes: 0,
        exited: new Promise((r) => child.once('exit', () => r())),
      };
      c.workers.push(h);
      ready.push(
        new Promise((resolve, reject) => {
          child.on('message', (m: FromWorker) => {
            if (m.t === 'ready') resolve();
            else if (m.t === 'fatal') reject(new Error(`fleet worker ${i}: ${m.message}`));
            else c.onMessage(i, m);
          });
          child.once('exit', (code) => reject(new Error(`fleet worker ${i} exited (${code}) before it was ready`)));
        }),
      );
      // Each worker starts its round-robin at a different address so the load per address stays even.
      const shift = addrs.length ? (i * Math.ceil(addrs.length / n)) % addrs.length : 0;
      c.send(i, {
        t: 'init',
        index: i,
        url: opts.url,
        devices,
        mode: opts.mode ?? 'sdk',
        localAddresses: [...addrs.slice(shift), ...addrs.slice(0, shift)],
        maxInFlight: opts.maxInFlight ?? 500,
        firmwareVersion: opts.firmwareVersion ?? '1.0.0',
        ...(opts.upgrade ? { upgrade: opts.upgrade } : {}),
        reqIds: opts.reqIds,
        numbers: opts.numbers,
        timeSync: opts.timeSync,
        intervals: opts.intervals,
        reportMs: opts.reportMs ?? 250,
        ...(opts.heartbeatMs ? { heartbeatMs: opts.heartbeatMs } : {}),
        ...(opts.warmup
          ? { warmup: { url: opts.warmup.url, devices: opts.warmup.devices.slice(i * warmPer, (i + 1) * warmPer) } }
          : {}),
      });
    }
    try {
      await Promise.all(ready);
    } catch (e) {
      await c.stop();
      throw e;
    }
    return c;
  }

  get pids(): number[] {
    return this.workers.map((w) => w.child.pid ?? -1);
  }

  /** Sum of every worker's last report. */
  counts(): FleetCounts {
    const sum = { ...ZERO };
    for (const w of this.workers) for (const k of Object.keys(sum) as Array<keyof FleetCounts>) sum[k] += w.counts[k];
    return sum;
  }

  /** Resident memory of the load-generator processes, from their last report. */
  rssBytes(): number[] {
    return this.workers.map((w) => w.rssBytes);
  }

  /** Powers on every device (each worker ramps up under its own in-flight window). */
  startDevices(): void {
    for (let i = 0; i < this.workers.length; i++) this.send(i, { t: 'start' });
  }

  /** Resolves with the counts once `pred` holds; rejects after `timeoutMs` with the last counts. */
  waitUntil(pred: (c: FleetCounts) => boolean, timeoutMs: number): Promise<FleetCounts> {
    return new Promise((resolve, reject) => {
      if (pred(this.counts())) return resolve(this.counts());
      const timer = setTimeout(() => {
        off();
        reject(new Error(`fleet: condition not met in ${timeoutMs} ms; counts ${JSON.stringify(this.counts())}`));
      }, timeoutMs);
      const off = this.on('counts', (c) => {
        if (!pred(c)) return;
        off();
        clearTimeout(timer);
        resolve(c);
      });
    });
  }

  /** Closes every device and ends the worker processes (killing any that doesn't leave in 5 s). */
  async stop(): Promise<void> {
    for (let i = 0; i < this.workers.length; i++) this.send(i, { t: 'exit' });
    await Promise.all(
      this.workers.map(async (w) => {
        const t = setTimeout(() => w.child.kill('SIGKILL'), 5000);
        await w.exited;
        clearTimeout(t);
      }),
    );
  }

  private send(i: number, m: ToWorker): void {
    const w = this.workers[i];
    if (w?.child.connected) w.child.send(m);
  }

  private onMessage(i: number, m: FromWorker): void {
    const w = this.workers[i]!;
    if (m.t === 'counts') {
      w.counts = m.counts;
      w.rssBytes = m.rssBytes;
      if (m.settled.length > 0) this.emit('settled', { records: m.settled, worker: i });
      this.emit('counts', this.counts());
    } else if (m.t === 'push') {
      this.emit('push', { sn: m.sn, cmd: m.cmd, at: m.at, worker: i });
    }
  }
}
