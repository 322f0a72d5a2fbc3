import { quectelPayload, staticBindUrl } from '@bindery/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Principal } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { bearer, type Harness, startHarness } from '../../testing/harness.js';
import type { ModelView } from '../models/models.service.js';
import type { PairInput, PairResult } from './pairing.service.js';

const SYS: Principal = { kind: 'system', name: 'test' };
const imei = (n: number) => String(861_000_000_000_000 + n);
let seq = 0;
const idem = () => `k${Date.now().toString(36)}x${(seq++).toString().padStart(6, '0')}`;

describe.each(storageBackends())('pairing station on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let vendorId: string;
  let otherVendorId: string;
  let key: string;
  let otherKey: string;
  let model: ModelView;
  let other: ModelView;
  let batchId: string;
  let batchSns: string[];
  let otherBatchSn: string;

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    vendorId = (await h.services.vendors.create(SYS, { name: 'Line' })).id;
    otherVendorId = (await h.services.vendors.create(SYS, { name: 'Else' })).id;
    key = (await h.services.accounts.createVendorKey(SYS, vendorId, 'station')).token;
    otherKey = (await h.services.accounts.createVendorKey(SYS, otherVendorId, 'else')).token;
    model = (await h.services.models.create(SYS, vendorId, { name: 'Tracker', product_key: 'pkTrk' })).model;
    other = (await h.services.models.create(SYS, vendorId, { name: 'Gate', product_key: 'pkGate' })).model;
    const theirs = (await h.services.models.create(SYS, otherVendorId, { name: 'Theirs', product_key: 'pkTheirs' })).model;
    const batch = await h.services.production.createBatch(SYS, model.model_id, {
      count: 40,
      pattern: { kind: 'counter', prefix: 'PST', width: 5 },
    });
    batchId = batch.id;
    batchSns = (
      await h.deps.db.kysely.selectFrom('devices').select('sn').where('batch_id', '=', batchId).orderBy('sn').execute()
    ).map((d) => d.sn);
    const second = await h.services.production.createBatch(SYS, model.model_id, {
      count: 2,
      pattern: { kind: 'counter', prefix: 'PSX', width: 5 },
    });
    otherBatchSn = (
      await h.deps.db.kysely.selectFrom('devices').select('sn').where('batch_id', '=', second.id).executeTakeFirstOrThrow()
    ).sn;
    await h.services.devices.register(SYS, other.model_id, 'GATE00001');
    await h.services.devices.register(SYS, theirs.model_id, 'THEIRS0001');
  });
  afterAll(async () => {
    await h?.close();
  });

  const send = (body: Partial<PairInput>, token = key, vendor = vendorId) =>
    h.app.inject({
      method: 'POST',
      url: `/api/v1/vendors/${vendor}/pairing/pairs`,
      headers: bearer(token),
      payload: { idempotency_key: idem(), shift_id: 'shift-1', station: 'st1', batch_id: batchId, ...body },
    });
  const pair = async (body: Partial<PairInput>): Promise<PairResult> => {
    const r = await send(body);
    expect(r.statusCode, r.body).toBe(200);
    return r.json() as PairResult;
  };
  const deviceOf = (sn: string) =>
    h.deps.db.kysely.selectFrom('devices').selectAll().where('sn_key', '=', sn.toLowerCase()).executeTakeFirstOrThrow();
  const count = async (table: 'pairings' | 'audit_log', where?: [string, string]) => {
    let q = h.deps.db.kysely.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n'));
    if (where) q = q.where(where[0] as never, '=', where[1] as never);
    return Number((await q.executeTakeFirstOrThrow()).n);
  };

  it.skipIf(skip)('pairs a bare SN, a Quectel label and a static bind URL, audited', async () => {
    const [a, b, c] = batchSns;
    const dc = await deviceOf(c!);
    const r1 = await pair({ device_key: imei(1), label: a! });
    const r2 = await pair({ device_key: imei(2), label: quectelPayload('pkTrk', b!) });
    const r3 = await pair({ device_key: imei(3), label: staticBindUrl('https://bindery.test', dc.hw_code) });
    for (const [r, sn, dk] of [
      [r1, a, imei(1)],
      [r2, b, imei(2)],
      [r3, c, imei(3)],
    ] as const) {
      expect(r).toMatchObject({ outcome: 'paired', reason: null, sn, product_key: 'pkTrk', replayed: false });
      const d = await deviceOf(sn!);
      expect(d.device_key).toBe(dk);
      expect(d.device_key_norm).toBe(dk);
      expect(d.paired_at).not.toBeNull();
    }
    expect(await count('audit_log', ['action', 'pairing.pair'])).toBe(3);
  });

  it.skipIf(skip)("reads a model's custom label format, and refuses a Quectel label with the wrong product key", async () => {
    const custom = (
      await h.services.models.create(SYS, vendorId, {
        name: 'Custom',
        product_key: 'pkCus',
        label_format: 'custom',
        label_template: 'LBL/{pk}/{sn}',
      })
    ).model;
    await h.services.devices.register(SYS, custom.model_id, 'CUS000001');
    const r = await pair({ batch_id: undefined, model_id: custom.model_id, device_key: imei(40), label: 'LBL/pkCus/CUS000001' });
    expect(r).toMatchObject({ outcome: 'paired', sn: 'CUS000001', product_key: 'pkCus' });
    const wrongPk = await pair({ device_key: imei(41), label: quectelPayload('pkGate', batchSns[25]!) });
    expect(wrongPk).toMatchObject({ outcome: 'refused', reason: 'unknown_sn' });
  });

  it.skipIf(skip)('answers a repeated idempotency key from the log and writes nothing again', async () => {
    const k = idem();
    const first = await pair({ idempotency_key: k, device_key: imei(10), label: batchSns[9]! });
    expect(first.outcome).toBe('paired');
    const pairs = await count('pairings');
    const audits = await count('audit_log', ['action', 'pairing.pair']);
    const again = await Promise.all([1, 2, 3].map(() => pair({ idempotency_key: k, device_key: imei(10), label: batchSns[9]! })));
    for (const r of again) expect(r).toMatchObject({ outcome: 'paired', sn: batchSns[9], replayed: true, at: first.at });
    expect(await count('pairings')).toBe(pairs);
    expect(await count('audit_log', ['action', 'pairing.pair'])).toBe(audits);
    // Concurrent first sends of one key: one row, one answer for all.
    const k2 = idem();
    const burst = await Promise.all(
      [1, 2, 3, 4].map(() => pair({ idempotency_key: k2, device_key: imei(11), label: batchSns[10]! })),
    );
    expect(burst.filter((r) => r.outcome === 'paired')).toHaveLength(4);
    expect(await count('pairings', ['idem_key', k2])).toBe(1);
  });

  it.skipIf(skip)('answers a replayed refusal from the log even when the pair would now be made, and pairs nothing', async () => {
    // The usual pair writes before it reads (the log's unique key answers a replay): the device
    // update of a replay must roll back with the log row it could not write.
    const sn = batchSns[38]!;
    const k = idem();
    await h.deps.db.kysely
      .updateTable('devices')
      .set({ device_key: 'TAKEN', device_key_norm: 'taken' })
      .where('sn_key', '=', sn.toLowerCase())
      .execute();
    const first = await pair({ idempotency_key: k, device_key: imei(38), label: sn });
    expect(first).toMatchObject({ outcome: 'refused', reason: 'sn_taken', replayed: false });
    await h.deps.db.kysely
      .updateTable('devices')
      .set({ device_key: null, device_key_norm: null })
      .where('sn_key', '=', sn.toLowerCase())
      .execute();
    const audits = await count('audit_log', ['action', 'pairing.pair']);
    const again = await pair({ idempotency_key: k, device_key: imei(38), label: sn });
    expect(again).toMatchObject({ outcome: 'refused', reason: 'sn_taken', replayed: true, at: first.at });
    expect((await deviceOf(sn)).device_key_norm).toBeNull();
    expect(await count('pairings', ['idem_key', k])).toBe(1);
    expect(await count('audit_log', ['action', 'pairing.pair'])).toBe(audits);
    // A new key pairs it.
    expect((await pair({ device_key: imei(38), label: sn })).outcome).toBe('paired');
  });

  it.skipIf(skip)('refuses with a reason: unknown, taken, other model or batch, duplicate, unreadable', async () => {
    const [a, b] = batchSns;
    const cases: Array<[Partial<PairInput>, string, Partial<PairResult>?]> = [
      [{ device_key: imei(20), label: 'NOSUCH0001' }, 'unknown_sn'],
      [{ device_key: imei(20), label: 'THEIRS0001' }, 'unknown_sn'],
      [{ device_key: imei(20), label: quectelPayload('pkTheirs', 'THEIRS0001') }, 'unknown_sn'],
      [{ device_key: imei(1), label: batchSns[20]! }, 'device_key_taken', { conflict: a }],
      [{ device_key: imei(21), label: a! }, 'sn_taken', { conflict: imei(1) }],
      [{ device_key: imei(2), label: b! }, 'duplicate'],
      [{ device_key: imei(22), label: 'GATE00001' }, 'other_model', { sn: 'GATE00001' }],
      [{ device_key: imei(23), label: otherBatchSn }, 'other_batch'],
      [{ device_key: '8.61234E+14', label: batchSns[21]! }, 'device_key_invalid'],
      [{ device_key: imei(24), label: 'https://example.com/not/a/label' }, 'label_unreadable'],
    ];
    for (const [body, reason, extra] of cases) {
      const r = await pair(body);
      expect(r, JSON.stringify(body)).toMatchObject({ outcome: 'refused', reason, ...extra });
      expect(r.message.length).toBeGreaterThan(0);
    }
    // Nothing changed: the refused SNs stay unpaired, the taken ones keep their keys.
    expect((await deviceOf(batchSns[20]!)).device_key).toBeNull();
    expect((await deviceOf(a!)).device_key).toBe(imei(1));
    expect((await deviceOf('GATE00001')).device_key).toBeNull();
    // A station for a model (no batch) takes that model's devices from any batch.
    const r = await pair({ batch_id: undefined, model_id: model.model_id, device_key: imei(25), label: otherBatchSn });
    expect(r.outcome).toBe('paired');
  });

  it.skipIf(skip)('ten stations racing for one SN pair it once; one IMEI pairs once', async () => {
    const sn = batchSns[30]!;
    const rs = await Promise.all(
      Array.from({ length: 10 }, (_, i) => pair({ station: `st${i}`, device_key: imei(100 + i), label: sn })),
    );
    expect(rs.filter((r) => r.outcome === 'paired')).toHaveLength(1);
    expect(new Set(rs.filter((r) => r.outcome === 'refused').map((r) => r.reason))).toEqual(new Set(['sn_taken']));
    const one = imei(200);
    const rs2 = await Promise.all([31, 32, 33, 34].map((i) => pair({ device_key: one, label: batchSns[i]! })));
    expect(rs2.filter((r) => r.outcome === 'paired')).toHaveLength(1);
    expect(new Set(rs2.filter((r) => r.outcome === 'refused').map((r) => r.reason))).toEqual(new Set(['device_key_taken']));
  });

  it.skipIf(skip)("exports the shift's relation file, which imports with no errors", async () => {
    for (let i = 0; i < 5; i++) await pair({ shift_id: 'shift-2', device_key: imei(300 + i), label: batchSns[11 + i]! });
    await pair({ shift_id: 'shift-2', device_key: imei(399), label: 'NOSUCH0002' });
    const summary = await h.app.inject({ url: `/api/v1/vendors/${vendorId}/pairing/shifts/shift-2`, headers: bearer(key) });
    expect(summary.json()).toMatchObject({ shift_id: 'shift-2', paired: 5, refused: 1 });
    const csv = await h.app.inject({
      url: `/api/v1/vendors/${vendorId}/pairing/shifts/shift-2/relations.csv?lang=zh`,
      headers: bearer(key),
    });
    expect(csv.statusCode).toBe(200);
    const lines = csv.body
      .replace(/^\uFEFF/, '')
      .trim()
      .split(/\r?\n/);
    expect(lines[0]).toContain('*设备DeviceKey');
    // In pairing order; the test clock stands still, so compare as a set.
    expect(lines.slice(1).sort()).toEqual(batchSns.slice(11, 16).map((sn, i) => `${imei(300 + i)},pkTrk,${sn},,,,,`));
    const imp = await h.app.inject({
      method: 'POST',
      url: `/api/v1/vendors/${vendorId}/relations/import?format=csv`,
      headers: { ...bearer(key), 'content-type': 'text/csv' },
      payload: csv.rawPayload,
    });
    expect(imp.statusCode, imp.body).toBe(200);
    expect(imp.json()).toMatchObject({ error_count: 0, rows: 5, unchanged: 5, imported: true });
  });

  it.skipIf(skip)('is the vendor’s own: another vendor is refused, a foreign batch is not found', async () => {
    const r = await send({ device_key: imei(500), label: batchSns[35]! }, otherKey);
    expect(r.statusCode).toBe(403);
    const r2 = await send({ device_key: imei(500), label: batchSns[35]! }, otherKey, otherVendorId);
    expect(r2.statusCode).toBe(404);
    expect(r2.json().error.code).toBe('BATCH_NOT_FOUND');
    const csv = await h.app.inject({
      url: `/api/v1/vendors/${vendorId}/pairing/shifts/shift-2/relations.csv`,
      headers: bearer(otherKey),
    });
    expect(csv.statusCode).toBe(403);
    const bad = await send({ idempotency_key: 'short', device_key: imei(501), label: batchSns[35]! });
    expect(bad.statusCode).toBe(400);
    expect((await deviceOf(batchSns[35]!)).device_key).toBeNull();
  });
});
