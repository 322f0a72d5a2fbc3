import { describe, expect, it } from 'vitest';
import {
  BinaryFrameError,
  decodeBinaryReply,
  decodeBinaryRequest,
  encodeBinaryReply,
  encodeBinaryRequest,
  isRequestFrame,
  numericText,
  parseFrameText,
} from './frames.js';
import { validateLabelTemplate } from './label-template.js';
import { dynamicBindUrl, labelContent, parseScan, quectelPayload, staticBindUrl, staticLoginUrl } from './qr.js';
import { hexEquals, isFresh, signBindQr, signLoginQr, signRegister, wecomSign } from './sign.js';
import {
  CHECK_ALPHABET,
  checkChar,
  checkCharScheme,
  counterSn,
  hasValidCheckChar,
  isValidSn,
  legacyCheckChar,
  snKey,
  validateSnPattern,
} from './sn.js';

const SECRET = '58ee0d77d6b9db9fc227862eb2d01289';

describe('§A4 signatures', () => {
  // Expected values computed outside Node: printf values | LC_ALL=C sort | tr -d '\n' | sha1sum
  it('matches independently computed vectors', () => {
    expect(signRegister({ sn: 'SN001', timestamp: '1571985217', nonce: '123456' }, SECRET)).toBe(
      '40af5ab6e78ab2ee73687aefc6aaf10a8eba3ff2',
    );
    expect(signBindQr({ sn: 'ABC', timestamp: '1700000000', nonce: '18446744073709551615' }, SECRET)).toBe(
      '45a59efb84f5be519741b6a5dbce72a25725f300',
    );
    expect(signLoginQr({ sn: 'ABC', timestamp: '1700000000', nonce: '42', state: 'qrcode_login' }, SECRET)).toBe(
      '2592b790b6b7d7ebfe8d0c1c4b8945eca7635dd5',
    );
  });

  it('sorts values, not names, byte-wise', () => {
    expect(wecomSign(['b', 'a', 'B'])).toBe(wecomSign(['B', 'a', 'b']));
    expect(wecomSign(['b', 'a'])).not.toBe(wecomSign(['b', 'c']));
  });

  it('compares hex case-insensitively and rejects other lengths', () => {
    const s = '40af5ab6e78ab2ee73687aefc6aaf10a8eba3ff2';
    expect(hexEquals(s, s.toUpperCase())).toBe(true);
    expect(hexEquals(s, s.slice(0, 39))).toBe(false);
    expect(hexEquals(s, `${s.slice(0, 39)}3`)).toBe(false);
    expect(hexEquals(s, undefined as unknown as string)).toBe(false);
  });

  it('checks freshness windows both ways and refuses junk', () => {
    expect(isFresh('1000', 1300, 300)).toBe(true);
    expect(isFresh('1000', 1301, 300)).toBe(false);
    expect(isFresh('1301', 1000, 300)).toBe(false);
    expect(isFresh('-5', 0, 300)).toBe(false);
    expect(isFresh('12abc', 0, 300)).toBe(false);
  });
});

