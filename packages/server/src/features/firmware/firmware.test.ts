import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { bearer } from '../../testing/harness.js';
import { type GatewayHarness, startGatewayHarness } from '../gateway/gateway.testkit.js';

/** Publishing firmware for a model (URL or upload), the current version, and the public download. */
describe.each(storageBackends())('firmware on $backend.name', ({ backend, skip }) => {
  let g: GatewayHarness;
  let vendorKey: string;
  let otherKey: string;

  const api = (method: 'GET' | 'POST', url: string, opts: { token?: string; json?: object; raw?: Buffer } = {}) =>
    g.h.app.inject({
      method,
      url,
      headers: {
        ...bearer(opts.token ?? vendorKey),
        ...(opts.raw ? { 'content-type': 'application/octet-stream' } : {}),
      },
      ...(opts.json ? { payload: opts.json } : opts.raw ? { payload: opts.raw } : {}),
    });

  beforeAll(async () => {
    if (skip) return;
    g = await startGatewayHarness(backend);
    vendorKey = (await g.h.services.accounts.createVendorKey(SYSTEM_CLI, g.vendorId, 'fw')).token;
    const other = await g.h.services.vendors.create(SYSTEM_CLI, { name: 'Other' });
    otherKey = (await g.h.services.accounts.createVendorKey(SYSTEM_CLI, other.id, 'other')).token;
  });
  afterAll(async () => {
    await g?.close();
  });

  it.skipIf(skip)('uploads a file, computes its MD5 and size, serves it publicly, and makes it current', async () => {
    const bytes = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 256));
    const md5 = createHash('md5').update(bytes).digest('hex');
    const r = await api('POST', `/api/v1/models/${g.modelId}/firmware/upload?version=1.0.1&notes=first`, { raw: bytes });
    expect(r.statusCode, r.body).toBe(201);
    const fw = r.json().firmware;
    expect(fw).toMatchObject({
      version: '1.0.1',
      md5sum: md5,
      size: bytes.length,
      source: 'upload',
      current: true,
      notes: 'first',
    });
    expect(fw.download_url).toBe(`https://bindery.test/api/v1/firmware/${fw.id}/file`);

    const dl = await g.h.app.inject({ method: 'GET', url: `/api/v1/firmware/${fw.id}/file` });
    expect(dl.statusCode).toBe(200);
    expect(dl.rawPayload).toEqual(bytes);
    expect(dl.headers['content-disposition']).toContain('firmware-1.0.1.bin');

    const info = await g.h.services.firmware.currentInfo(SYSTEM_CLI, g.modelId);
    expect(info).toEqual({ firmware_version: '1.0.1', md5sum: md5, size: bytes.length, download_url: fw.download_url });
  });

  it.skipIf(skip)('refuses a wrong md5sum, an empty file, a taken version and bad fields, and keeps nothing', async () => {
    const dir = path.join(g.dataDir, 'firmware');
    const before = readdirSync(dir).sort();
    const bad = await api('POST', `/api/v1/models/${g.modelId}/firmware/upload?version=1.0.2&md5sum=${'0'.repeat(32)}`, {
      raw: Buffer.from('abc'),
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toContain('md5sum does not match');
    const empty = await api('POST', `/api/v1/models/${g.modelId}/firmware/upload?version=1.0.3`, { raw: Buffer.alloc(0) });
    expect(empty.statusCode).toBe(400);
    expect(empty.json().error.message).toContain('empty');
    const json = await api('POST', `/api/v1/models/${g.modelId}/firmware/upload?version=1.0.4`, { json: { a: 1 } });
    expect(json.statusCode).toBe(415);
    const dup = await api('POST', `/api/v1/models/${g.modelId}/firmware/upload?version=1.0.1`, { raw: Buffer.from('x') });
    expect(dup.statusCode).toBe(409);
    expect(dup.json().error.code).toBe('FIRMWARE_VERSION_EXISTS');
    const spaces = await api('POST', `/api/v1/models/${g.modelId}/firmware/upload?version=${encodeURIComponent('1 0')}`, {
      raw: Buffer.from('x'),
    });
    expect(spaces.statusCode).toBe(400);
    const url = await api('POST', `/api/v1/models/${g.modelId}/firmware`, {
      json: { version: '9', download_url: 'ftp://x/y', md5sum: 'zz', size: 0 },
    });
    expect(url.statusCode).toBe(400);
    expect(readdirSync(dir).sort()).toEqual(before);
    const list = await api('GET', `/api/v1/models/${g.modelId}/firmware`);
    expect(list.json().firmware.map((f: { version: string }) => f.version)).toEqual(['1.0.1']);
  });

  it.skipIf(skip)(
    'publishes a URL-hosted version, switches the current one back and forth, and only for its vendor',
    async () => {
      const r = await api('POST', `/api/v1/models/${g.modelId}/firmware`, {
        json: {
          version: '2.0.0',
          download_url: 'https://cdn.example.com/2.bin',
          md5sum: 'A'.repeat(32),
          size: 10,
          make_current: false,
        },
      });
      expect(r.statusCode).toBe(201);
      expect(r.json().firmware).toMatchObject({ source: 'url', current: false, md5sum: 'a'.repeat(32) });
      expect((await g.h.services.firmware.currentInfo(SYSTEM_CLI, g.modelId))!.firmware_version).toBe('1.0.1');
      const made = await api('POST', `/api/v1/models/${g.modelId}/firmware/${r.json().firmware.id}/current`);
      expect(made.json().firmware.current).toBe(true);
      const list = (await api('GET', `/api/v1/models/${g.modelId}/firmware`)).json().firmware;
      expect(list.map((f: { version: string; current: boolean }) => [f.version, f.current])).toEqual([
        ['2.0.0', true],
        ['1.0.1', false],
      ]);
      // URL-hosted firmware has no file here.
      expect((await g.h.app.inject({ method: 'GET', url: `/api/v1/firmware/${r.json().firmware.id}/file` })).statusCode).toBe(
        404,
      );

      for (const [m, u] of [
        ['GET', `/api/v1/models/${g.modelId}/firmware`],
        ['POST', `/api/v1/models/${g.modelId}/firmware/${r.json().firmware.id}/current`],
      ] as const) {
        expect((await api(m, u, { token: otherKey })).statusCode).toBe(403);
      }
      expect(
        (await api('POST', `/api/v1/models/${g.modelId}/firmware/upload?version=7`, { token: otherKey, raw: Buffer.from('x') }))
          .statusCode,
      ).toBe(403);
      expect(existsSync(path.join(g.dataDir, 'firmware'))).toBe(true);
    },
  );

  it.skipIf(skip)('asks a device to upgrade only when its model has current firmware', async () => {
    const { model } = await g.h.services.models.create(SYSTEM_CLI, g.vendorId, { name: 'No FW' });
    await g.h.services.devices.register(SYSTEM_CLI, model.model_id, 'NOFW0001');
    const r = await api('POST', '/api/v1/devices/NOFW0001/commands', { json: { cmd: 'update_firmware' } });
    expect(r.statusCode).toBe(404);
    expect(r.json().error.code).toBe('FIRMWARE_NOT_FOUND');
    await g.addDevice('FWDEV001');
    const ok = await api('POST', '/api/v1/devices/FWDEV001/commands', { json: { cmd: 'update_firmware' } });
    expect(ok.statusCode).toBe(202);
    expect(ok.json().outcome).toBe('queued');
  });
});
