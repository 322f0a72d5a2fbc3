import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageBackends } from '../../testing/backends.js';
import { bearer, type Harness, startHarness } from '../../testing/harness.js';

describe.each(storageBackends())('vendor flow on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let vendorId: string;
  let vendorKey: string;
  let modelId: string;
  let modelSecret: string;

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
  });
  afterAll(async () => {
    await h?.close();
  });

  const api = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, token: string, payload?: object) =>
    h.app.inject({ method, url, headers: bearer(token), ...(payload ? { payload } : {}) });

  it.skipIf(skip)('an operator creates a vendor and a vendor key; the key acts only for its vendor', async () => {
    const v = await api('POST', '/api/v1/vendors', h.operatorToken, { name: 'Acme Devices' });
    expect(v.statusCode).toBe(201);
    vendorId = v.json().vendor.id;
    const k = await api('POST', `/api/v1/vendors/${vendorId}/keys`, h.operatorToken, { name: 'factory' });
    expect(k.statusCode).toBe(201);
    vendorKey = k.json().token;

    const other = await api('POST', '/api/v1/vendors', h.operatorToken, { name: 'Other' });
    const denied = await api('GET', `/api/v1/vendors/${other.json().vendor.id}`, vendorKey);
    expect(denied.statusCode).toBe(403);
    expect(denied.json().error.code).toBe('FORBIDDEN');
    const cannotCreate = await api('POST', '/api/v1/vendors', vendorKey, { name: 'Sneaky' });
    expect(cannotCreate.statusCode).toBe(403);
    const anon = await h.app.inject({ method: 'GET', url: '/api/v1/vendors' });
    expect(anon.statusCode).toBe(401);
  });

  it.skipIf(skip)('a vendor creates a model; its secret is shown once and its enumerations are checked', async () => {
    const bad = await api('POST', `/api/v1/vendors/${vendorId}/models`, vendorKey, { name: 'X', class_code: '999' });
    expect(bad.statusCode).toBe(400);
    const r = await api('POST', `/api/v1/vendors/${vendorId}/models`, vendorKey, {
      name: 'Face Terminal 5510R',
      product_key: 'pk5510',
      category_code: '2',
      class_code: '101',
      shared_seed: true,
    });
    expect(r.statusCode).toBe(201);
    const body = r.json();
    modelId = body.model.model_id;
    modelSecret = body.model_secret;
    expect(body.model.category).toBe('桌面收银设备');
    expect(body.model.class).toBe('大屏自助收银机');
    expect(body.seed_secret_no).toMatch(/^[0-9a-f]{32}$/);
    const again = await api('GET', `/api/v1/models/${modelId}`, vendorKey);
    expect(JSON.stringify(again.json())).not.toContain(modelSecret);
    const dupPk = await api('POST', `/api/v1/vendors/${vendorId}/models`, vendorKey, { name: 'Y', product_key: 'pk5510' });
    expect(dupPk.statusCode).toBe(409);
    expect(dupPk.json().error.code).toBe('PRODUCT_KEY_TAKEN');
  });

  it.skipIf(skip)('registers SNs by the §B2 rules: charset, length, unique ignoring case', async () => {
    const ok = await api('POST', `/api/v1/models/${modelId}/devices`, vendorKey, {
      sn: 'HSA1RF5A0700165',
      camera_sn: 'IMIH-A100',
      app_scene_code: '1',
      operating_system: 'android',
    });
    expect(ok.statusCode).toBe(201);
    const d = ok.json();
    expect(d.secret_no).toMatch(/^[0-9a-f]{32}$/);
    expect(d.device.qr_code).toBe(`https://bindery.test/connect/hardware?hw_code=${d.device.hw_code}`);
    expect(d.device.hw_code).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(d.device.operating_system).toBe('ANDROID');

    const dup = await api('POST', `/api/v1/models/${modelId}/devices`, vendorKey, { sn: 'hsa1rf5a0700165' });
    expect(dup.statusCode).toBe(409);
    expect(dup.json().error.code).toBe('SN_TAKEN');
    for (const sn of ['', 'has space', 'dash-ed', 'ü', 'x'.repeat(129)]) {
      const r = await api('POST', `/api/v1/models/${modelId}/devices`, vendorKey, { sn });
      expect(r.statusCode, sn).toBe(400);
      expect(r.json().error.code).toBe('INVALID_SN');
    }
    const max = await api('POST', `/api/v1/models/${modelId}/devices`, vendorKey, { sn: 'A'.repeat(128) });
    expect(max.statusCode).toBe(201);
    const byOtherCase = await api('GET', '/api/v1/devices/hsa1RF5A0700165', vendorKey);
    expect(byOtherCase.json().device.sn).toBe('HSA1RF5A0700165');
  });

  it.skipIf(skip)('keeps SecretNo sealed at rest', async () => {
    const row = await h.deps.db.kysely
      .selectFrom('devices')
      .selectAll()
      .where('sn_key', '=', 'hsa1rf5a0700165')
      .executeTakeFirstOrThrow();
    expect(row.secret_no_enc).toMatch(/^v1\./);
    const revealed = await api('GET', '/api/v1/devices/HSA1RF5A0700165/secret-no', vendorKey);
    expect(h.deps.secrets.open(row.secret_no_enc)).toBe(revealed.json().secret_no);
    expect(row.secret_no_enc).not.toContain(revealed.json().secret_no);
  });

  it.skipIf(skip)('serves the WeCom cloud API: ticket → model token → register_sn → detail → unregister', async () => {
    const t = await api('GET', `/api/v1/models/${modelId}/ticket`, vendorKey);
    const ticket = t.json().model_ticket;
    const again = await api('GET', `/api/v1/models/${modelId}/ticket`, vendorKey);
    expect(again.json().model_ticket).toBe(ticket);

    const wrong = await h.app.inject({
      method: 'POST',
      url: '/cgi-bin/openhw/get_model_token',
      payload: { model_id: modelId, model_secret: 'nope', model_ticket: ticket },
    });
    expect(wrong.statusCode).toBe(200);
    expect(wrong.json().errcode).toBe(40001);

    const tok = await h.app.inject({
      method: 'POST',
      url: '/cgi-bin/openhw/get_model_token',
      payload: { model_id: modelId, model_secret: modelSecret, model_ticket: ticket },
    });
    // errcode 0 / errmsg 'ok' like every other /cgi-bin reply (issue 11, finding 10; WeCom clients accept both).
    expect(tok.json()).toMatchObject({ expires_in: 7200, errcode: 0, errmsg: 'ok' });
    const mat = tok.json().model_access_token as string;

    const reg = await h.app.inject({
      method: 'POST',
      url: `/cgi-bin/openhw/model/register_sn?model_access_token=${mat}`,
      payload: { device_sn: 'CLOUD0001' },
    });
    expect(reg.json().errcode).toBe(0);
    expect(reg.json().qr_code).toMatch(/^https:\/\/bindery\.test\/connect\/hardware\?hw_code=/);

    const detail = await h.app.inject({
      method: 'POST',
      url: `/cgi-bin/openhw/device/get_device_detail?model_access_token=${mat}`,
      payload: { device_sn: 'cloud0001' },
    });
    expect(detail.json()).toMatchObject({
      errcode: 0,
      device_detail: { model_name: 'Face Terminal 5510R', bind_status: 0, qr_code: reg.json().qr_code },
    });

    const badToken = await h.app.inject({
      method: 'POST',
      url: '/cgi-bin/openhw/model/register_sn?model_access_token=forged',
      payload: { device_sn: 'CLOUD0002' },
    });
    expect(badToken.json().errcode).toBe(40014);

    const del = await h.app.inject({
      method: 'POST',
      url: `/cgi-bin/openhw/model/unregister_sn?model_access_token=${mat}`,
      payload: { device_sn: 'CLOUD0001' },
    });
    expect(del.json().errcode).toBe(0);
    const gone = await api('GET', '/api/v1/devices/CLOUD0001', vendorKey);
    expect(gone.statusCode).toBe(404);

    h.clock.advance(7201 * 1000);
    const expired = await h.app.inject({
      method: 'POST',
      url: `/cgi-bin/openhw/device/get_device_detail?model_access_token=${mat}`,
      payload: { device_sn: 'HSA1RF5A0700165' },
    });
    expect(expired.json().errcode).toBe(42001);
  });

  it.skipIf(skip)('refuses to unregister a bound device', async () => {
    await h.deps.db.kysely
      .updateTable('devices')
      .set({ owner_type: 'user', owner_id: 'usr_x', bound_at: h.clock.now() })
      .where('sn_key', '=', 'hsa1rf5a0700165')
      .execute();
    const r = await api('DELETE', '/api/v1/devices/HSA1RF5A0700165', vendorKey);
    expect(r.statusCode).toBe(409);
    expect(r.json().error.code).toBe('DEVICE_BOUND');
  });

  it.skipIf(skip)('lists and searches devices with a cursor', async () => {
    for (let i = 0; i < 5; i++) await api('POST', `/api/v1/models/${modelId}/devices`, vendorKey, { sn: `LIST${i}` });
    const p1 = await api('GET', `/api/v1/vendors/${vendorId}/devices?q=list&limit=3`, vendorKey);
    expect(p1.json().devices.map((d: { sn: string }) => d.sn)).toEqual(['LIST0', 'LIST1', 'LIST2']);
    const p2 = await api('GET', `/api/v1/vendors/${vendorId}/devices?q=list&limit=3&cursor=${p1.json().next_cursor}`, vendorKey);
    expect(p2.json().devices.map((d: { sn: string }) => d.sn)).toEqual(['LIST3', 'LIST4']);
    expect(p2.json().next_cursor).toBeNull();
  });

  it.skipIf(skip)('finds a device by its device key typed with or without separators', async () => {
    await h.deps.db.kysely
      .updateTable('devices')
      .set({ device_key: 'AA:BB:CC:DD:EE:01', device_key_norm: 'aabbccddee01' })
      .where('sn_key', '=', 'list3')
      .execute();
    for (const q of ['AA:BB:CC', 'aa-bb-cc-dd', 'aabbccddee01']) {
      const r = await api('GET', `/api/v1/vendors/${vendorId}/devices?q=${encodeURIComponent(q)}`, vendorKey);
      expect(
        r.json().devices.map((d: { sn: string }) => d.sn),
        q,
      ).toEqual(['LIST3']);
    }
  });
});