describe('§A1 frames', () => {
  it('keeps nonce and timestamp numbers as exact decimal text', () => {
    const f = parseFrameText(
      '{"cmd":"register","headers":{"req_id":"r"},"body":{"nonce":18446744073709551615,"timestamp": 1571985217,"sn":"x"}}',
    ) as {
      body: { nonce: string; timestamp: string };
    };
    expect(f.body.nonce).toBe('18446744073709551615');
    expect(f.body.timestamp).toBe('1571985217');
  });

  it('leaves other numbers and look-alikes inside strings alone', () => {
    const f = parseFrameText('{"errcode":5,"data":"\\"nonce\\":7","xnonce":3}') as Record<string, unknown>;
    expect(f).toEqual({ errcode: 5, data: '"nonce":7', xnonce: 3 });
  });

  it('numericText accepts digits as number or string only', () => {
    expect(numericText('0123')).toBe('0123');
    expect(numericText(42)).toBe('42');
    expect(numericText(1.5)).toBeNull();
    expect(numericText(-1)).toBeNull();
    expect(numericText('1e5')).toBeNull();
    expect(numericText('1'.repeat(21))).toBeNull();
    expect(numericText(null)).toBeNull();
  });

  it('recognises request frames', () => {
    expect(isRequestFrame({ cmd: 'ping', headers: { req_id: 'a' } })).toBe(true);
    expect(isRequestFrame({ cmd: 'ping', headers: { req_id: 1 } })).toBe(false);
    expect(isRequestFrame({ cmd: 'ping', headers: { req_id: 'a' }, body: [] })).toBe(false);
    expect(isRequestFrame({ headers: { req_id: 'a' } })).toBe(false);
    expect(isRequestFrame(null)).toBe(false);
  });

  it('encodes binary replies byte for byte (little-endian lengths)', () => {
    const b = encodeBinaryReply('ab', Buffer.from([9, 8, 7]));
    expect([...b]).toEqual([1, 0, 0, 0, 2, 0, 0, 0, 97, 98, 3, 0, 0, 0, 9, 8, 7]);
    expect(decodeBinaryReply(b)).toEqual({ formatVersion: 1, reqId: 'ab', data: Buffer.from([9, 8, 7]) });
  });

  it('round-trips upload_log requests and names what is truncated', () => {
    const b = encodeBinaryRequest('upload_log', 'lb_upload_log', Buffer.from('log line\n'));
    expect(b.readUInt32LE(4)).toBe(10);
    expect(decodeBinaryRequest(b)).toMatchObject({ cmd: 'upload_log', reqId: 'lb_upload_log', data: Buffer.from('log line\n') });
    expect(() => decodeBinaryRequest(b.subarray(0, b.length - 1))).toThrow(/truncated frame: data/);
    expect(() => decodeBinaryRequest(b.subarray(0, 3))).toThrow(BinaryFrameError);
    expect(() => decodeBinaryRequest(Buffer.concat([b, Buffer.from([0])]))).toThrow(/trailing/);
    const v2 = Buffer.from(b);
    v2.writeUInt32LE(2, 0);
    expect(() => decodeBinaryRequest(v2)).toThrow(/format_version/);
  });
});

describe('§A8 QR grammar', () => {
  const base = 'https://hw.example.com/';
  it('builds and parses every kind', () => {
    expect(parseScan(staticBindUrl(base, 'Ab_-9'))).toEqual({ kind: 'static_bind', hwCode: 'Ab_-9' });
    const dyn = dynamicBindUrl(base, { sn: 'S1', timestamp: '1', nonce: '2', signature: 'ff' });
    expect(dyn).toBe('https://hw.example.com/connect/hardware?sn=S1&timestamp=1&nonce=2&signature=ff&type=qrcode');
    expect(parseScan(dyn)).toMatchObject({ kind: 'dynamic_bind', sn: 'S1', nonce: '2' });
    expect(parseScan(staticLoginUrl(base, 'lc', 'st'))).toEqual({ kind: 'static_login', loginCode: 'lc', state: 'st' });
    expect(
      parseScan('https://open.work.weixin.qq.com/connect/hardware?sn=a&timestamp=1&signature=s&type=dynamic_login&state=x'),
    ).toMatchObject({
      kind: 'dynamic_login',
      state: 'x',
    });
    expect(parseScan(quectelPayload('pk1', 'SN9'))).toEqual({ kind: 'quectel', pk: 'pk1', sn: 'SN9' });
    expect(parseScan('https://x/hw/addDevice')).toEqual({ kind: 'add_device' });
    expect(parseScan('https://x/wwopen/connect/hardware/addDevice')).toEqual({ kind: 'add_device' });
    expect(parseScan('https://x/hw/f?t=bt')).toEqual({ kind: 'bluetooth_discovery' });
    expect(parseScan('https://x/hw/f?t=qr').kind).toBe('unknown');
    expect(parseScan('hello').kind).toBe('unknown');
    expect(parseScan('https://x/connect/hardware?type=qrcode&sn=a').kind).toBe('unknown');
  });

  it('renders label content by format, and checks custom templates', () => {
    const d = { pk: 'p1', sn: 'S1', hwCode: 'h' };
    expect(labelContent(base, 'wecom', null, d)).toBe('https://hw.example.com/connect/hardware?hw_code=h');
    expect(labelContent(base, 'quectel', null, d)).toBe('pk=p1&sn=S1&v=1');
    expect(labelContent(base, 'custom', 'ABC{pk}+SN={sn}ABC', d)).toBe('ABCp1+SN=S1ABC');
    expect(validateLabelTemplate('{pk}')).toEqual(['template must contain {pk} and {sn} (missing {sn})']);
    expect(validateLabelTemplate('{pk};{sn}{x}')).toEqual(['unknown placeholders: {x}']);
  });
});

