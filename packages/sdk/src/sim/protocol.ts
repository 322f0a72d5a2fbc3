import type { DeviceIntervals } from '../device.js';
import type { FleetCounts, FleetDeviceSpec, SimUpgradeOptions } from './fleet.js';

/** Messages between a FleetCluster and its worker processes (JSON over the fork IPC channel). */

/** `sdk`: full SDK devices. `raw`: bare sockets that connect and stay idle (the baseline load). */
export type WorkerMode = 'sdk' | 'raw';

export interface WorkerInit {
  t: 'init';
  index: number;
  url: string;
  devices: FleetDeviceSpec[];
  mode: WorkerMode;
  localAddresses: string[];
  maxInFlight: number;
  firmwareVersion: string;
  upgrade?: SimUpgradeOptions;
  reqIds?: 'unique' | 'fixed';
  numbers?: 'string' | 'number';
  timeSync?: 'connect' | 'on-demand';
  intervals?: Partial<DeviceIntervals>;
  reportMs: number;
  /** Raw mode: each socket sends a ping text frame this often (spread evenly), like a device's heartbeat. */
  heartbeatMs?: number;
  /** Run these devices' flow against `url` to the end, then close them, before answering `ready`. */
  warmup?: { url: string; devices: FleetDeviceSpec[] };
}

export type ToWorker = WorkerInit | { t: 'start' } | { t: 'stop' } | { t: 'exit' };

/** One device that reached its first stable state: [state, ms since it was started, wall-clock time]. */
export type SettledRecord = [state: 'subscribed' | 'waiting', ms: number, at: number];

export type FromWorker =
  | { t: 'ready'; pid: number }
  | { t: 'counts'; counts: FleetCounts; settled: SettledRecord[]; rssBytes: number }
  | { t: 'push'; sn: string; cmd: string; at: number }
  | { t: 'stopped' }
  | { t: 'fatal'; message: string };

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
export const hiResClock = { now: (): number => performance.timeOrigin + performance.now() };

/** Sockets one load-generator process may hold: the 20 000 open-file limit, minus headroom. */
export const MAX_SOCKETS_PER_PROCESS = 19_900;
