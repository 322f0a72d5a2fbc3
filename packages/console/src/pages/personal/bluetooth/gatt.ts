import {
  type Advertisement,
  BT_CHAR_INDICATE_UUID,
  BT_CHAR_READ_UUID,
  BT_CHAR_WRITE_UUID,
  BT_COMPANY_ID,
  BT_SERVICE_UUID,
  BtFrameAssembler,
  type BtMessage,
  encodeBtMessage,
  parseAdvertisement,
} from '@bindery/protocol/bluetooth';

/**
 * The console's side of Bindery's GATT service (docs/protocol.md, "BT — Bluetooth discovery and
 * provisioning"): find a device, read its identity proof (0xFCC9), and talk to it in framed messages —
 * chunks written to 0xFCC7 with response, answers as indications on 0xFCC8.
 * Web Bluetooth has no types in TypeScript's DOM library, so the few members used are declared here.
 */
export interface BtCharacteristic extends EventTarget {
  value?: DataView | null;
  readValue(): Promise<DataView>;
  writeValueWithResponse(v: Uint8Array): Promise<void>;
  startNotifications(): Promise<BtCharacteristic>;
}
interface BtService {
  getCharacteristic(uuid: string): Promise<BtCharacteristic>;
}
interface BtServer {
  connected: boolean;
  connect(): Promise<BtServer>;
  disconnect(): void;
  getPrimaryService(uuid: string): Promise<BtService>;
}
export interface BtDevice extends EventTarget {
  id: string;
  name?: string | null;
  gatt?: BtServer;
}
interface AdvertisementEvent extends Event {
  device: BtDevice;
  rssi?: number;
  manufacturerData?: Map<number, DataView>;
}
interface WebBluetooth extends EventTarget {
  requestDevice(o: {
    filters: Array<{ services?: string[] }>;
    optionalServices?: string[];
    optionalManufacturerData?: number[];
  }): Promise<BtDevice>;
  requestLEScan?(o: { filters?: Array<{ services?: string[] }>; acceptAllAdvertisements?: boolean }): Promise<{
    stop(): void;
  }>;
}

export function webBluetooth(): WebBluetooth | null {
  const b = (navigator as Navigator & { bluetooth?: WebBluetooth }).bluetooth;
  return b && typeof b.requestDevice === 'function' ? b : null;
}

/** The browser's device picker, limited to Bindery's service; the company id lets the page read adverts. */
export function pickDevice(bt: WebBluetooth): Promise<BtDevice> {
  return bt.requestDevice({
    filters: [{ services: [BT_SERVICE_UUID] }],
    optionalManufacturerData: [BT_COMPANY_ID],
  });
}

export interface SeenAdvert {
  device: BtDevice;
  advert: Advertisement;
  rssi: number | null;
}

/**
 * Live adverts where the browser has `requestLEScan` (Chrome behind a flag): Bindery's adverts only,
 * parsed (device id, bound/unbound, battery). Returns the stop function; null when scanning is absent.
 */
export async function scanAdverts(bt: WebBluetooth, onAdvert: (a: SeenAdvert) => void): Promise<(() => void) | null> {
  if (typeof bt.requestLEScan !== 'function') return null;
  const listener = (e: Event) => {
    const ev = e as AdvertisementEvent;
    const data = ev.manufacturerData?.get(BT_COMPANY_ID);
    if (!data) return;
    try {
      const advert = parseAdvertisement(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      onAdvert({ device: ev.device, advert, rssi: typeof ev.rssi === 'number' ? ev.rssi : null });
    } catch {
      // Not one of ours (same company id, other layout): not listed.
    }
  };
  bt.addEventListener('advertisementreceived', listener);
  const scan = await bt.requestLEScan({ filters: [{ services: [BT_SERVICE_UUID] }] });
  return () => {
    bt.removeEventListener('advertisementreceived', listener);
    scan.stop();
  };
}

/** A refusal the device sent (`{type:'error', code}`); codes are the BT error table in docs/protocol.md. */
export class DeviceRefused extends Error {
  constructor(readonly code: number) {
    super(`device error ${code}`);
  }
}

const bytes = (v: DataView) => new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));

/** One connected device: the identity read and the framed conversation over write/indicate. */
export class GattLink {
  private assembler = new BtFrameAssembler();
  private listeners = new Set<(m: BtMessage) => void>();
  private failures = new Set<(e: unknown) => void>();
  private started = false;
  // Web Bluetooth refuses a second GATT operation while one is running: writes go one at a time.
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly device: BtDevice,
    private server: BtServer,
    private readChar: BtCharacteristic,
    private writeChar: BtCharacteristic,
    private indicateChar: BtCharacteristic,
  ) {}

  static async connect(device: BtDevice): Promise<GattLink> {
    if (!device.gatt) throw new Error('no GATT server');
    const server = await device.gatt.connect();
    const svc = await server.getPrimaryService(BT_SERVICE_UUID);
    const [r, w, i] = await Promise.all([
      svc.getCharacteristic(BT_CHAR_READ_UUID),
      svc.getCharacteristic(BT_CHAR_WRITE_UUID),
      svc.getCharacteristic(BT_CHAR_INDICATE_UUID),
    ]);
    return new GattLink(device, server, r, w, i);
  }

  get connected(): boolean {
    return this.server.connected;
  }

  /** The identity proof (0xFCC9): every read makes the device count its nonce up. */
  async readIdentity(): Promise<Uint8Array> {
    return bytes(await this.serial(() => this.readChar.readValue()));
  }

  /** Every complete message from the device; returns the unsubscribe function. */
  onMessage(cb: (m: BtMessage) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /** Sends a message and waits for the first answer of one of `expect` (or the device's error). */
  async request<T extends BtMessage['type']>(
    msg: BtMessage,
    expect: T[],
    timeoutMs = 15_000,
  ): Promise<Extract<BtMessage, { type: T }>> {
    await this.subscribe();
    return new Promise((resolve, reject) => {
      const done = () => {
        off();
        this.failures.delete(fail);
        clearTimeout(timer);
      };
      const fail = (e: unknown) => {
        done();
        reject(e);
      };
      const off = this.onMessage((m) => {
        if (m.type === 'error') fail(new DeviceRefused(m.code));
        else if ((expect as string[]).includes(m.type)) {
          done();
          resolve(m as Extract<BtMessage, { type: T }>);
        }
      });
      this.failures.add(fail);
      const timer = setTimeout(() => fail(new Error('timeout')), timeoutMs);
      this.send(msg).catch(fail);
    });
  }

  /** Writes one message, chunk by chunk (the default MTU: Web Bluetooth does not say the negotiated one). */
  async send(msg: BtMessage): Promise<void> {
    await this.subscribe();
    for (const chunk of encodeBtMessage(msg)) await this.serial(() => this.writeChar.writeValueWithResponse(chunk));
  }

  disconnect(): void {
    if (this.server.connected) this.server.disconnect();
  }

  private async subscribe(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.indicateChar.addEventListener('characteristicvaluechanged', (e) => {
      const v = (e.target as BtCharacteristic).value;
      if (!v) return;
      try {
        const m = this.assembler.push(bytes(v));
        if (m) for (const l of [...this.listeners]) l(m);
      } catch (x) {
        // A broken frame: start clean, and fail whoever is waiting rather than let them time out.
        this.assembler = new BtFrameAssembler();
        for (const f of [...this.failures]) f(x);
      }
    });
    await this.serial(() => this.indicateChar.startNotifications());
  }

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.queue.then(op, op);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
