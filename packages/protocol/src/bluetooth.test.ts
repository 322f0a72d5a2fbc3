import { describe, expect, it } from 'vitest';
import vectors from '../test-vectors/bluetooth.json' with { type: 'json' };
import {
  type Advertisement,
  BT_CHAR_READ_UUID,
  BT_MAX_MESSAGE,
  BT_SERVICE_UUID,
  BtErr,
  BtFormatError,
  BtFrameAssembler,
  type BtMessage,
  base64ToBytes,
  bytesToBase64,
  bytesToHex,
  encodeAdvertisement,
  encodeBtMessage,
  encodeIdentityProof,
  encodeStatus,
  hexToBytes,
  type IdentityProof,
  parseAdvertisement,
  parseIdentityProof,
  parseStatus,
} from './bluetooth.js';

const assemble = (chunks: Uint8Array[]): BtMessage[] => {
  const a = new BtFrameAssembler();
  const out: BtMessage[] = [];
  for (const c of chunks) {
    const m = a.push(c);
    if (m) out.push(m);
  }
  return out;
};

describe('BT-1 ids', () => {
  it('expands the 16-bit ids to full UUIDs', () => {
    expect(BT_SERVICE_UUID).toBe('0000fce7-0000-1000-8000-00805f9b34fb');
    expect(BT_CHAR_READ_UUID).toBe('0000fcc9-0000-1000-8000-00805f9b34fb');
  });
});

describe('BT-3 status byte', () => {
  it('reads battery and bind state; ignores reserved bits; 0 and 3 are unknown', () => {
    expect(parseStatus(0x02)).toEqual({ lowBattery: false, bindState: 'unbound' });
    expect(parseStatus(0xf9)).toEqual({ lowBattery: false, bindState: 'bound' });
    expect(parseStatus(0x04)).toEqual({ lowBattery: true, bindState: 'unknown' });
    expect(parseStatus(0x07).bindState).toBe('unknown');
    expect(encodeStatus({ lowBattery: true, bindState: 'bound' })).toBe(0x05);
  });
});

describe('BT-2 advertisement', () => {
  it('matches the shared vectors both ways', () => {
    for (const v of vectors.adverts) {
      expect(bytesToHex(encodeAdvertisement(v.advertisement as Advertisement))).toBe(v.hex);
      expect(parseAdvertisement(hexToBytes(v.hex))).toEqual(v.advertisement);
    }
    // §A9: a plain advert is 21 bytes, 0xEE, status 0x02, sign zero
    expect(vectors.adverts[0]!.hex).toMatch(/^ee[0-9a-f]{22}020{16}$/);
    expect(vectors.adverts[1]!.hex.length).toBe(50);
  });
  it('refuses malformed adverts with BtFormatError', () => {
    for (const v of vectors.invalid.adverts) {
      expect(() => parseAdvertisement(hexToBytes(v.hex)), v.why).toThrow(BtFormatError);
    }
    expect(() =>
      encodeAdvertisement({
        kind: 'checkin',
        deviceId: '00'.repeat(11),
        status: parseStatus(2),
        nonce: -1,
        sign: '0'.repeat(16),
      }),
    ).toThrow(BtFormatError);
    expect(() => encodeAdvertisement({ kind: 'plain', deviceId: 'AB'.repeat(11), status: parseStatus(2) })).toThrow(
      BtFormatError,
    );
  });
});

