import QRCode, { type QRCodeSegment } from 'qrcode';
import { describe, expect, it } from 'vitest';
import { encodeSegments } from './qr-encode.js';
import { optimalSegments, qrMatrix } from './qr-render.js';

/** What qrMatrix made before qr-encode.ts: qrcode's encoder fed with the same segments. */
function withQrcode(text: string) {
  const create = (cls: 0 | 1 | 2) => QRCode.create(optimalSegments(text, cls) as QRCodeSegment[], { errorCorrectionLevel: 'M' });
  let code = create(0);
  if (code.version >= 10) code = create(1);
  if (code.version >= 27) code = create(2);
  return code;
}

/** Deterministic texts: runs of digits, alphanumerics, URL text and multi-byte characters. */
function texts(count: number, seed: number): string[] {
  const alphabets = [
    '0123456789',
    'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 $%*+-./:',
    'abcdefghijklmnopqrstuvwxyz0123456789&=?/:.-_',
    '设备密钥✓é',
  ];
  let x = seed;
  const rnd = () => {
    x = (x * 1103515245 + 12345) >>> 0;
    return x / 2 ** 32;
  };
  return Array.from({ length: count }, (_, k) => {
    // Short texts mostly, then a spread up to ~1 800 characters (versions 1–40); texts with
    // multi-byte characters (every 7th) stay within what version 40 holds.
    const len = k < count / 2 ? 1 + (k % 120) : 1 + Math.floor(rnd() ** 2 * (k % 7 === 0 ? 600 : 1800));
    let t = '';
    while (t.length < len) {
      const a = alphabets[Math.floor(rnd() * (k % 7 === 0 ? 4 : 3))]!;
      for (let run = 1 + Math.floor(rnd() * 12); run > 0; run--) t += a[Math.floor(rnd() * a.length)];
    }
    return t;
  });
}

describe('qr-encode: level-M symbols without qrcode', () => {
  it('makes exactly the symbol qrcode makes from the same segments: version, mask and every module', () => {
    const versions = new Set<number>();
    const masks = new Set<number>();
    const samples = [
      'https://bindery.example/connect/hardware?hw_code=Q2hvb3NlIHlvdXIgb3du',
      'pk=pk5510&sn=BND00000001Z&v=1',
      ...texts(240, 16),
    ];
    for (const text of samples) {
      const want = withQrcode(text);
      const cls = want.version >= 27 ? 2 : want.version >= 10 ? 1 : 0;
      const got = encodeSegments(optimalSegments(text, cls));
      versions.add(got.version);
      masks.add(got.mask);
      expect(got.version, text).toBe(want.version);
      expect(got.mask, text).toBe(want.maskPattern);
      expect(Buffer.from(got.data).equals(Buffer.from(want.modules.data)), text).toBe(true);
      expect(Buffer.from(qrMatrix(text).data).equals(Buffer.from(want.modules.data)), text).toBe(true);
    }
    // The samples reach every mask and versions past both character-count boundaries (10, 27).
    expect(masks.size).toBe(8);
    expect(Math.max(...versions)).toBeGreaterThanOrEqual(30);
    expect(versions.has(1) && [...versions].some((v) => v >= 10 && v < 27)).toBe(true);
  });

  it('refuses text longer than version 40 holds, as qrcode does', () => {
    const text = 'x'.repeat(2400);
    expect(() => withQrcode(text)).toThrow();
    expect(() => qrMatrix(text)).toThrow(/too big/);
  });
});
