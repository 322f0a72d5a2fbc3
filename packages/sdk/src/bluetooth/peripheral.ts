import {
  BT_DEFAULT_MTU,
  BT_VERSION,
  type BtBindState,
  BtErr,
  BtFormatError,
  BtFrameAssembler,
  type BtMessage,
  type BtSecurity,
  type BtStatus,
  type BtWifiState,
  encodeBtMessage,
  encodeIdentityProof,
} from '@bindery/protocol/bluetooth';
import { systemTimers, type TimerId, type Timers } from '../time.js';
import { advertisement, btDeviceId, btSign } from './sign.js';

export interface WifiCredentials {
  ssid: string;
  password: string;
  security: BtSecurity;
}

export interface ScannedNetwork {
  ssid: string;
  rssi: number;
  security: BtSecurity;
}

export interface VirtualPeripheralOptions {
  sn: string;
  productKey: string;
  /** The seed of every sign (BT-4): the device's SecretNo. */
  secretNo: string;
  /** The last nonce used (kept in flash, BT-5); the next advert or read uses a greater one. */
  nonce?: number;
  lowBattery?: boolean;
  bindState?: BtBindState;
  /** What `get_wifi_list` answers. */
  networks?: ScannedNetwork[];
  /**
   * The access points in range, by SSID. When given, a `set_wifi` for another SSID fails with
   * `wifiNotFound` and a wrong password or security with `wifiAuth`; when absent every
   * well-formed `set_wifi` joins.
   */
  accessPoints?: Record<string, { password: string; security: BtSecurity }>;
  /** The largest MTU this peripheral agrees to in `hello_ack`. */
  maxMtu?: number;
  /** How long joining the access point takes (the status goes `connecting` meanwhile). */
  joinDelayMs?: number;
  /**
   * After a valid `set_wifi` joined: the simulator/test starts the SDK Device's WSS connection
   * here and reports back with `setCloud('online')` once it is registered.
   */
  onProvisioned?: (wifi: WifiCredentials) => void;
  /** Every nonce the peripheral uses, so a caller can keep it across restarts (BT-5). */
  onNonce?: (nonce: number) => void;
  timers?: Timers;
}

/**
 * A simulated Bindery peripheral (docs/protocol.md BT): advertises, answers the identity read
 * (0xFCC9), takes chunked writes on 0xFCC7 and answers with chunked indications on 0xFCC8. The
 * Wi-Fi state machine is idle → connecting → connected | failed; the cloud state is whatever the
 * caller reports with `setCloud` (a real device's WSS flow, or the SDK Device in tests).
 */
export class VirtualPeripheral {
  readonly sn: string;
  readonly productKey: string;
  readonly deviceId: string;
  private readonly secretNo: string;
  private readonly o: VirtualPeripheralOptions;
  private readonly timers: Timers;
  private n: number;
  private advertNonce: number;
  private mtu = BT_DEFAULT_MTU;
  private assembler = new BtFrameAssembler();
  private readonly listeners = new Set<(chunk: Uint8Array) => void>();
  private wifiState: BtWifiState = 'idle';
  private wifiError = 0;
  private cloudOnline = false;
  private joined: WifiCredentials | null = null;
  private joinTimer: TimerId | null = null;
  bindState: BtBindState;
  lowBattery: boolean;

  constructor(o: VirtualPeripheralOptions) {
    if (!o.secretNo) throw new Error('a virtual peripheral needs the SecretNo it signs with');
    this.o = o;
    this.sn = o.sn;
    this.productKey = o.productKey;
    this.secretNo = o.secretNo;
    this.deviceId = btDeviceId(o.sn);
    this.timers = o.timers ?? systemTimers;
    this.n = o.nonce ?? 0;
    this.bindState = o.bindState ?? 'unbound';
    this.lowBattery = o.lowBattery ?? false;
    this.advertNonce = this.nextNonce('advert');
  }

  /** The last nonce used. */
  get nonce(): number {
    return this.n;
  }

  get status(): BtStatus {
    return { lowBattery: this.lowBattery, bindState: this.bindState };
  }

  /** Wi-Fi and cloud state as a `status` message would report them. */
  get wifi(): { state: BtWifiState; cloud: 'online' | 'offline'; ssid: string | null; error: number } {
    return {
      state: this.wifiState,
      cloud: this.cloudOnline ? 'online' : 'offline',
      ssid: this.joined?.ssid ?? null,
      error: this.wifiError,
    };
  }

  /** The current check-in advert (manufacturer data after the company id, BT-2). */
  advertisement(): Uint8Array<ArrayBuffer> {
    return advertisement({ sn: this.sn, secretNo: this.secretNo, nonce: this.advertNonce, status: this.status, kind: 'checkin' });
  }

