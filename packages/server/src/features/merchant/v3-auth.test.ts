import { createPublicKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { rfc3339 } from './merchant.service.js';
import { FLEET_BLOCK, locate } from './merchant-fleet.js';
import { parseAuthorization, requestMessage, sign, signInformation, verifySignature } from './v3-auth.js';
import { createSelfSignedCertificate, newCertificateSerial, readCertificate } from './x509.js';

describe('Authorization header parsing (§A1)', () => {
  const params = { mchid: '1900000001', nonce_str: 'n0nce', timestamp: '1554208460', serial_no: 'ABC123', signature: 'c2ln+/=' };

  it('reads the five parameters by key, in either client order', () => {
    const axiosOrder = `WECHATPAY2-SHA256-RSA2048 mchid="1900000001",serial_no="ABC123",timestamp="1554208460",nonce_str="n0nce",signature="c2ln+/="`;
    const nodeV3Order = `WECHATPAY2-SHA256-RSA2048 mchid="1900000001",nonce_str="n0nce",timestamp="1554208460",serial_no="ABC123",signature="c2ln+/="`;
    expect(parseAuthorization(axiosOrder)).toEqual({ ok: true, params });
    expect(parseAuthorization(nodeV3Order)).toEqual({ ok: true, params });
  });

  it('accepts the doc page’s mch_id spelling and spaces around commas', () => {
    const h = `WECHATPAY2-SHA256-RSA2048 mch_id="1900000001", nonce_str="n0nce" , timestamp="1554208460",serial_no="ABC123",signature="c2ln+/="`;
    expect(parseAuthorization(h)).toEqual({ ok: true, params });
  });

  it.each([
    [undefined, 'missing'],
    ['Bearer abc', 'scheme'],
    ['WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="n"', 'lacks timestamp, serial_no, signature'],
    ['WECHATPAY2-SHA256-RSA2048 mchid=1900000001', 'cannot read'],
    ['WECHATPAY2-SHA256-RSA2048 mchid="1",mch_id="2",nonce_str="n",timestamp="1",serial_no="s",signature="x"', 'twice'],
  ])('refuses %s with a reason', (header, reason) => {
    const r = parseAuthorization(header);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issue).toContain(reason);
  });
});

describe('signatures', () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });

  it('signs and verifies the five-line request string; any changed byte fails', () => {
    const msg = requestMessage('GET', '/v3/iotmanage/devices?limit=10&offset=0', '1554208460', 'abc', '');
    expect(msg).toBe('GET\n/v3/iotmanage/devices?limit=10&offset=0\n1554208460\nabc\n\n');
    const sig = sign(msg, privateKey);
    expect(verifySignature(msg, sig, publicKey)).toBe(true);
    expect(verifySignature(msg.replace('limit=10', 'limit=11'), sig, publicKey)).toBe(false);
    expect(verifySignature(msg, 'not base64 at all', publicKey)).toBe(false);
  });

  it('reports the reconstructed message length in bytes', () => {
    const msg = requestMessage('POST', '/v3/x', '1', 'n', '{"名":"值"}');
    expect(signInformation('POST', '/v3/x', msg)).toEqual({
      method: 'POST',
      url: '/v3/x',
      sign_message_length: Buffer.byteLength(msg),
      truncated_sign_message: msg,
    });
    expect(Buffer.byteLength(msg)).toBeGreaterThan(msg.length);
  });
});

describe('platform certificates', () => {
  it('makes a real X.509 certificate with a 40-upper-hex serial that node reads back', () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const serial = newCertificateSerial();
    expect(serial).toMatch(/^[0-9A-F]{40}$/);
    const pem = createSelfSignedCertificate({
      privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      serialHex: serial,
      commonName: 'Test',
      notBefore: new Date('2025-01-01T00:00:00Z'),
      notAfter: new Date('2030-01-01T00:00:00Z'),
    });
    const c = new X509Certificate(pem);
    expect(c.serialNumber.toUpperCase()).toBe(serial);
    expect(c.verify(publicKey)).toBe(true);
    const read = readCertificate(pem);
    expect(read).toMatchObject({ ok: true, serial, notAfter: Date.parse('2030-01-01T00:00:00Z') });
    if (read.ok) expect(createPublicKey(read.publicKeyPem).equals(publicKey)).toBe(true);
    expect(readCertificate('-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----').ok).toBe(false);
  });
});

describe('times and offsets', () => {
  it('prints RFC 3339 in China time with milliseconds', () => {
    expect(rfc3339(Date.parse('2020-03-31T11:38:00.120Z'))).toBe('2020-03-31T19:38:00.120+08:00');
    expect(rfc3339(Date.parse('2020-03-31T11:38:00.120Z'), false)).toBe('2020-03-31T19:38:00+08:00');
  });

  it('locates an offset in the block counts', () => {
    // Blocks 0, 1 and 3 (block 2 emptied by departures) holding 1000, 24 and 5 members.
    const index = { version: 1, blocks: [0, 1, 3], starts: [0, 1000, 1024], total: 1029 };
    expect(locate(index, 0)).toEqual({ fromSeq: 0, skip: 0 });
    expect(locate(index, 999)).toEqual({ fromSeq: 0, skip: 999 });
    expect(locate(index, 1000)).toEqual({ fromSeq: FLEET_BLOCK, skip: 0 });
    expect(locate(index, 1023)).toEqual({ fromSeq: FLEET_BLOCK, skip: 23 });
    expect(locate(index, 1028)).toEqual({ fromSeq: 3 * FLEET_BLOCK, skip: 4 });
    expect(locate(index, 1029)).toBeNull();
    expect(locate(index, -1)).toBeNull();
  });
});
