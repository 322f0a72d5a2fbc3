/**
 * Bluetooth discovery and Wi-Fi provisioning (docs/protocol.md "BT"). Pure and browser-safe: no
 * node:crypto, no Buffer, no I/O — the console imports it as `@bindery/protocol/bluetooth`. Signing
 * (MD5) lives in the SDK and the server; this module only moves bytes.
 *
 * §A9 gives the service and characteristic ids, the advert's lead bytes and lengths, the status
 * byte and the sign formula; every byte layout here beyond that is Bindery's own (BT-2, BT-5, BT-7…).
 */

// BT-1: service and characteristics (§A9).
export const BT_SERVICE = 0xfce7;
export const BT_CHAR_WRITE = 0xfcc7;
export const BT_CHAR_INDICATE = 0xfcc8;
export const BT_CHAR_READ = 0xfcc9;

const uuid16 = (n: number): string => `0000${n.toString(16).padStart(4, '0')}-0000-1000-8000-00805f9b34fb`;
export const BT_SERVICE_UUID = uuid16(BT_SERVICE);
export const BT_CHAR_WRITE_UUID = uuid16(BT_CHAR_WRITE);
export const BT_CHAR_INDICATE_UUID = uuid16(BT_CHAR_INDICATE);
export const BT_CHAR_READ_UUID = uuid16(BT_CHAR_READ);

/** BT-2: manufacturer-data company id (0xFFFF, the Bluetooth SIG's id for tests; UNCONFIRMED upstream). */
export const BT_COMPANY_ID = 0xffff;

/** BT-2: the advert's lead bytes and lengths (§A9). */
export const BT_ADV_PLAIN = 0xee;
export const BT_ADV_CHECKIN = 0xed;
export const BT_ADV_PLAIN_LENGTH = 21;
export const BT_ADV_CHECKIN_LENGTH = 25;
/** BT-2: the device id is 11 bytes: the first 11 bytes of MD5(SN) (Bindery's definition). */
export const BT_DEVICE_ID_BYTES = 11;
/** BT-4: sign = the high 64 bits (first 8 bytes) of MD5(seed ‖ decimal(nonce)). */
export const BT_SIGN_BYTES = 8;
/** BT-8: the largest assembled GATT message (keeps a device's buffer bounded). */
export const BT_MAX_MESSAGE = 1024;
export const BT_DEFAULT_MTU = 23;
/** BT-8: ATT header bytes subtracted from the MTU for a write/indication payload. */
export const BT_ATT_OVERHEAD = 3;
/** BT-6: the protocol version in the identity proof and in hello_ack. */
export const BT_VERSION = 1;

/** BT-10: error codes carried by `error` messages and by `status.error`. */
export const BtErr = {
  frame: 1, // a chunk out of order, a bad header, lengths that do not add up
  unknownType: 2,
  badValue: 3, // a field out of range (SSID length, password length, security)
  tooLarge: 4, // declared length over BT_MAX_MESSAGE
  state: 5, // a request the device cannot take in its current state
  busy: 6, // a set_wifi while the previous one is still connecting
  wifiAuth: 16, // the access point refused the password
  wifiNotFound: 17,
  wifiTimeout: 18,
  cloudUnreachable: 32, // Wi-Fi up, the Bindery server not reachable
} as const;

export class BtFormatError extends Error {
  readonly code: number;
  constructor(message: string, code: number = BtErr.frame) {
    super(message);
    this.name = 'BtFormatError';
    this.code = code;
  }
}

export type BtBindState = 'bound' | 'unbound' | 'unknown';
export interface BtStatus {
  lowBattery: boolean;
  bindState: BtBindState;
}

export interface Advertisement {
  kind: 'plain' | 'checkin';
  deviceId: string;
  status: BtStatus;
  nonce?: number;
  sign?: string;
}

export interface IdentityProof {
  version: 1;
  sn: string;
  productKey: string;
  nonce: number;
  sign: string;
  status: BtStatus;
}

// ---- bytes ---------------------------------------------------------------------------------

export function bytesToHex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