  /** BT-5: a new advert with a greater (odd) nonce (a real device rotates every 5 minutes). */
  rotate(): Uint8Array<ArrayBuffer> {
    this.advertNonce = this.nextNonce('advert');
    return this.advertisement();
  }

  /** BT-6: the 0xFCC9 value; every read signs a fresh (even) nonce (BT-5). */
  readIdentity(): Uint8Array<ArrayBuffer> {
    const nonce = this.nextNonce('read');
    return encodeIdentityProof({
      version: BT_VERSION,
      sn: this.sn,
      productKey: this.productKey,
      nonce,
      sign: btSign(this.secretNo, nonce),
      status: this.status,
    });
  }

  /** Subscribes to indications on 0xFCC8; returns the unsubscribe. */
  onIndicate(cb: (chunk: Uint8Array) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /** A GATT disconnect: half-received messages are dropped and the MTU falls back to 23 (BT-8). */
  disconnect(): void {
    this.assembler = new BtFrameAssembler();
    this.mtu = BT_DEFAULT_MTU;
  }

  /** One write to 0xFCC7. A malformed frame is answered with an `error` indication, never thrown (BT-10). */
  write(chunk: Uint8Array): void {
    let m: BtMessage | null;
    try {
      m = this.assembler.push(chunk);
    } catch (e) {
      this.send({ type: 'error', code: e instanceof BtFormatError ? e.code : BtErr.frame });
      return;
    }
    if (m) this.handle(m);
  }

  /** The device's cloud connection (its WSS flow) came up or went down; told to the app when it changes. */
  setCloud(state: 'online' | 'offline'): void {
    const online = state === 'online';
    if (online === this.cloudOnline) return;
    this.cloudOnline = online;
    this.sendStatus();
  }

  /** Forgets the Wi-Fi (factory reset of the network settings). */
  resetWifi(): void {
    if (this.joinTimer !== null) this.timers.clearTimeout(this.joinTimer);
    this.joinTimer = null;
    this.joined = null;
    this.wifiState = 'idle';
    this.wifiError = 0;
    this.cloudOnline = false;
  }

  /** BT-5: one increasing counter; adverts take odd values and identity reads even ones. */
  private nextNonce(use: 'advert' | 'read'): number {
    const next = this.n + 1;
    const n = next % 2 === (use === 'advert' ? 1 : 0) ? next : next + 1;
    if (n > 0xffffffff) throw new Error('nonce space exhausted');
    this.n = n;
    this.o.onNonce?.(this.n);
    return this.n;
  }

  private handle(m: BtMessage): void {
    switch (m.type) {
      case 'hello':
        // BT-8: both sides use the smaller MTU from here on.
        this.mtu = Math.max(BT_DEFAULT_MTU, Math.min(m.mtu, this.o.maxMtu ?? 185));
        this.send({ type: 'hello_ack', version: BT_VERSION, mtu: this.mtu });
        return;
      case 'get_status':
        this.sendStatus();
        return;
      case 'get_wifi_list':
        this.send({ type: 'wifi_list', networks: (this.o.networks ?? []).slice(0, 20) });
        return;
      case 'set_wifi':
        this.setWifi(m);
        return;
      default:
        // device → app messages written by the app
        this.send({ type: 'error', code: BtErr.unknownType });
    }
  }

  private setWifi(w: WifiCredentials): void {
    if (this.wifiState === 'connecting') {
      this.send({ type: 'error', code: BtErr.busy });
      return;
    }
    this.wifiState = 'connecting';
    this.wifiError = 0;
    this.cloudOnline = false;
    this.sendStatus();
    this.joinTimer = this.timers.setTimeout(() => {
      this.joinTimer = null;
      const ap = this.o.accessPoints?.[w.ssid];
      const err = !this.o.accessPoints
        ? 0
        : !ap
          ? BtErr.wifiNotFound
          : ap.security !== w.security || ap.password !== w.password
            ? BtErr.wifiAuth
            : 0;
      if (err) {
        this.wifiState = 'failed';
        this.wifiError = err;
        this.sendStatus();
        return;
      }
      this.joined = { ssid: w.ssid, password: w.password, security: w.security };
      this.wifiState = 'connected';
      this.sendStatus();
      this.o.onProvisioned?.({ ...this.joined });
    }, this.o.joinDelayMs ?? 0);
  }

  private sendStatus(): void {
    this.send({
      type: 'status',
      wifi: this.wifiState,
      cloud: this.cloudOnline ? 'online' : 'offline',
      ...(this.wifiError ? { error: this.wifiError } : {}),
    });
  }

  private send(m: BtMessage): void {
    for (const chunk of encodeBtMessage(m, this.mtu)) for (const l of [...this.listeners]) l(chunk);
  }
}
