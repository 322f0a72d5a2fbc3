import {
  BtErr,
  BtFrameAssembler,
  type BtMessage,
  bytesToHex,
  encodeBtMessage,
  hexToBytes,
  parseAdvertisement,
  parseIdentityProof,
} from '@bindery/protocol/bluetooth';
import vectors from '@bindery/protocol/test-vectors/bluetooth.json' with { type: 'json' };
import { describe, expect, it } from 'vitest';
import { ManualTime } from '../time.js';
import { VirtualPeripheral, type VirtualPeripheralOptions } from './peripheral.js';
import { advertisement, btDeviceId, btSign } from './sign.js';

const SEED = vectors.proofs[0]!.seed;

/** An app's side of the GATT link: writes messages, collects the indicated messages. */
function link(p: VirtualPeripheral, mtu = 23) {
  const got: BtMessage[] = [];
  const chunkSizes: number[] = [];
  const asm = new BtFrameAssembler();
  p.onIndicate((c) => {
    chunkSizes.push(c.length);
    const m = asm.push(c);
    if (m) got.push(m);
  });
  const send = (m: BtMessage) => {
    for (const c of encodeBtMessage(m, mtu)) p.write(c);
  };
  return { got, chunkSizes, send };
}

function peripheral(o: Partial<VirtualPeripheralOptions> = {}, time = new ManualTime()) {
  return new VirtualPeripheral({ sn: 'BT0000000001', productKey: 'pk_bt_demo', secretNo: SEED, timers: time, ...o });
}

describe('BT-4 sign and BT-2 device id (shared vectors)', () => {
  it('matches every sign vector', () => {
    for (const v of vectors.signs) expect(btSign(v.seed, v.nonce)).toBe(v.sign);
  });
  it('matches every device id vector', () => {
    for (const v of vectors.deviceIds) expect(btDeviceId(v.sn)).toBe(v.deviceId);
  });
  it('builds the vector adverts', () => {
    const v = vectors.adverts[1]!;
    const bytes = advertisement({
      sn: 'BT0000000001',
      secretNo: SEED,
      nonce: 43,
      status: { lowBattery: true, bindState: 'bound' },
    });
    expect(bytesToHex(bytes)).toBe(v.hex);
    expect(bytesToHex(advertisement({ sn: 'BT0000000001' }))).toBe(vectors.adverts[0]!.hex);
  });
});

