import { createHash } from 'node:crypto';
import { parseScan } from '@bindery/protocol';
import jsqrModule from 'jsqr';
import { describe, expect, it } from 'vitest';
import { Device } from './device.js';
import { buildBindQrUrl, buildLoginQrUrl, randomNonce, renderTerminalQr } from './qr.js';
import { ManualTime } from './time.js';

// jsqr is CommonJS with an ES-style default in its types; at runtime the default import is the function.
const jsQR = ((jsqrModule as unknown as { default?: unknown }).default ?? jsqrModule) as unknown as (
  data: Uint8ClampedArray,
  width: number,
  height: number,
) => { data: string } | null;
const sha1Sorted = (values: string[]) =>
  createHash('sha1')
    .update([...values].sort().join(''))
    .digest('hex');
const SN = 'HSA1RF5A0700165';
const SECRET_NO = '58ee0d77d6b9db9fc227862eb2d01289';

/** Turns the half-block terminal drawing back into pixels and decodes it like a phone camera would. */
function decodeTerminalQr(drawing: string): string | null {
  const lines = drawing.split('\n').map((l) => l.replace(/\x1b\[[0-9;]*m/g, ''));
  const width = lines[0]!.length;
  const rows: boolean[][] = [];
  for (const l of lines.filter((x) => x.length === width)) {
    const top: boolean[] = [];
    const bottom: boolean[] = [];
    for (const ch of l) {
      top.push(ch === '▀' || ch === '█');
      bottom.push(ch === '▄' || ch === '█');
    }
    rows.push(top, bottom);
  }
  const scale = 6;
  const margin = 4;
  const w = (width + margin * 2) * scale;
  const h = (rows.length + margin * 2) * scale;
  const px = new Uint8ClampedArray(w * h * 4).fill(255);
  for (const [y, row] of rows.entries()) {
    for (const [x, black] of row.entries()) {
      if (!black) continue;
      for (let dy = 0; dy < scale; dy++) {
        for (let dx = 0; dx < scale; dx++) {
          const i = (((y + margin) * scale + dy) * w + (x + margin) * scale + dx) * 4;
          px[i] = px[i + 1] = px[i + 2] = 0;
        }
      }
    }
  }
  return jsQR(px, w, h)?.data ?? null;
}

describe('device QR builders (§A8, §A4)', () => {
  it('builds the dynamic bind URL with a signature over sn, SecretNo, timestamp, nonce and "qrcode"', () => {
    const url = buildBindQrUrl({
      publicUrl: 'https://bindery.test/',
      sn: SN,
      secretNo: SECRET_NO,
      timestampSec: 1571985217,
      nonce: '123456',
    });
    const expected = sha1Sorted([SN, SECRET_NO, '1571985217', '123456', 'qrcode']);
    expect(url).toBe(
      `https://bindery.test/connect/hardware?sn=${SN}&timestamp=1571985217&nonce=123456&signature=${expected}&type=qrcode`,
    );
    expect(parseScan(url)).toEqual({
      kind: 'dynamic_bind',
      sn: SN,
      timestamp: '1571985217',
      nonce: '123456',
      signature: expected,
      state: undefined,
    });
  });

  it('builds the dynamic login URL; the state is signed too', () => {
    const url = buildLoginQrUrl({
      publicUrl: 'https://bindery.test',
      sn: SN,
      secretNo: SECRET_NO,
      timestampSec: 1571985217.9,
      nonce: '18446744073709551615',
      state: 'qrcode_login',
    });
    const sig = sha1Sorted([SN, SECRET_NO, '1571985217', '18446744073709551615', 'dynamic_login', 'qrcode_login']);
    expect(parseScan(url)).toEqual({
      kind: 'dynamic_login',
      sn: SN,
      timestamp: '1571985217',
      nonce: '18446744073709551615',
      signature: sig,
      state: 'qrcode_login',
    });
    const other = buildLoginQrUrl({
      publicUrl: 'https://bindery.test',
      sn: SN,
      secretNo: SECRET_NO,
      timestampSec: 1571985217,
      nonce: '18446744073709551615',
      state: 'other',
    });
    expect(new URL(other).searchParams.get('signature')).not.toBe(sig);
  });

  it('makes 64-bit decimal nonces, none repeated across refills of the random pool', () => {
    const seen = new Set<string>();
    // 1 500 nonces cross the 512-nonce pool's refill twice.
    for (let i = 0; i < 1500; i++) {
      const n = randomNonce();
      expect(n).toMatch(/^\d{1,20}$/);
      expect(BigInt(n) < 2n ** 64n).toBe(true);
      seen.add(n);
    }
    expect(seen.size).toBe(1500);
  });

  it("a device signs its codes with its SecretNo and the time it learned from the server; its host comes from the gateway's", () => {
    const time = new ManualTime(1_700_000_000_000);
    const d = new Device({
      url: 'wss://hw.bindery.test/websocket',
      credentials: { sn: SN, secretNo: SECRET_NO },
      clock: time,
      timers: time,
      nonce: () => '42',
    });
    const u = new URL(d.bindQrUrl());
    expect(u.origin).toBe('https://hw.bindery.test');
    expect(u.searchParams.get('timestamp')).toBe('1700000000');
    expect(u.searchParams.get('signature')).toBe(sha1Sorted([SN, SECRET_NO, '1700000000', '42', 'qrcode']));
    const l = new URL(d.loginQrUrl('s1', 'https://console.bindery.test'));
    expect(l.origin).toBe('https://console.bindery.test');
    expect(l.searchParams.get('type')).toBe('dynamic_login');
  });

  it('draws a terminal QR that scans back to the URL', async () => {
    const url = buildBindQrUrl({
      publicUrl: 'http://127.0.0.1:8080',
      sn: SN,
      secretNo: SECRET_NO,
      timestampSec: 1700000000,
      nonce: '7',
    });
    const drawing = await renderTerminalQr(url);
    expect(decodeTerminalQr(drawing)).toBe(url);
  });
});
