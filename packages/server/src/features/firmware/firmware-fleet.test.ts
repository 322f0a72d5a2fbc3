import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { bearer, type Harness, startHarness } from '../../testing/harness.js';

/** Issue 13 item 7: a firmware file's SHA-256 beside its MD5, and the versions a model's fleet runs. */
describe.each(storageBackends())('firmware digests and fleet versions on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let key: string;
  let otherKey: string;
  let modelId: string;

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    const v = await h.services.vendors.create(SYSTEM_CLI, { name: 'Fw' });
    const other = await h.services.vendors.create(SYSTEM_CLI, { name: 'Else' });
    key = (await h.services.accounts.createVendorKey(SYSTEM_CLI, v.id, 'fw')).token;
    otherKey = (await h.services.accounts.createVendorKey(SYSTEM_CLI, other.id, 'else')).token;
    modelId = (await h.services.models.create(SYSTEM_CLI, v.id, { name: 'Meter', product_key: 'pkMeter' })).model.model_id;
    const runs: Array<[string, string | null, number]> = [
      ['FW001', '1.0.0', 1],
      ['FW002', '1.0.0', 0],
      ['FW003', '1.0.0', 1],
      ['FW004', '1.1.0', 1],
      ['FW005', null, 0],
    ];
    for (const [sn, version, online] of runs) {
      await h.services.devices.register(SYSTEM_CLI, modelId, sn);
      await h.deps.db.kysely.updateTable('devices').set({ firmware_version: version, online }).where('sn', '=', sn).execute();
    }
  });
  afterAll(async () => {
    await h?.close();
  });

  it.skipIf(skip)('computes the SHA-256 of an upload and keeps the one given with a URL', async () => {
    const bytes = Buffer.from('firmware bytes '.repeat(5000));
    const r = await h.app.inject({
      method: 'POST',
      url: `/api/v1/models/${modelId}/firmware/upload?version=3.0.0`,
      headers: { ...bearer(key), 'content-type': 'application/octet-stream' },
      payload: bytes,
    });
    expect(r.statusCode, r.body).toBe(201);
    expect(r.json().firmware).toMatchObject({
      md5sum: createHash('md5').update(bytes).digest('hex'),
      sha256: createHash('sha256').update(bytes).digest('hex'),
    });
    const byUrl = (sha256?: string) =>
      h.app.inject({
        method: 'POST',
        url: `/api/v1/models/${modelId}/firmware`,
        headers: bearer(key),
        payload: {
          version: `u${sha256 ? 1 : 2}`,
          download_url: 'https://cdn.example/x.bin',
          md5sum: 'a'.repeat(32),
          size: 9,
          ...(sha256 ? { sha256 } : {}),
        },
      });
    expect((await byUrl('B'.repeat(64))).json().firmware.sha256).toBe('b'.repeat(64));
    expect((await byUrl()).json().firmware.sha256).toBeNull();
    const bad = await h.app.inject({
      method: 'POST',
      url: `/api/v1/models/${modelId}/firmware`,
      headers: bearer(key),
      payload: { version: 'u3', download_url: 'https://cdn.example/x.bin', md5sum: 'a'.repeat(32), size: 9, sha256: 'xyz' },
    });
    expect(bad.statusCode).toBe(400);
    const list = await h.app.inject({ url: `/api/v1/models/${modelId}/firmware`, headers: bearer(key) });
    expect(list.json().firmware.find((f: { version: string }) => f.version === '3.0.0').sha256).toHaveLength(64);
  });

  it.skipIf(skip)('counts the versions the fleet runs, most devices first; only for the vendor', async () => {
    const r = await h.app.inject({ url: `/api/v1/models/${modelId}/firmware/fleet`, headers: bearer(key) });
    expect(r.statusCode).toBe(200);
    expect(r.json().versions).toEqual([
      { version: '1.0.0', devices: 3, online: 2 },
      { version: '1.1.0', devices: 1, online: 1 },
      { version: null, devices: 1, online: 0 },
    ]);
    const other = await h.app.inject({ url: `/api/v1/models/${modelId}/firmware/fleet`, headers: bearer(otherKey) });
    expect([403, 404]).toContain(other.statusCode);
  });
});