export function hexToBytes(hex: string): Uint8Array<ArrayBuffer> {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new BtFormatError('not hex', BtErr.badValue);
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Standard base64 with padding (how the console posts the 0xFCC9 value). */
export function bytesToBase64(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 3) {
    const n = (b[i]! << 16) | ((b[i + 1] ?? 0) << 8) | (b[i + 2] ?? 0);
    s += B64[(n >> 18) & 63]! + B64[(n >> 12) & 63]!;
    s += i + 1 < b.length ? B64[(n >> 6) & 63]! : '=';
    s += i + 2 < b.length ? B64[n & 63]! : '=';
  }
  return s;
}

export function base64ToBytes(s: string): Uint8Array<ArrayBuffer> {
  if (typeof s !== 'string' || s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) {
    throw new BtFormatError('not base64', BtErr.badValue);
  }
  const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
  const out = new Uint8Array((s.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < s.length; i += 4) {
    const n =
      (B64.indexOf(s[i]!) << 18) |
      (B64.indexOf(s[i + 1]!) << 12) |
      (Math.max(0, B64.indexOf(s[i + 2]!)) << 6) |
      Math.max(0, B64.indexOf(s[i + 3]!));
    if (o < out.length) out[o++] = (n >> 16) & 255;
    if (o < out.length) out[o++] = (n >> 8) & 255;
    if (o < out.length) out[o++] = n & 255;
  }
  return out;
}

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

function decodeUtf8(b: Uint8Array): string {
  try {
    return utf8Strict.decode(b);
  } catch {
    throw new BtFormatError('text is not UTF-8', BtErr.badValue);
  }
}

const isUint32 = (n: unknown): n is number => Number.isInteger(n) && (n as number) >= 0 && (n as number) <= 0xffffffff;

function writeU32(out: Uint8Array, at: number, n: number): void {
  out[at] = (n >>> 24) & 255;
  out[at + 1] = (n >>> 16) & 255;
  out[at + 2] = (n >>> 8) & 255;
  out[at + 3] = n & 255;
}

const readU32 = (b: Uint8Array, at: number): number =>
  ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;

function checkHex(name: string, v: unknown, bytes: number): Uint8Array {
  if (typeof v !== 'string' || v.length !== bytes * 2 || !/^[0-9a-f]+$/.test(v)) {
    throw new BtFormatError(`${name} must be ${bytes * 2} lowercase hex characters`, BtErr.badValue);
  }
  return hexToBytes(v);
}

// ---- status byte (BT-3) ----------------------------------------------------------------------

/** BT-3: bit 2 battery (1 = low), bits 1–0 bind state (1 bound, 2 unbound; 0 and 3 read as unknown); bits 7–3 reserved, sent 0, ignored. */
export function encodeStatus(s: BtStatus): number {
  const bind = s.bindState === 'bound' ? 1 : s.bindState === 'unbound' ? 2 : 0;
  return (s.lowBattery ? 0b100 : 0) | bind;
}

export function parseStatus(byte: number): BtStatus {
  const bind = byte & 0b11;
  return { lowBattery: (byte & 0b100) !== 0, bindState: bind === 1 ? 'bound' : bind === 2 ? 'unbound' : 'unknown' };
}

// ---- advertisement (BT-2) ----------------------------------------------------------------------

/** The manufacturer data after the company id: plain 0xEE (21 bytes, sign 0) or check-in 0xED (25 bytes). */
export function encodeAdvertisement(a: Advertisement): Uint8Array<ArrayBuffer> {
  const id = checkHex('deviceId', a.deviceId, BT_DEVICE_ID_BYTES);
  if (a.kind === 'plain') {
    const out = new Uint8Array(BT_ADV_PLAIN_LENGTH);
    out[0] = BT_ADV_PLAIN;
    out.set(id, 1);
    out[12] = encodeStatus(a.status);
    // bytes 13–20: the sign field, zero for devices that do no check-in (§A9)
    return out;
  }
  if (a.kind !== 'checkin') throw new BtFormatError('unknown advertisement kind', BtErr.badValue);
  if (!isUint32(a.nonce)) throw new BtFormatError('nonce must be a uint32', BtErr.badValue);
  const sign = checkHex('sign', a.sign, BT_SIGN_BYTES);
  const out = new Uint8Array(BT_ADV_CHECKIN_LENGTH);
  out[0] = BT_ADV_CHECKIN;
  out.set(id, 1);
  out[12] = encodeStatus(a.status);
  writeU32(out, 13, a.nonce);
  out.set(sign, 17);
  return out;
}

/** Parses manufacturer data (without the company id). Tolerant: a plain advert's sign field and status byte are not checked (BT-2). */
export function parseAdvertisement(b: Uint8Array): Advertisement {
  if (!(b instanceof Uint8Array) || b.length === 0) throw new BtFormatError('empty advertisement');
  const deviceId = () => bytesToHex(b.subarray(1, 1 + BT_DEVICE_ID_BYTES));
  if (b[0] === BT_ADV_PLAIN) {
    if (b.length !== BT_ADV_PLAIN_LENGTH) throw new BtFormatError(`a 0xEE advertisement is ${BT_ADV_PLAIN_LENGTH} bytes`);
    return { kind: 'plain', deviceId: deviceId(), status: parseStatus(b[12]!) };
  }
  if (b[0] === BT_ADV_CHECKIN) {
    if (b.length !== BT_ADV_CHECKIN_LENGTH) throw new BtFormatError(`a 0xED advertisement is ${BT_ADV_CHECKIN_LENGTH} bytes`);
    return {
      kind: 'checkin',
      deviceId: deviceId(),
      status: parseStatus(b[12]!),
      nonce: readU32(b, 13),
      sign: bytesToHex(b.subarray(17, 25)),
    };
  }
  throw new BtFormatError('not a Bindery advertisement (first byte 0xEE or 0xED)', BtErr.unknownType);
}

// ---- identity proof (BT-6) ---------------------------------------------------------------------

const SN_RE = /^[0-9A-Za-z]{1,128}$/;
const PK_RE = /^[\x21-\x7e]{1,64}$/;

/**
 * BT-6, the 0xFCC9 value: version u8 (1) | status u8 | nonce u32 BE | sign 8 bytes |
 * sn length u8 | sn ASCII | product key length u8 | product key ASCII. Nothing may follow.
 */
export function encodeIdentityProof(p: IdentityProof): Uint8Array<ArrayBuffer> {
  if (p.version !== BT_VERSION) throw new BtFormatError('unsupported proof version', BtErr.badValue);
  if (!SN_RE.test(p.sn)) throw new BtFormatError('sn must be 1–128 letters and digits', BtErr.badValue);
  if (!PK_RE.test(p.productKey)) throw new BtFormatError('productKey must be 1–64 printable ASCII', BtErr.badValue);
  if (!isUint32(p.nonce)) throw new BtFormatError('nonce must be a uint32', BtErr.badValue);
  const sign = checkHex('sign', p.sign, BT_SIGN_BYTES);
  const sn = utf8.encode(p.sn);
  const pk = utf8.encode(p.productKey);
  const out = new Uint8Array(14 + 1 + sn.length + 1 + pk.length);
  out[0] = p.version;
  out[1] = encodeStatus(p.status);
  writeU32(out, 2, p.nonce);
  out.set(sign, 6);
  out[14] = sn.length;
  out.set(sn, 15);
  out[15 + sn.length] = pk.length;
  out.set(pk, 16 + sn.length);
  return out;
}

export function parseIdentityProof(b: Uint8Array): IdentityProof {
  if (!(b instanceof Uint8Array) || b.length < 17) throw new BtFormatError('identity proof too short');
  if (b[0] !== BT_VERSION) throw new BtFormatError(`unsupported identity proof version ${b[0]}`, BtErr.badValue);
  const snLen = b[14]!;
  const pkAt = 15 + snLen;
  if (pkAt >= b.length) throw new BtFormatError('identity proof truncated');
  const pkLen = b[pkAt]!;
  if (pkAt + 1 + pkLen !== b.length) throw new BtFormatError('identity proof length does not add up');
  const sn = decodeUtf8(b.subarray(15, pkAt));
  const productKey = decodeUtf8(b.subarray(pkAt + 1));
  if (!SN_RE.test(sn)) throw new BtFormatError('identity proof sn is not a valid SN', BtErr.badValue);
  if (!PK_RE.test(productKey)) throw new BtFormatError('identity proof product key is not printable ASCII', BtErr.badValue);
  return {
    version: BT_VERSION,
    sn,
    productKey,
    nonce: readU32(b, 2),
    sign: bytesToHex(b.subarray(6, 14)),
    status: parseStatus(b[1]!),
  };
}

/** BT-4: the text that is MD5-hashed for a sign (the caller hashes: MD5 is not in browsers' SubtleCrypto). */
export const btSignInput = (seed: string, nonce: number): string => `${seed}${nonce}`;

// ---- GATT messages (BT-7, BT-9) -------------------------------------------------------------------

export type BtSecurity = 'open' | 'wpa2' | 'wpa3';
export type BtWifiState = 'idle' | 'connecting' | 'connected' | 'failed';
export type BtMessage =
  | { type: 'hello'; mtu: number }
  | { type: 'hello_ack'; version: number; mtu: number }
  | { type: 'set_wifi'; ssid: string; password: string; security: BtSecurity }
  | { type: 'get_status' }
  | { type: 'get_wifi_list' }
  | { type: 'status'; wifi: BtWifiState; cloud: 'offline' | 'online'; error?: number }
  | { type: 'wifi_list'; networks: { ssid: string; rssi: number; security: BtSecurity }[] }
  | { type: 'error'; code: number };

/** BT-9: message type bytes; 0x0_ app → device, 0x8_ device → app. */
export const BtType = {
  hello: 0x01,
  set_wifi: 0x02,
  get_status: 0x03,
  get_wifi_list: 0x04,
  hello_ack: 0x81,
  status: 0x83,
  wifi_list: 0x84,
  error: 0xff,
} as const;

const SECURITIES: readonly BtSecurity[] = ['open', 'wpa2', 'wpa3'];
const WIFI_STATES: readonly BtWifiState[] = ['idle', 'connecting', 'connected', 'failed'];
/** BT-9: at most this many networks in one wifi_list (the message stays under BT_MAX_MESSAGE). */
export const BT_MAX_NETWORKS = 20;

function checkSsid(ssid: unknown): Uint8Array {
  const b = typeof ssid === 'string' ? utf8.encode(ssid) : new Uint8Array();
  if (b.length < 1 || b.length > 32) throw new BtFormatError('SSID must be 1–32 bytes', BtErr.badValue);
  return b;
}

/** BT-9: open networks carry no password; WPA2/WPA3 passphrases are 8–63 bytes. */
export function checkWifiPassword(password: unknown, security: BtSecurity): Uint8Array {
  if (password !== undefined && typeof password !== 'string') throw new BtFormatError('password must be text', BtErr.badValue);
  const b = utf8.encode(password ?? '');
  if (security === 'open') {
    if (b.length !== 0) throw new BtFormatError('an open network takes no password', BtErr.badValue);
    return b;
  }
  if (b.length < 8 || b.length > 63) throw new BtFormatError('a WPA password is 8–63 bytes', BtErr.badValue);
  return b;
}

function securityByte(s: unknown): number {
  const i = SECURITIES.indexOf(s as BtSecurity);
  if (i < 0) throw new BtFormatError('security must be open, wpa2 or wpa3', BtErr.badValue);
  return i;
}

const u16 = (n: number): number[] => [(n >> 8) & 255, n & 255];

function checkU16(name: string, n: unknown, min = 0): number {
  if (!Number.isInteger(n) || (n as number) < min || (n as number) > 0xffff) {
    throw new BtFormatError(`${name} must be an integer ${min}–65535`, BtErr.badValue);
  }
  return n as number;
}

/** BT-9: a message's bytes (type byte, then its body), before framing. */
export function encodeBtPayload(m: BtMessage): Uint8Array<ArrayBuffer> {
  const out: number[] = [];
  switch (m.type) {
    case 'hello':
      out.push(BtType.hello, ...u16(checkU16('mtu', m.mtu, BT_DEFAULT_MTU)));
      break;
    case 'hello_ack':
      if (!Number.isInteger(m.version) || m.version < 1 || m.version > 255)
        throw new BtFormatError('bad version', BtErr.badValue);
      out.push(BtType.hello_ack, m.version, ...u16(checkU16('mtu', m.mtu, BT_DEFAULT_MTU)));
      break;
    case 'set_wifi': {
      const sec = securityByte(m.security);
      const ssid = checkSsid(m.ssid);
      const pw = checkWifiPassword(m.password, m.security);
      out.push(BtType.set_wifi, sec, ssid.length, ...ssid, pw.length, ...pw);
      break;
    }
    case 'get_status':
      out.push(BtType.get_status);
      break;
    case 'get_wifi_list':
      out.push(BtType.get_wifi_list);
      break;
    case 'status': {
      const w = WIFI_STATES.indexOf(m.wifi);
      if (w < 0 || (m.cloud !== 'online' && m.cloud !== 'offline')) throw new BtFormatError('bad status', BtErr.badValue);
      out.push(BtType.status, w, m.cloud === 'online' ? 1 : 0, ...u16(checkU16('error', m.error ?? 0)));
      break;
    }
    case 'wifi_list': {
      if (!Array.isArray(m.networks) || m.networks.length > BT_MAX_NETWORKS) {
        throw new BtFormatError(`at most ${BT_MAX_NETWORKS} networks`, BtErr.badValue);
      }
      out.push(BtType.wifi_list, m.networks.length);
      for (const n of m.networks) {
        if (!Number.isInteger(n.rssi) || n.rssi < -128 || n.rssi > 127)
          throw new BtFormatError('rssi is an int8', BtErr.badValue);
        const ssid = checkSsid(n.ssid);
        out.push(n.rssi & 255, securityByte(n.security), ssid.length, ...ssid);
      }
      break;
    }
    case 'error':
      out.push(BtType.error, ...u16(checkU16('code', m.code)));
      break;
    default:
      throw new BtFormatError('unknown message type', BtErr.unknownType);
  }
  if (out.length > BT_MAX_MESSAGE) throw new BtFormatError('message too large', BtErr.tooLarge);
  return Uint8Array.from(out);
}

/** BT-9: parses one assembled message; every byte must be accounted for. */
export function parseBtPayload(b: Uint8Array): BtMessage {
  let at = 1;
  const need = (n: number) => {
    if (at + n > b.length) throw new BtFormatError('message truncated');
  };
  const u8 = () => {
    need(1);
    return b[at++]!;
  };
  const rd16 = () => {
    need(2);
    const v = (b[at]! << 8) | b[at + 1]!;
    at += 2;
    return v;
  };
  const text = (n: number) => {
    need(n);
    const s = decodeUtf8(b.subarray(at, at + n));
    at += n;
    return s;
  };
  const security = () => {
    const s = SECURITIES[u8()];
    if (!s) throw new BtFormatError('unknown security', BtErr.badValue);
    return s;
  };
  let m: BtMessage;
  if (b.length === 0) throw new BtFormatError('empty message');
  switch (b[0]) {
    case BtType.hello:
      m = { type: 'hello', mtu: rd16() };
      break;
    case BtType.hello_ack:
      m = { type: 'hello_ack', version: u8(), mtu: rd16() };
      break;
    case BtType.set_wifi: {
      const sec = security();
      const ssid = text(u8());
      const password = text(u8());
      m = { type: 'set_wifi', ssid, password, security: sec };
      checkSsid(ssid);
      checkWifiPassword(password, sec);
      break;
    }
    case BtType.get_status:
      m = { type: 'get_status' };
      break;
    case BtType.get_wifi_list:
      m = { type: 'get_wifi_list' };
      break;
    case BtType.status: {
      const wifi = WIFI_STATES[u8()];
      const cloud = u8();
      const error = rd16();
      if (!wifi || cloud > 1) throw new BtFormatError('bad status', BtErr.badValue);
      m = { type: 'status', wifi, cloud: cloud === 1 ? 'online' : 'offline', ...(error ? { error } : {}) };
      break;
    }
    case BtType.wifi_list: {
      const count = u8();
      const networks: { ssid: string; rssi: number; security: BtSecurity }[] = [];
      for (let i = 0; i < count; i++) {
        const raw = u8();
        const rssi = raw > 127 ? raw - 256 : raw;
        const sec = security();
        networks.push({ ssid: text(u8()), rssi, security: sec });
      }
      m = { type: 'wifi_list', networks };
      break;
    }
    case BtType.error:
      m = { type: 'error', code: rd16() };
      break;
    default:
      throw new BtFormatError(`unknown message type 0x${b[0]!.toString(16)}`, BtErr.unknownType);
  }
  if (at !== b.length) throw new BtFormatError('trailing bytes after the message');
  return m;
}

// ---- framing (BT-8) ---------------------------------------------------------------------------

/** BT-8 chunk header: bit 7 first chunk, bit 6 last chunk, bits 5–0 sequence number (mod 64). */
export const BT_CHUNK_FIRST = 0x80;
export const BT_CHUNK_LAST = 0x40;

/**
 * BT-8: splits a message into chunks of at most mtu − 3 bytes: each starts with the header byte;
 * the first also carries the message length (u16 BE) so the receiver can bound its buffer.
 */
export function encodeBtMessage(m: BtMessage, mtu: number = BT_DEFAULT_MTU): Uint8Array<ArrayBuffer>[] {
  if (!Number.isInteger(mtu) || mtu < BT_DEFAULT_MTU || mtu > 517) throw new BtFormatError('mtu must be 23–517', BtErr.badValue);
  const payload = encodeBtPayload(m);
  const room = mtu - BT_ATT_OVERHEAD;
  const chunks: Uint8Array<ArrayBuffer>[] = [];
  let at = 0;
  let seq = 0;
  while (at < payload.length || chunks.length === 0) {
    const first = chunks.length === 0;
    const head = first ? 3 : 1;
    const take = Math.min(room - head, payload.length - at);
    const last = at + take >= payload.length;
    const c = new Uint8Array(head + take);
    c[0] = (first ? BT_CHUNK_FIRST : 0) | (last ? BT_CHUNK_LAST : 0) | (seq & 0x3f);
    if (first) {
      c[1] = (payload.length >> 8) & 255;
      c[2] = payload.length & 255;
    }
    c.set(payload.subarray(at, at + take), head);
    chunks.push(c);
    at += take;
    seq++;
  }
  return chunks;
}

/**
 * BT-8: reassembles chunks. A first chunk always starts a new message (a lost tail is dropped,
 * not merged); a chunk out of sequence, a continuation with no message open, or lengths that do
 * not add up throw BtFormatError and reset the assembler.
 */
export class BtFrameAssembler {
  private buf: Uint8Array | null = null;
  private filled = 0;
  private seq = 0;

  push(chunk: Uint8Array): BtMessage | null {
    try {
      return this.take(chunk);
    } catch (e) {
      this.reset();
      throw e;
    }
  }

  reset(): void {
    this.buf = null;
    this.filled = 0;
    this.seq = 0;
  }

  private take(chunk: Uint8Array): BtMessage | null {
    if (!(chunk instanceof Uint8Array) || chunk.length === 0) throw new BtFormatError('empty chunk');
    const h = chunk[0]!;
    let body: Uint8Array;
    if (h & BT_CHUNK_FIRST) {
      if (chunk.length < 3) throw new BtFormatError('first chunk shorter than its header');
      if ((h & 0x3f) !== 0) throw new BtFormatError('first chunk must have sequence 0');
      const total = (chunk[1]! << 8) | chunk[2]!;
      if (total === 0) throw new BtFormatError('empty message');
      if (total > BT_MAX_MESSAGE) throw new BtFormatError('message too large', BtErr.tooLarge);
      this.buf = new Uint8Array(total);
      this.filled = 0;
      this.seq = 0;
      body = chunk.subarray(3);
    } else {
      if (!this.buf) throw new BtFormatError('continuation chunk with no message open');
      if ((h & 0x3f) !== (this.seq + 1) % 64) throw new BtFormatError('chunk out of sequence');
      this.seq = (this.seq + 1) % 64;
      body = chunk.subarray(1);
    }
    const buf = this.buf!;
    if (this.filled + body.length > buf.length) throw new BtFormatError('chunk past the declared length');
    buf.set(body, this.filled);
    this.filled += body.length;
    if (!(h & BT_CHUNK_LAST)) {
      if (this.filled === buf.length) throw new BtFormatError('declared length reached without a last chunk');
      return null;
    }
    if (this.filled !== buf.length) throw new BtFormatError('last chunk before the declared length');
    this.reset();
    return parseBtPayload(buf);
  }
}
