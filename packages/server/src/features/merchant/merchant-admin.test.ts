import { createPublicKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageBackends } from '../../testing/backends.js';
import { bearer, type Harness, startHarness } from '../../testing/harness.js';
import { makeMerchantKey, OPERATOR, setOwner } from './merchant.fixtures.js';
import { MerchantService } from './merchant.service.js';

describe.each(storageBackends())('merchant administration on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let vendorKey: string;
  let otherVendorKey: string;
  let modelId: string;

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    const v = await h.services.vendors.create(OPERATOR, { name: 'Acme' });
    vendorKey = (await h.services.accounts.createVendorKey(OPERATOR, v.id, 'k')).token;
    const other = await h.services.vendors.create(OPERATOR, { name: 'Other' });
    otherVendorKey = (await h.services.accounts.createVendorKey(OPERATOR, other.id, 'k')).token;
    modelId = (await h.services.models.create(OPERATOR, v.id, { name: 'Kiosk' })).model.model_id;
    for (const sn of ['INSP00001', 'INSP00002', 'INSP00003']) await h.services.devices.register(OPERATOR, modelId, sn);
  });
  afterAll(async () => {
    await h?.close();
  });

  const api = (method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE', url: string, token: string | null, payload?: object) =>
    h.app.inject({ method, url, headers: token ? bearer(token) : {}, ...(payload ? { payload } : {}) });

  it.skipIf(skip)('only operators manage merchants; input is checked and mchids are unique', async () => {
    expect((await api('POST', '/api/v1/merchants', null, { name: 'X', mchid: '1', merchant_shortname: 'X' })).statusCode).toBe(
      401,
    );
    const denied = await api('POST', '/api/v1/merchants', vendorKey, { name: 'X', mchid: '1', merchant_shortname: 'X' });
    expect(denied.statusCode).toBe(403);

    const bad = await api('POST', '/api/v1/merchants', h.operatorToken, { mchid: '19x', merchant_shortname: 'X' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.details.problems).toEqual([
      'mchid must be 1–32 digits',
      'give either org_id (an existing organisation) or name (a new one)',
    ]);

    const ok = await api('POST', '/api/v1/merchants', h.operatorToken, {
      name: 'Shop Group',
      mchid: '1900000101',
      merchant_shortname: '某公司',
    });
    expect(ok.statusCode).toBe(201);
    expect(ok.json().merchant).toMatchObject({
      mchid: '1900000101',
      merchant_shortname: '某公司',
      key_mode: 'public_key',
      has_apiv3_key: false,
      fleet_total: 0,
      sub_merchants: [],
      keys: [],
    });
    const dup = await api('POST', '/api/v1/merchants', h.operatorToken, {
      name: 'Again',
      mchid: '1900000101',
      merchant_shortname: 'Y',
    });
    expect(dup.statusCode).toBe(409);
    // The failed attempt left no organisation behind.
    const orgs = await h.deps.db.kysely.selectFrom('organisations').select('name').where('name', '=', 'Again').execute();
    expect(orgs).toEqual([]);

    const list = await api('GET', '/api/v1/merchants', h.operatorToken);
    expect(list.json().merchants.map((m: { mchid: string }) => m.mchid)).toEqual(['1900000101']);
    expect((await api('GET', '/api/v1/merchants/1900000999', h.operatorToken)).json().error.code).toBe('MERCHANT_NOT_FOUND');
  });

  it.skipIf(skip)('an existing organisation with devices becomes a merchant and its devices join the list', async () => {
    const org = await h.services.merchant.createOrganisation(OPERATOR, { name: 'Existing Co' });
    await setOwner(h, 'INSP00003', { type: 'org', id: org.id });
    const r = await api('POST', '/api/v1/merchants', h.operatorToken, {
      org_id: org.id,
      mchid: '1900000202',
      merchant_shortname: 'EC',
    });
    expect(r.statusCode).toBe(201);
    expect(r.json().merchant.fleet_total).toBe(1);
    const again = await api('POST', '/api/v1/merchants', h.operatorToken, {
      org_id: org.id,
      mchid: '1900000203',
      merchant_shortname: 'EC',
    });
    expect(again.statusCode).toBe(409);
  });

  it.skipIf(skip)('registers merchant keys by certificate or public key, several at once, and revokes them', async () => {
    const url = '/api/v1/merchants/1900000101/keys';
    const k1 = makeMerchantKey();
    const byCert = await api('POST', url, h.operatorToken, { certificate_pem: k1.certificatePem, name: 'prod' });
    expect(byCert.statusCode).toBe(201);
    expect(byCert.json().key).toMatchObject({ serial_no: k1.serial, kind: 'certificate', name: 'prod', revoked_at: null });

    const k2 = makeMerchantKey();
    const mismatch = await api('POST', url, h.operatorToken, { certificate_pem: k2.certificatePem, serial_no: 'ABCDEF' });
    expect(mismatch.statusCode).toBe(400);
    expect(mismatch.json().error.message).toContain("is not the certificate's serial");
    const noSerial = await api('POST', url, h.operatorToken, { public_key_pem: k2.publicKeyPem });
    expect(noSerial.statusCode).toBe(400);
    const garbage = await api('POST', url, h.operatorToken, { public_key_pem: 'not a key', serial_no: 'S1' });
    expect(garbage.statusCode).toBe(400);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect((await api('POST', url, h.operatorToken, { public_key_pem: ec, serial_no: 'S1' })).json().error.message).toContain(
      'RSA',
    );
    const byKey = await api('POST', url, h.operatorToken, { public_key_pem: k2.publicKeyPem, serial_no: 'rotation2' });
    expect(byKey.statusCode).toBe(201);
    const dup = await api('POST', url, h.operatorToken, { public_key_pem: k2.publicKeyPem, serial_no: 'ROTATION2' });
    expect(dup.statusCode).toBe(409);

    const listed = (await api('GET', url, h.operatorToken)).json().keys;
    expect(listed.map((k: { serial_no: string }) => k.serial_no)).toEqual([k1.serial, 'rotation2']);
    expect((await api('DELETE', `${url}/ROTATION2`, h.operatorToken)).statusCode).toBe(204);
    expect((await api('DELETE', `${url}/ROTATION2`, h.operatorToken)).statusCode).toBe(404);
    expect((await api('GET', url, h.operatorToken)).json().keys).toHaveLength(1);
    const all = (await api('GET', `${url}?include_revoked=true`, h.operatorToken)).json().keys;
    expect(all.find((k: { serial_no: string }) => k.serial_no === 'rotation2').revoked_at).toEqual(expect.any(String));
    // A revoked serial may be registered again (a re-issued certificate).
    expect(
      (await api('POST', url, h.operatorToken, { public_key_pem: k2.publicKeyPem, serial_no: 'rotation2' })).statusCode,
    ).toBe(201);
  });

  it.skipIf(skip)('sets the key mode and the APIv3 key, which stays sealed', async () => {
    const bad = await api('PATCH', '/api/v1/merchants/1900000101', h.operatorToken, { key_mode: 'both' });
    expect(bad.statusCode).toBe(400);
    const ok = await api('PATCH', '/api/v1/merchants/1900000101', h.operatorToken, {
      key_mode: 'platform_certificate',
      merchant_shortname: '新简称',
    });
    expect(ok.json().merchant).toMatchObject({ key_mode: 'platform_certificate', merchant_shortname: '新简称' });

    expect((await api('PUT', '/api/v1/merchants/1900000101/apiv3-key', h.operatorToken, { apiv3_key: 'short' })).statusCode).toBe(
      400,
    );
    const chosen = 'A'.repeat(16) + 'b'.repeat(16);
    const set = await api('PUT', '/api/v1/merchants/1900000101/apiv3-key', h.operatorToken, { apiv3_key: chosen });
    expect(set.json()).toEqual({});
    const gen = await api('PUT', '/api/v1/merchants/1900000101/apiv3-key', h.operatorToken, {});
    const key = gen.json().apiv3_key as string;
    expect(key).toMatch(/^[A-Za-z0-9]{32}$/);
    const row = await h.deps.db.kysely.selectFrom('merchants').selectAll().executeTakeFirstOrThrow();
    const stored = (
      await h.deps.db.kysely
        .selectFrom('merchants as m')
        .innerJoin('organisations as o', 'o.id', 'm.org_id')
        .select('m.apiv3_key_enc')
        .where('o.mchid', '=', '1900000101')
        .executeTakeFirstOrThrow()
    ).apiv3_key_enc!;
    expect(row).toBeTruthy();
    expect(stored).toMatch(/^v1\./);
    expect(stored).not.toContain(key);
    expect(h.deps.secrets.open(stored)).toBe(key);
    expect((await api('GET', '/api/v1/merchants/1900000101', h.operatorToken)).json().merchant.has_apiv3_key).toBe(true);
  });

  it.skipIf(skip)('attaches, renames and detaches sub-merchants', async () => {
    const add = await api('POST', '/api/v1/merchants/1900000101/sub-merchants', h.operatorToken, {
      name: 'Branch East',
      sub_mchid: '1900000111',
      sub_merchant_shortname: '东店',
    });
    expect(add.statusCode).toBe(201);
    expect(add.json().merchant.sub_merchants).toEqual([
      { org_id: expect.any(String), name: 'Branch East', sub_mchid: '1900000111', sub_merchant_shortname: '东店' },
    ]);
    const merchantAsSub = await api('POST', '/api/v1/merchants/1900000101/sub-merchants', h.operatorToken, {
      org_id: (await api('GET', '/api/v1/merchants/1900000202', h.operatorToken)).json().merchant.org_id,
      sub_mchid: '1900000112',
      sub_merchant_shortname: 'x',
    });
    expect(merchantAsSub.statusCode).toBe(400);
    const renamed = await api('PATCH', '/api/v1/merchants/1900000101/sub-merchants/1900000111', h.operatorToken, {
      sub_merchant_shortname: '东区店',
    });
    expect(renamed.json().merchant.sub_merchants[0].sub_merchant_shortname).toBe('东区店');
    expect((await api('DELETE', '/api/v1/merchants/1900000101/sub-merchants/1900000111', h.operatorToken)).statusCode).toBe(204);
    expect((await api('DELETE', '/api/v1/merchants/1900000101/sub-merchants/1900000111', h.operatorToken)).statusCode).toBe(404);
    expect((await api('GET', '/api/v1/merchants/1900000101', h.operatorToken)).json().merchant.sub_merchants).toEqual([]);
  });

  it.skipIf(skip)('serves the platform public key (JSON and PEM); every process signs with the same sealed key', async () => {
    const r = await api('GET', '/api/v1/merchants/platform-key', vendorKey);
    expect(r.statusCode).toBe(200);
    const k = r.json().platform_key;
    expect(k.pub_key_id).toMatch(/^PUB_KEY_ID_\d{34}$/);
    expect(k.certificate_serial).toMatch(/^[0-9A-F]{40}$/);
    const cert = new X509Certificate(k.certificate_pem);
    expect(cert.serialNumber.toUpperCase()).toBe(k.certificate_serial);
    expect(cert.publicKey.equals(createPublicKey(k.public_key_pem))).toBe(true);
    const pem = await api('GET', '/api/v1/merchants/platform-key?format=pem', vendorKey);
    expect(pem.headers['content-type']).toContain('application/x-pem-file');
    expect(pem.body).toBe(k.public_key_pem);
    expect((await api('GET', '/api/v1/merchants/platform-key', null)).statusCode).toBe(401);

    const row = await h.deps.db.kysely.selectFrom('platform_keys').selectAll().executeTakeFirstOrThrow();
    expect(row.private_key_enc).toMatch(/^v1\./);
    expect(row.private_key_enc).not.toContain('PRIVATE KEY');
    // Another process (another service on the same database and master key) uses the same key.
    const second = new MerchantService(h.deps);
    expect((await second.platformKeys.current()).pubKeyId).toBe(k.pub_key_id);
  });

  it.skipIf(skip)('imports inspection csv all-or-nothing, every error with its line', async () => {
    const header =
      'device_sn,wired_mac,wireless_mac,bluetooth_mac,app_version,camera_sn,imei,result,errors,warnings,inspect_time';
    const bad = [
      header,
      'INSP00001,,,,1.0,,,MAYBE,,,2025-01-01T00:00:00Z',
      'INSP00002,zz:zz,,,1.0,,12,SUCCESS,,,yesterday',
      'NOSUCH0001,,,,1.0,,,SUCCESS,,,2025-01-01T00:00:00Z',
      'insp00002,,,,1.0,,,FAIL,boom,,2025-01-01T00:00:00Z',
      'INSP00003,,,,1.0,,,SUCCESS,,,2025-01-01T00:00:00+08:00',
    ].join('\r\n');
    const r = await h.app.inject({
      method: 'POST',
      url: '/api/v1/inspections/import',
      headers: { ...bearer(vendorKey), 'content-type': 'text/csv' },
      payload: bad,
    });
    expect(r.statusCode).toBe(422);
    expect(r.json().error.code).toBe('IMPORT_REJECTED');
    const errors = r.json().error.details.errors as Array<{ line: number; message: string }>;
    expect(errors.map((e) => e.line)).toEqual([2, 3, 3, 3, 4, 5]);
    expect(errors[0]!.message).toContain('result must be one of SUCCESS, WARN, FAIL');
    expect(errors.slice(1, 4).map((e) => e.message.split(' ')[0])).toEqual(['inspect_time', 'wired_mac', 'imei']);
    expect(errors[4]!.message).toContain('no device with SN NOSUCH0001');
    expect(errors[5]!.message).toContain('appears again (first at line 3)');
    // Nothing was imported, not even the good line.
    expect(await h.deps.db.kysely.selectFrom('device_inspections').selectAll().execute()).toEqual([]);

    const unknownColumn = await h.app.inject({
      method: 'POST',
      url: '/api/v1/inspections/import',
      headers: { ...bearer(vendorKey), 'content-type': 'text/csv' },
      payload: 'device_sn,colour,result,inspect_time\nINSP00001,red,SUCCESS,2025-01-01T00:00:00Z\n',
    });
    expect(unknownColumn.json().error.details.errors).toEqual([
      { line: 1, message: expect.stringContaining('unknown column "colour"') },
    ]);

    // Another vendor cannot import for these devices; the SN reads as unknown to it.
    const foreign = await api('POST', '/api/v1/inspections', otherVendorKey, {
      records: [{ device_sn: 'INSP00001', result: 'SUCCESS', inspect_time: '2025-01-01T00:00:00Z' }],
    });
    expect(foreign.statusCode).toBe(422);
    expect(foreign.json().error.details.errors).toEqual([
      { index: 0, message: 'no device with SN INSP00001 is registered to you' },
    ]);

    const good = await api('POST', '/api/v1/inspections', vendorKey, {
      records: [
        {
          device_sn: 'INSP00001',
          result: 'fail',
          errors: ['camera'],
          inspect_time: '2025-01-01T08:00:00+08:00',
          imei: '861234567890123',
        },
      ],
    });
    expect(good.json()).toEqual({ imported: 1 });
    const got = await api('GET', '/api/v1/inspections/insp00001', vendorKey);
    expect(got.json().inspection).toEqual({
      device_sn: 'INSP00001',
      wired_mac: '',
      wireless_mac: '',
      bluetooth_mac: '',
      app_version: '',
      camera_sn: '',
      imei: '861234567890123',
      result: 'FAIL',
      errors: ['camera'],
      warnings: [],
      inspect_time: '2025-01-01T08:00:00.000+08:00',
    });
    expect((await api('GET', '/api/v1/inspections/INSP00001', otherVendorKey)).statusCode).toBe(404);
    expect((await api('GET', '/api/v1/inspections/INSP00002', vendorKey)).statusCode).toBe(404);
    // A second import replaces the record.
    await api('POST', '/api/v1/inspections', vendorKey, {
      records: [{ device_sn: 'INSP00001', result: 'SUCCESS', inspect_time: '2025-02-01T00:00:00Z' }],
    });
    expect((await api('GET', '/api/v1/inspections/INSP00001', vendorKey)).json().inspection.result).toBe('SUCCESS');
  });
});