describe('VirtualPeripheral', () => {
  it('signs identity reads with fresh, increasing nonces: even for reads, odd for adverts (BT-5, BT-6)', () => {
    const nonces: number[] = [];
    const p = peripheral({ nonce: 42, onNonce: (n) => nonces.push(n) });
    const first = parseIdentityProof(p.readIdentity());
    const second = parseIdentityProof(p.readIdentity());
    expect(first.sign).toBe(btSign(SEED, first.nonce));
    expect(first).toMatchObject({ sn: 'BT0000000001', productKey: 'pk_bt_demo', status: { bindState: 'unbound' } });
    const adv = parseAdvertisement(p.rotate());
    expect(adv.sign).toBe(btSign(SEED, adv.nonce!));
    // the first advert at power-on (43), two reads, one rotation
    expect(nonces).toEqual([43, 44, 46, 47]);
    expect([first.nonce, second.nonce, adv.nonce]).toEqual([44, 46, 47]);
    // the vector proof is what the peripheral reads first after nonce 41 (advert 43, read 44)
    expect(bytesToHex(peripheral({ nonce: 41 }).readIdentity())).toBe(vectors.proofs[0]!.hex);
  });

  it('handshakes, lists networks and joins Wi-Fi; the cloud state follows setCloud', () => {
    const time = new ManualTime();
    const provisioned: unknown[] = [];
    const p = peripheral(
      {
        networks: [{ ssid: 'lab', rssi: -40, security: 'wpa2' }],
        accessPoints: { lab: { password: 'correct horse', security: 'wpa2' } },
        joinDelayMs: 1500,
        onProvisioned: (w) => provisioned.push(w),
      },
      time,
    );
    const app = link(p, 185);
    app.send({ type: 'hello', mtu: 185 });
    app.send({ type: 'get_wifi_list' });
    app.send({ type: 'set_wifi', ssid: 'lab', password: 'correct horse', security: 'wpa2' });
    expect(app.got).toEqual([
      { type: 'hello_ack', version: 1, mtu: 185 },
      { type: 'wifi_list', networks: [{ ssid: 'lab', rssi: -40, security: 'wpa2' }] },
      { type: 'status', wifi: 'connecting', cloud: 'offline' },
    ]);
    // a second set_wifi while joining is refused
    app.send({ type: 'set_wifi', ssid: 'lab', password: 'correct horse', security: 'wpa2' });
    expect(app.got.at(-1)).toEqual({ type: 'error', code: BtErr.busy });
    expect(provisioned).toEqual([]);
    time.advance(1500);
    expect(app.got.at(-1)).toEqual({ type: 'status', wifi: 'connected', cloud: 'offline' });
    expect(provisioned).toEqual([{ ssid: 'lab', password: 'correct horse', security: 'wpa2' }]);
    p.setCloud('online');
    expect(app.got.at(-1)).toEqual({ type: 'status', wifi: 'connected', cloud: 'online' });
    app.send({ type: 'get_status' });
    expect(app.got.at(-1)).toEqual({ type: 'status', wifi: 'connected', cloud: 'online' });
  });

  it('reports a wrong password or unknown SSID as failed, with the error code', () => {
    const time = new ManualTime();
    const p = peripheral({ accessPoints: { lab: { password: 'correct horse', security: 'wpa2' } } }, time);
    const app = link(p);
    app.send({ type: 'set_wifi', ssid: 'lab', password: 'wrong password', security: 'wpa2' });
    time.advance(0);
    expect(app.got.at(-1)).toEqual({ type: 'status', wifi: 'failed', cloud: 'offline', error: BtErr.wifiAuth });
    app.send({ type: 'set_wifi', ssid: 'elsewhere', password: '', security: 'open' });
    time.advance(0);
    expect(app.got.at(-1)).toEqual({ type: 'status', wifi: 'failed', cloud: 'offline', error: BtErr.wifiNotFound });
  });

  it('answers malformed writes with error indications and keeps working (BT-10)', () => {
    const p = peripheral();
    const app = link(p);
    for (const v of vectors.invalid.chunkSequences) for (const c of v.chunks) p.write(hexToBytes(c));
    expect(app.got.length).toBeGreaterThanOrEqual(vectors.invalid.chunkSequences.length);
    expect(app.got.every((m) => m.type === 'error')).toBe(true);
    app.send({ type: 'hello_ack', version: 1, mtu: 23 });
    expect(app.got.at(-1)).toEqual({ type: 'error', code: BtErr.unknownType });
    app.send({ type: 'get_status' });
    expect(app.got.at(-1)).toEqual({ type: 'status', wifi: 'idle', cloud: 'offline' });
  });

  it('indicates in chunks that fit the default MTU until hello raises it (BT-8)', () => {
    const networks = Array.from({ length: 8 }, (_, i) => ({ ssid: `network-number-${i}`, rssi: -50, security: 'wpa2' as const }));
    const p = peripheral({ networks });
    const app = link(p);
    app.send({ type: 'get_wifi_list' });
    expect(app.got.at(-1)).toEqual({ type: 'wifi_list', networks });
    expect(Math.max(...app.chunkSizes)).toBeLessThanOrEqual(20);
    p.disconnect();
    app.chunkSizes.length = 0;
    app.send({ type: 'hello', mtu: 100 });
    app.send({ type: 'get_wifi_list' });
    expect(Math.max(...app.chunkSizes)).toBe(97);
  });
});
