import { CHECK_ALPHABET, checkCharScheme } from '@bindery/protocol';
import { SaxesParser } from 'saxes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageBackends } from '../../testing/backends.js';
import { bearer, type Harness, startHarness } from '../../testing/harness.js';
import { verifCodeFor } from '../binding/scan.js';
import { BACKGROUND_SLICE, STALE_MS } from './batch-background.js';

interface BatchBody {
  id: string;
  state: string;
  error: string | null;
  count: number;
  counts: { generated: number };
}

describe.each(storageBackends())('background label batches and the label preview on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let vendorKey: string;
  let otherKey: string;
  let modelId: string;

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    const api = (url: string, token: string, payload: object) =>
      h.app.inject({ method: 'POST', url, headers: bearer(token), payload });
    const v = (await api('/api/v1/vendors', h.operatorToken, { name: 'Acme Devices' })).json().vendor.id;
    vendorKey = (await api(`/api/v1/vendors/${v}/keys`, h.operatorToken, { name: 'factory' })).json().token;
    const o = (await api('/api/v1/vendors', h.operatorToken, { name: 'Other' })).json().vendor.id;
    otherKey = (await api(`/api/v1/vendors/${o}/keys`, h.operatorToken, { name: 'other' })).json().token;
    modelId = (await api(`/api/v1/vendors/${v}/models`, vendorKey, { name: 'Door Lock 门锁', product_key: 'pkBg' })).json().model
      .model_id;
  }, 120_000);
  afterAll(async () => {
    if (h) await h.close();
  });

  const post = (url: string, payload: object, token = vendorKey) =>
    h.app.inject({ method: 'POST', url, headers: bearer(token), payload });
  const get = (url: string, token = vendorKey) => h.app.inject({ method: 'GET', url, headers: bearer(token) });
  const batchOf = async (id: string): Promise<BatchBody> => (await get(`/api/v1/batches/${id}`)).json().batch;
  async function untilDone(id: string): Promise<BatchBody> {
    for (;;) {
      const b = await batchOf(id);
      if (b.state !== 'generating') return b;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it.skipIf(skip)('answers 202 at once; counts.generated moves while it is written; ready with every SN checked', async () => {
    h.services.production.background.sliceDelayMs = 60;
    try {
      const count = BACKGROUND_SLICE * 2 + 7;
      const r = await post(`/api/v1/models/${modelId}/batches`, {
        count,
        background: true,
        pattern: { kind: 'counter', prefix: 'BGA', width: 6, check_char: true },
      });
      expect(r.statusCode, r.body).toBe(202);
      const first = r.json().batch as BatchBody;
      expect(first.state).toBe('generating');
      expect(first.counts.generated).toBe(0);
      const seen = new Set<number>();
      let b = first;
      while (b.state === 'generating') {
        seen.add(b.counts.generated);
        await new Promise((res) => setTimeout(res, 15));
        b = await batchOf(first.id);
      }
      // Progress in between, visible to any reader (a page reload polls the same route).
      expect([...seen].some((n) => n > 0 && n < count)).toBe(true);
      expect(b.state).toBe('ready');
      expect(b.counts.generated).toBe(count);
      const rows = await h.deps.db.kysely.selectFrom('devices').select('sn').where('batch_id', '=', first.id).execute();
      expect(rows).toHaveLength(count);
      for (const { sn } of rows) {
        expect(checkCharScheme(sn), sn).toBe('p-sn-4');
        expect(CHECK_ALPHABET.includes(sn.slice(-1))).toBe(true);
      }
      const audit = await h.deps.db.kysely
        .selectFrom('audit_log')
        .select('action')
        .where('subject', '=', `batch:${first.id}`)
        .execute();
      expect(audit.map((a) => a.action)).toContain('batch.create');
      // Not downloadable while generating, downloadable once ready.
      expect((await get(`/api/v1/batches/${first.id}/download?include=manifest`)).statusCode).toBe(200);
    } finally {
      h.services.production.background.sliceDelayMs = 0;
    }
  });

  it.skipIf(skip)('refuses downloads while generating; a batch whose process stopped is rolled back', async () => {
    h.services.production.background.sliceDelayMs = 400;
    let id = '';
    try {
      const r = await post(`/api/v1/models/${modelId}/batches`, {
        count: BACKGROUND_SLICE + 1,
        background: true,
        pattern: { kind: 'random', prefix: 'BGR', length: 8 },
      });
      expect(r.statusCode, r.body).toBe(202);
      id = r.json().batch.id;
      const dl = await get(`/api/v1/batches/${id}/download?include=manifest`);
      expect(dl.statusCode).toBe(409);
      expect(dl.json().error.code).toBe('BATCH_NOT_READY');
      expect((await get(`/api/v1/batches/${id}/secrets.csv`)).statusCode).toBe(409);
    } finally {
      h.services.production.background.sliceDelayMs = 0;
    }
    await untilDone(id);
    // A batch left `generating` by a process that died: no heartbeat for STALE_MS.
    const r = await post(`/api/v1/models/${modelId}/batches`, {
      count: 3,
      pattern: { kind: 'counter', prefix: 'BGS', width: 4 },
    });
    const orphan = r.json().batch.id as string;
    const old = h.deps.clock.now() - STALE_MS - 1000;
    await h.deps.db.kysely
      .updateTable('batches')
      .set({ state: 'generating', heartbeat_at: old, finished_at: null })
      .where('id', '=', orphan)
      .execute();
    const b = await batchOf(orphan);
    expect(b.state).toBe('failed');
    expect(b.error).toMatch(/interrupted/);
    expect(b.counts.generated).toBe(0);
    // A fresh heartbeat is left alone (another process may be writing it).
    await h.deps.db.kysely
      .updateTable('batches')
      .set({ state: 'generating', heartbeat_at: h.deps.clock.now(), error: null })
      .where('id', '=', orphan)
      .execute();
    expect((await batchOf(orphan)).state).toBe('generating');
  });

  it.skipIf(skip)('refuses a background batch whose counter SNs are taken before anything is written', async () => {
    const pattern = { kind: 'counter', prefix: 'BGT', width: 4, start: 1 };
    expect((await post(`/api/v1/models/${modelId}/batches`, { count: 2, pattern })).statusCode).toBe(201);
    const r = await post(`/api/v1/models/${modelId}/batches`, { count: 2, pattern, background: true });
    expect(r.statusCode).toBe(409);
    expect(r.json().error.code).toBe('SN_TAKEN');
  });

  it.skipIf(skip)('previews a label at its printed size with the SN and the readable verification code', async () => {
    const r = await post(`/api/v1/models/${modelId}/batches`, {
      count: 2,
      pattern: { kind: 'counter', prefix: 'PRV', width: 4 },
    });
    const id = r.json().batch.id as string;
    const pv = await get(`/api/v1/batches/${id}/preview.svg?sn=prv0002`);
    expect(pv.statusCode, pv.body).toBe(200);
    expect(pv.headers['content-type']).toMatch(/^image\/svg\+xml/);
    const texts: string[] = [];
    let root: Record<string, unknown> = {};
    const parser = new SaxesParser();
    parser.on('opentag', (t) => {
      if (t.name === 'svg') root = t.attributes;
    });
    parser.on('text', (t) => texts.push(t));
    parser.write(pv.body).close();
    expect(root.width).toBe('50mm');
    expect(root.height).toBe('30mm');
    const dev = await h.deps.db.kysely
      .selectFrom('devices')
      .select(['secret_no_enc'])
      .where('sn', '=', 'PRV0002')
      .executeTakeFirstOrThrow();
    const code = verifCodeFor(h.deps.secrets.open(dev.secret_no_enc), 'PRV0002');
    expect(texts).toContain('PRV0002');
    expect(texts).toContain(`Code ${code}`);
    expect(texts).toContain('Door Lock 门锁');
    // The first label by default; another vendor sees nothing.
    expect((await get(`/api/v1/batches/${id}/preview.svg`)).body).toContain('PRV0001');
    expect([403, 404]).toContain((await get(`/api/v1/batches/${id}/preview.svg`, otherKey)).statusCode);
    expect((await get(`/api/v1/batches/${id}/preview.svg?sn=NOPE`)).statusCode).toBe(404);
  });
});
