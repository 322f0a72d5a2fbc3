import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { bearer } from '../../testing/harness.js';
import { type GatewayHarness, startGatewayHarness } from '../gateway/gateway.testkit.js';
import { subscribeDevice, WireDevice } from '../gateway/wire-device.js';
import { DOWNLOAD_LINK_TTL_SEC, decideRange, FirmwareBytesCache } from './download.js';

/** Issue 14 item 4: ranges, validators, and per-device signed links from get_firmware_info. */
describe.each(storageBackends())('firmware downloads on $backend.name', ({ backend, skip }) => {
  let g: GatewayHarness;
  const bytes = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 13 + (i >> 8)) % 256));
  const md5 = createHash('md5').update(bytes).digest('hex');
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  let id: string;
  const get = (url: string, headers: Record<string, string> = {}) => g.h.app.inject({ method: 'GET', url, headers });

  beforeAll(async () => {
    if (skip) return;
    g = await startGatewayHarness(backend);
    const key = (await g.h.services.accounts.createVendorKey(SYSTEM_CLI, g.vendorId, 'fw')).token;
    const r = await g.h.app.inject({
      method: 'POST',
      url: `/api/v1/models/${g.modelId}/firmware/upload?version=3.0.0`,
      headers: { ...bearer(key), 'content-type': 'application/octet-stream' },
      payload: bytes,
    });
    expect(r.statusCode, r.body).toBe(201);
    id = r.json().firmware.id;
    // SHA-256 is computed at upload and shown beside the MD5.
    expect(r.json().firmware).toMatchObject({ md5sum: md5, sha256 });
  });
  afterAll(async () => {
    await g?.close();
  });

  it.skipIf(skip)('serves one range as 206 and a download resumes to the same bytes', async () => {
    const url = `/api/v1/firmware/${id}/file`;
    const full = await get(url);
    expect(full.statusCode).toBe(200);
    expect(full.headers['accept-ranges']).toBe('bytes');
    expect(full.headers.etag).toBe(`"${md5}"`);
    expect(full.headers['content-length']).toBe(String(bytes.length));

    // A download cut at 70 000 bytes, resumed from there with If-Range.
    const first = await get(url, { range: 'bytes=0-69999' });
    expect(first.statusCode).toBe(206);
    expect(first.headers['content-range']).toBe(`bytes 0-69999/${bytes.length}`);
    const rest = await get(url, { range: 'bytes=70000-', 'if-range': full.headers.etag as string });
    expect(rest.statusCode).toBe(206);
    expect(rest.headers['content-length']).toBe(String(bytes.length - 70_000));
    expect(Buffer.concat([first.rawPayload, rest.rawPayload])).toEqual(bytes);

    const tail = await get(url, { range: 'bytes=-10' });
    expect(tail.rawPayload).toEqual(bytes.subarray(bytes.length - 10));

    // A stale If-Range gets the whole file, not a range of other bytes.
    const stale = await get(url, { range: 'bytes=70000-', 'if-range': '"0123"' });
    expect(stale.statusCode).toBe(200);
    expect(stale.rawPayload.length).toBe(bytes.length);

    const past = await get(url, { range: `bytes=${bytes.length}-` });
    expect(past.statusCode).toBe(416);
    expect(past.headers['content-range']).toBe(`bytes */${bytes.length}`);
    expect(past.json().error.code).toBe('RANGE_NOT_SATISFIABLE');

    const cached = await get(url, { 'if-none-match': `W/"x", "${md5}"` });
    expect(cached.statusCode).toBe(304);
    expect(cached.rawPayload.length).toBe(0);

    // Over a real socket: HEAD tells the length of the range without sending it.
    const head = await fetch(`${g.url.replace(/^ws/, 'http')}${url}`, { method: 'HEAD', headers: { range: 'bytes=10-19' } });
    expect(head.status).toBe(206);
    expect(head.headers.get('content-length')).toBe('10');
  });

  it.skipIf(skip)('streams a file too large to hold in memory from disk, with the same range rules', async () => {
    // Past FirmwareBytesCache's 32 MiB per file: this takes the file-stream path.
    const big = Buffer.alloc(33 * 2 ** 20);
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i);
    const key = (await g.h.services.accounts.createVendorKey(SYSTEM_CLI, g.vendorId, 'fw-big')).token;
    const up = await g.h.app.inject({
      method: 'POST',
      url: `/api/v1/models/${g.modelId}/firmware/upload?version=3.1.0-big&make_current=false`,
      headers: { ...bearer(key), 'content-type': 'application/octet-stream' },
      payload: big,
    });
    expect(up.statusCode, up.body).toBe(201);
    const url = `/api/v1/firmware/${up.json().firmware.id}/file`;
    const cut = big.length - 300_000;
    const first = await get(url, { range: `bytes=${cut - 100_000}-${cut - 1}` });
    expect(first.statusCode).toBe(206);
    // Buffer.equals: a deep toEqual over 100 000s of bytes takes seconds.
    expect(first.rawPayload.equals(big.subarray(cut - 100_000, cut))).toBe(true);
    const rest = await get(url, { range: `bytes=${cut}-`, 'if-range': first.headers.etag as string });
    expect(rest.statusCode).toBe(206);
    expect(rest.headers['content-range']).toBe(`bytes ${cut}-${big.length - 1}/${big.length}`);
    expect(rest.rawPayload.equals(big.subarray(cut))).toBe(true);
  });

  it.skipIf(skip)(
    'answers get_firmware_info with a link signed for the device; forged and expired links are refused',
    async () => {
      const sn = 'FWDL0001';
      const secretNo = await g.addDevice(sn);
      await g.bind(sn);
      const d = await WireDevice.connect(g.url);
      try {
        await subscribeDevice(d, sn, secretNo, g.nowSec());
        const info = await d.request('get_firmware_info');
        expect(info).toMatchObject({ errcode: 0, body: { firmware_version: '3.0.0', md5sum: md5, size: bytes.length } });
        const link = new URL(info.body!.download_url as string);
        expect(link.pathname).toBe(`/api/v1/firmware/${id}/file`);
        expect(link.searchParams.get('sn')).toBe(sn);
        const path = `${link.pathname}${link.search}`;

        const ok = await get(path, { range: 'bytes=100-199' });
        expect(ok.statusCode).toBe(206);
        expect(ok.rawPayload).toEqual(bytes.subarray(100, 200));

        // Another device's SN, a changed expiry, a cut signature: all forged.
        for (const [k, v] of [
          ['sn', 'FWDL0002'],
          ['exp', String(Number(link.searchParams.get('exp')) + 3600)],
          ['sig', (link.searchParams.get('sig') ?? '').slice(1)],
        ] as const) {
          const u = new URL(link);
          u.searchParams.set(k, v);
          const r = await get(`${u.pathname}${u.search}`);
          expect(r.statusCode, k).toBe(403);
          expect(r.json().error.code).toBe('FIRMWARE_LINK_INVALID');
        }
        // Signed for another firmware id.
        expect((await get(path.replace(id, `${id.slice(0, -1)}x`))).statusCode).toBe(403);

        g.h.clock.advance((DOWNLOAD_LINK_TTL_SEC + 1) * 1000);
        const late = await get(path);
        expect(late.statusCode).toBe(403);
        expect(late.json().error.message).toContain('expired');
      } finally {
        await d.close();
      }
    },
  );
});

