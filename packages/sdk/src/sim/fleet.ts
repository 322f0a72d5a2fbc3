import { encodeBtMessage } from '@bindery/protocol/bluetooth';
import { provisionableDevice } from '../bluetooth/device-link.js';
import type { ScannedNetwork, VirtualPeripheral, WifiCredentials } from '../bluetooth/peripheral.js';
import { Device, type DeviceOptions } from '../device.js';
import { type DeviceCredentials, TypedEmitter } from '../events.js';
import { type Clock, systemClock, systemTimers, type Timers } from '../time.js';
import { wsSocketFactory } from '../transport.js';
import { attachUpgrader, type UpgradeOptions } from '../upgrade.js';

/** Upgrade behaviour that crosses to worker processes (numbers only). */
export type SimUpgradeOptions = Omit<UpgradeOptions, 'random' | 'fetch'>;

/** One simulated device: what its flash holds at power-on. */
export type FleetDeviceSpec = DeviceCredentials;

/** Live counts. `errors` and the other totals are cumulative since start. */
export interface FleetCounts {
  total: number;
  /** Devices told to power on so far (the fleet ramps up under `maxInFlight`). */
  started: number;
  /** Sockets open now. */
  connected: number;
  /** Polling `active`: registered, not bound yet. */
  waiting: number;
  subscribed: number;
  /** Disconnected, waiting out a backoff delay. */
  reconnecting: number;
  /** Protocol errors, flow restarts and lost connections (the three below). */
  errors: number;
  protocolErrors: number;
  /** Flow restarts on 600004/600014/600016/600020 (§A7). */
  restarts: number;
  /** Connections lost or refused. */
  lost: number;
  pushes: number;
}

export interface FleetOptions {
  url: string;
  devices: readonly FleetDeviceSpec[];
  /** Source addresses to spread sockets over (127.0.0.2, …), so no single one runs out of ports. */
  localAddresses?: readonly string[];
  /**
   * At most this many devices between power-on and their first stable state (subscribed or
   * waiting for a binding). A real fleet's boots are spread out; a closed window stops the load
   * generator from opening 20 000 handshakes at once and measuring SYN retries instead.
   */
  maxInFlight?: number;
  firmwareVersion?: string;
  /** Devices really upgrade on push_update_firmware, with these failure rates (docs/ota.md). */
  upgrade?: SimUpgradeOptions;
  /**
   * Devices start offline and stay so until provisioned over Bluetooth: each gets a
   * VirtualPeripheral (`fleet.peripheral(sn)`, docs/protocol.md BT) and powers on its WSS flow once
   * a `set_wifi` joins. Needs every device's SecretNo (it signs the identity proof).
   */
  offlineUntilProvisioned?: {
    productKey: string;
    networks?: ScannedNetwork[];
    accessPoints?: Record<string, Omit<WifiCredentials, 'ssid'>>;
  };
  /** Anything else for every device (intervals, req_id style, number encoding). */
  device?: Partial<Omit<DeviceOptions, 'url' | 'credentials'>>;
  clock?: Clock;
  timers?: Timers;
}

export interface FleetEvents {
  /** A device reached its first stable state; `ms` since the fleet started it. */
  settled: { sn: string; state: 'subscribed' | 'waiting'; ms: number };
  push: { sn: string; cmd: string; at: number };
  counts: FleetCounts;
}

/**
 * N devices in one process, each a real SDK `Device` on its own `ws` socket. Devices are started
 * in order, keeping at most `maxInFlight` of them mid-flow; once every device has been started
 * the window no longer matters (a device that reconnects later does so on its own backoff).
 */
export class Fleet extends TypedEmitter<FleetEvents> {
  readonly devices: Device[] = [];
  private readonly bySn = new Map<string, Device>();
  private readonly peripherals = new Map<string, VirtualPeripheral>();
  private provisioned = 0;
  private readonly opts: FleetOptions;
  private readonly clock: Clock;
  private next = 0;
  private inFlight = 0;
  private protocolErrors = 0;
  private restarts = 0;
  private lost = 0;
  private pushes = 0;
  private stopped = false;
  private readonly startedAt: number[] = [];