describe('§B2 SN rules and check characters', () => {
  it('validates SNs', () => {
    expect(isValidSn('A'.repeat(128))).toBe(true);
    expect(isValidSn('A'.repeat(129))).toBe(false);
    expect(isValidSn('a-b')).toBe(false);
    expect(isValidSn('')).toBe(false);
    expect(snKey('AbC')).toBe('abc');
  });

  it('catches every single-character typo and adjacent transposition on a sample (P-SN-4)', () => {
    const alnum = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';
    const apart31 = (a: string, b: string) => Math.abs(alnum.indexOf(a.toUpperCase()) - alnum.indexOf(b)) === 31;
    for (const body of ['BND7Q2K9', 'BDG000018', 'X1', 'A'.repeat(40)]) {
      const sn = body + checkChar(body);
      expect(checkCharScheme(sn)).toBe('p-sn-4');
      expect(hasValidCheckChar(sn.toLowerCase())).toBe(true);
      for (let i = 0; i < sn.length; i++) {
        for (const c of alnum) {
          if (c === sn[i]!.toUpperCase() || apart31(sn[i]!, c)) continue;
          const typo = sn.slice(0, i) + c + sn.slice(i + 1);
          // A typed look-alike of the check character itself reads as the character (O → 0).
          if (i === sn.length - 1 && ({ O: '0', I: '1', L: '1', Z: '2' } as Record<string, string>)[c] === sn[i]) continue;
          expect(checkCharScheme(typo) === 'p-sn-4', `${body} ${i}:${c}`).toBe(false);
        }
      }
      for (let i = 0; i < sn.length - 1; i++) {
        if (sn[i] === sn[i + 1] || apart31(sn[i]!, sn[i + 1]!.toUpperCase())) continue;
        const swapped = sn.slice(0, i) + sn[i + 1] + sn[i] + sn.slice(i + 2);
        expect(checkCharScheme(swapped) === 'p-sn-4', `${body} swap ${i}`).toBe(false);
      }
    }
  });

  it('draws check characters without look-alikes; SNs printed with the first rule still validate', () => {
    const seen = new Set<string>();
    for (let n = 0; n < 5000; n++) seen.add(checkChar(`BDG${String(n).padStart(6, '0')}`));
    expect([...seen].sort().join('')).toBe([...CHECK_ALPHABET].sort().join(''));
    for (const ch of 'OILUZ') expect(seen.has(ch)).toBe(false);
    // Printed before P-SN-4: the Luhn mod 36 character of BDG000018 is the letter O.
    expect(legacyCheckChar('BDG000018')).toBe('O');
    expect(checkCharScheme('BDG000018O')).toBe('p-sn-3');
    expect(hasValidCheckChar('BDG000018O')).toBe(true);
    expect(hasValidCheckChar('bdg000018o')).toBe(true);
    // The same body now ends in a character from the new alphabet.
    const now = checkChar('BDG000018');
    expect(CHECK_ALPHABET.includes(now)).toBe(true);
    expect(hasValidCheckChar(`BDG000018${now}`)).toBe(true);
    // Typed look-alikes of a check character read as the character they resemble.
    const zero = Array.from({ length: 2000 }, (_, n) => `Q${n}`).find((b) => checkChar(b) === '0')!;
    expect(hasValidCheckChar(`${zero}O`)).toBe(true);
    // Either rule accepts, so some typos pass as a first-rule character: few of them.
    const body = 'BND7Q2K9';
    const sn = body + checkChar(body);
    let passed = 0;
    let total = 0;
    for (let i = 0; i < body.length; i++) {
      for (const c of '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ') {
        if (c === sn[i]) continue;
        total++;
        if (hasValidCheckChar(sn.slice(0, i) + c + sn.slice(i + 1))) passed++;
      }
    }
    expect(passed / total).toBeLessThan(0.06);
  });

  it('formats counter SNs and validates patterns', () => {
    expect(counterSn({ kind: 'counter', prefix: 'AB', width: 5 }, 42)).toBe('AB00042');
    expect(hasValidCheckChar(counterSn({ kind: 'counter', prefix: 'AB', width: 5, checkChar: true }, 42))).toBe(true);
    expect(() => counterSn({ kind: 'counter', prefix: 'AB', width: 2 }, 100)).toThrow();
    expect(validateSnPattern({ kind: 'counter', prefix: 'a-b', width: 3 })).toHaveLength(1);
    expect(validateSnPattern({ kind: 'random', prefix: '', length: 3 })).toHaveLength(1);
  });
});