describe('BT-6 identity proof', () => {
  it('matches the shared vectors both ways, and base64', () => {
    for (const v of vectors.proofs) {
      const bytes = encodeIdentityProof(v.proof as IdentityProof);
      expect(bytesToHex(bytes)).toBe(v.hex);
      expect(bytesToBase64(bytes)).toBe(v.base64);
      expect(bytesToHex(base64ToBytes(v.base64))).toBe(v.hex);
      expect(parseIdentityProof(bytes)).toEqual(v.proof);
    }
  });
  it('refuses malformed proofs', () => {
    for (const v of vectors.invalid.proofs) {
      expect(() => parseIdentityProof(hexToBytes(v.hex)), v.why).toThrow(BtFormatError);
    }
    expect(() => base64ToBytes('not base64!')).toThrow(BtFormatError);
    const p = vectors.proofs[0]!.proof as IdentityProof;
    expect(() => encodeIdentityProof({ ...p, sn: 'has space' })).toThrow(BtFormatError);
    expect(() => encodeIdentityProof({ ...p, nonce: 2 ** 32 })).toThrow(BtFormatError);
  });
  it('base64 round-trips every length', () => {
    for (let n = 0; n < 10; n++) {
      const b = Uint8Array.from({ length: n }, (_, i) => (i * 97 + 13) & 255);
      expect(bytesToBase64(b)).toBe(Buffer.from(b).toString('base64'));
      expect(base64ToBytes(bytesToBase64(b))).toEqual(b);
    }
  });
});

describe('BT-8/BT-9 messages and framing', () => {
  it('matches the shared chunk vectors and reassembles them', () => {
    for (const v of vectors.messages) {
      const chunks = encodeBtMessage(v.message as BtMessage, v.mtu);
      expect(chunks.map(bytesToHex)).toEqual(v.chunks);
      for (const c of chunks) expect(c.length).toBeLessThanOrEqual(v.mtu - 3);
      expect(assemble(v.chunks.map(hexToBytes))).toEqual([v.message]);
    }
  });
  it('refuses bad chunk sequences and resets after them', () => {
    for (const v of vectors.invalid.chunkSequences) {
      const a = new BtFrameAssembler();
      expect(() => {
        for (const c of v.chunks) a.push(hexToBytes(c));
      }, v.why).toThrow(BtFormatError);
      // the assembler takes a fresh message after an error
      expect(a.push(hexToBytes('c0000103'))).toEqual({ type: 'get_status' });
    }
  });
  it('a new first chunk drops a half-received message', () => {
    const a = new BtFrameAssembler();
    const long = encodeBtMessage({ type: 'set_wifi', ssid: 'x'.repeat(32), password: 'y'.repeat(63), security: 'wpa2' });
    expect(a.push(long[0]!)).toBeNull();
    expect(a.push(encodeBtMessage({ type: 'get_wifi_list' })[0]!)).toEqual({ type: 'get_wifi_list' });
  });
  it('sequence numbers wrap past 63 for large MTU-23 messages', () => {
    const networks = Array.from({ length: 20 }, (_, i) => ({
      ssid: `net-${i}-`.padEnd(32, 'z'),
      rssi: -30 - i,
      security: 'wpa2' as const,
    }));
    const chunks = encodeBtMessage({ type: 'wifi_list', networks });
    expect(chunks.length).toBeGreaterThan(35);
    expect(assemble(chunks)).toEqual([{ type: 'wifi_list', networks }]);
  });
  it('validates fields with coded errors', () => {
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as BtFormatError).code;
      }
      return null;
    };
    expect(code(() => encodeBtMessage({ type: 'set_wifi', ssid: '', password: 'abcdefgh', security: 'wpa2' }))).toBe(
      BtErr.badValue,
    );
    expect(code(() => encodeBtMessage({ type: 'set_wifi', ssid: 'a', password: 'short', security: 'wpa2' }))).toBe(
      BtErr.badValue,
    );
    expect(code(() => encodeBtMessage({ type: 'set_wifi', ssid: 'a', password: 'x', security: 'open' }))).toBe(BtErr.badValue);
    expect(code(() => encodeBtMessage({ type: 'set_wifi', ssid: 'a'.repeat(33), password: '', security: 'open' }))).toBe(
      BtErr.badValue,
    );
    expect(code(() => encodeBtMessage({ type: 'get_status' }, 22))).toBe(BtErr.badValue);
    expect(code(() => new BtFrameAssembler().push(hexToBytes('c00401')))).toBe(BtErr.tooLarge);
    expect(code(() => new BtFrameAssembler().push(hexToBytes('c0000177')))).toBe(BtErr.unknownType);
    expect(BT_MAX_MESSAGE).toBe(1024);
  });
});