  constructor(opts: FleetOptions) {
    super();
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
    const addrs = opts.localAddresses?.length ? opts.localAddresses : [undefined];
    const factories = addrs.map((a) => wsSocketFactory(a ? { localAddress: a } : {}));
    opts.devices.forEach((spec, i) => {
      const d = new Device({
        ...opts.device,
        url: opts.url,
        credentials: spec,
        firmwareVersion: opts.firmwareVersion ?? opts.device?.firmwareVersion ?? '1.0.0',
        clock: this.clock,
        timers: opts.timers ?? systemTimers,
        socketFactory: factories[i % factories.length],
      });
      this.watch(d, i);
      if (opts.upgrade) attachUpgrader(d, opts.upgrade);
      const offline = opts.offlineUntilProvisioned;
      if (offline) {
        const { productKey, networks, accessPoints } = offline;
        const p = provisionableDevice(d, {
          productKey,
          ...(networks ? { networks } : {}),
          ...(accessPoints ? { accessPoints } : {}),
          timers: opts.timers ?? systemTimers,
          onProvisioned: () => {
            // Powered on by its provisioning, outside the start window (fill()).
            this.startedAt[i] = this.clock.now();
            this.inFlight++;
            this.provisioned++;
          },
        });
        this.peripherals.set(spec.sn, p);
      }
      this.devices.push(d);
      this.bySn.set(spec.sn, d);
    });
  }

  device(sn: string): Device | undefined {
    return this.bySn.get(sn);
  }

  /** With `offlineUntilProvisioned`: the device's Bluetooth side, for a test or a person's phone double. */
  peripheral(sn: string): VirtualPeripheral | undefined {
    return this.peripherals.get(sn);
  }

  /** Does what a phone does over Bluetooth (BT-9): writes `set_wifi` to the device's peripheral. */
  provision(sn: string, wifi: WifiCredentials): void {
    const p = this.peripherals.get(sn);
    if (!p) throw new Error(`device ${sn} is not waiting to be provisioned`);
    for (const chunk of encodeBtMessage({ type: 'set_wifi', ...wifi })) p.write(chunk);
  }

  start(): void {
    this.stopped = false;
    this.fill();
  }

  stop(): void {
    this.stopped = true;
    for (const d of this.devices) d.stop();
  }

  counts(): FleetCounts {
    const c: FleetCounts = {
      total: this.devices.length,
      started: this.next + this.provisioned,
      connected: 0,
      waiting: 0,
      subscribed: 0,
      reconnecting: 0,
      errors: this.protocolErrors + this.restarts + this.lost,
      protocolErrors: this.protocolErrors,
      restarts: this.restarts,
      lost: this.lost,
      pushes: this.pushes,
    };
    for (const d of this.devices) {
      if (d.connected) c.connected++;
      if (d.state === 'ready') c.subscribed++;
      else if (d.waiting) c.waiting++;
      else if (d.state === 'backoff') c.reconnecting++;
    }
    return c;
  }

  private fill(): void {
    // Offline devices power on when provisioned, not here.
    if (this.opts.offlineUntilProvisioned) return;
    const max = this.opts.maxInFlight ?? Number.POSITIVE_INFINITY;
    while (!this.stopped && this.next < this.devices.length && this.inFlight < max) {
      const i = this.next++;
      this.inFlight++;
      this.startedAt[i] = this.clock.now();
      this.devices[i]!.start();
    }
  }

  private watch(d: Device, i: number): void {
    let settled = false;
    const settle = (state: 'subscribed' | 'waiting') => {
      if (settled) return;
      settled = true;
      this.inFlight--;
      this.emit('settled', { sn: d.sn, state, ms: this.clock.now() - (this.startedAt[i] ?? 0) });
      this.fill();
    };
    d.on('subscribed', () => settle('subscribed'));
    d.on('waiting_for_binding', () => settle('waiting'));
    d.on('protocol_error', () => this.protocolErrors++);
    d.on('restart', () => this.restarts++);
    d.on('disconnected', () => {
      if (!this.stopped) this.lost++;
    });
    d.on('push', (p) => {
      this.pushes++;
      this.emit('push', { sn: d.sn, cmd: p.cmd, at: this.clock.now() });
    });
  }
}