describe('decideRange', () => {
  const etag = '"abc"';
  it('reads RFC 9110 byte ranges and ignores what it may ignore', () => {
    expect(decideRange(undefined, undefined, 100, etag, 0)).toEqual({ kind: 'full' });
    expect(decideRange('bytes=0-9', undefined, 100, etag, 0)).toEqual({ kind: 'partial', start: 0, end: 9 });
    expect(decideRange('bytes=90-500', undefined, 100, etag, 0)).toEqual({ kind: 'partial', start: 90, end: 99 });
    expect(decideRange('bytes=-500', undefined, 100, etag, 0)).toEqual({ kind: 'partial', start: 0, end: 99 });
    expect(decideRange('bytes=0-1,5-9', undefined, 100, etag, 0)).toEqual({ kind: 'full' });
    expect(decideRange('bytes=9-1', undefined, 100, etag, 0)).toEqual({ kind: 'full' });
    expect(decideRange('bytes=100-', undefined, 100, etag, 0)).toEqual({ kind: 'unsatisfiable' });
    expect(decideRange('bytes=-0', undefined, 100, etag, 0)).toEqual({ kind: 'unsatisfiable' });
    expect(decideRange('bytes=1-', 'W/"abc"', 100, etag, 0)).toEqual({ kind: 'full' });
    const mtime = Date.UTC(2026, 0, 1);
    expect(decideRange('bytes=1-', new Date(mtime).toUTCString(), 100, etag, mtime)).toMatchObject({ kind: 'partial' });
    expect(decideRange('bytes=1-', new Date(mtime - 1000).toUTCString(), 100, etag, mtime)).toEqual({ kind: 'full' });
  });
});

describe('FirmwareBytesCache', () => {
  /** A fake disk: counts reads; `short` answers fewer bytes than asked, `fail` rejects. */
  function disk() {
    const reads: string[] = [];
    const read = async (p: string) => {
      reads.push(p);
      if (p === 'fail') throw new Error('EIO');
      return Buffer.alloc(p === 'short' ? 5 : Number(p));
    };
    return { reads, read };
  }

  it('reads a file once for concurrent downloads and keeps it', async () => {
    const d = disk();
    const c = new FirmwareBytesCache(d.read, 100, 250);
    const [a, b] = await Promise.all([c.get('a', '100', 100), c.get('a', '100', 100)]);
    expect(a).toBe(b);
    expect((await c.get('a', '100', 100))?.length).toBe(100);
    expect(d.reads).toEqual(['100']);
    expect(c.heldBytes).toBe(100);
  });

  it('streams what is too large to hold, and lets the least recently used file go first', async () => {
    const d = disk();
    const c = new FirmwareBytesCache(d.read, 100, 250);
    expect(await c.get('big', '101', 101)).toBeNull();
    expect(d.reads).toEqual([]);
    await c.get('a', '100', 100);
    await c.get('b', '100', 100);
    await c.get('a', '100', 100); // a is now the most recently used
    await c.get('c', '100', 100); // 300 > 250: b leaves
    expect(c.heldBytes).toBe(200);
    await c.get('a', '100', 100);
    await c.get('b', '100', 100);
    expect(d.reads).toEqual(['100', '100', '100', '100']);
  });

  it('keeps neither a failed nor a short read', async () => {
    const d = disk();
    const c = new FirmwareBytesCache(d.read, 100, 250);
    expect(await c.get('x', 'fail', 10)).toBeNull();
    expect(await c.get('y', 'short', 10)).toBeNull();
    expect(c.heldBytes).toBe(0);
    expect(await c.get('x', 'fail', 10)).toBeNull();
    expect(d.reads).toEqual(['fail', 'short', 'fail']);
  });
});
