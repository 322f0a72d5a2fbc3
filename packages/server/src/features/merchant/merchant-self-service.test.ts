import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Principal } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { bearer, type Harness, startHarness } from '../../testing/harness.js';
import { makeMerchantKey, OPERATOR } from './merchant.fixtures.js';

const MCHID = '1900000777';
const PASSWORD = 'a long enough password';

/**
 * Merchant self-service (issue 12): the super admins of an organisation that is a merchant manage
 * its keys, APIv3 key, sub-merchants and inspections themselves; a super admin of another
 * organisation and a device admin of the merchant's own cannot.
 */
describe.each(storageBackends())('merchant self-service on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let shopOrg: string;
  let otherOrg: string;
  const tokens = {} as Record<'boss' | 'otherBoss' | 'deviceAdmin' | 'vendor', string>;
  let modelId: string;

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    const s = h.services;
    const user = async (username: string): Promise<Principal> => {
      const u = await s.accounts.createUser(OPERATOR, { username, password: PASSWORD });
      return { kind: 'user', userId: u.id, isOperator: false };
    };
    const boss = await user('shop.boss');
    const otherBoss = await user('other.boss');
    const deviceAdmin = await user('shop.device.admin');
    const id = (p: Principal) => (p as { userId: string }).userId;
    shopOrg = (await s.organisations.create(OPERATOR, { name: 'Shop Co', superAdmin: { userId: id(boss) } })).organisation.id;
    otherOrg = (await s.organisations.create(OPERATOR, { name: 'Other Co', superAdmin: { userId: id(otherBoss) } })).organisation
      .id;
    const root = (await s.organisations.listDepartments(boss, shopOrg))[0]!.id;
    await s.organisations.addMember(OPERATOR, shopOrg, {
      userId: id(deviceAdmin),
      role: 'device_admin',
      departmentId: root,
      scope: [root],
    });
    await s.merchant.createMerchant(OPERATOR, { org_id: shopOrg, mchid: MCHID, merchant_shortname: 'Shop' });
    tokens.boss = (await s.people.createToken(boss, 't')).token;
    tokens.otherBoss = (await s.people.createToken(otherBoss, 't')).token;
    tokens.deviceAdmin = (await s.people.createToken(deviceAdmin, 't')).token;
    const v = await s.vendors.create(OPERATOR, { name: 'Acme' });
    tokens.vendor = (await s.accounts.createVendorKey(OPERATOR, v.id, 'k')).token;
    modelId = (await s.models.create(OPERATOR, v.id, { name: 'Kiosk' })).model.model_id;
    // One device in the merchant's list (bound to the shop), one elsewhere.
    for (const sn of ['SELF00001', 'SELF00002']) await s.devices.register(OPERATOR, modelId, sn);
    await s.binding.bind(OPERATOR, 'SELF00001', { type: 'org', id: shopOrg });
    await s.binding.bind(OPERATOR, 'SELF00002', { type: 'org', id: otherOrg });
  });
  afterAll(async () => {
    await h?.close();
  });

  const api = (method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE', url: string, token: string, payload?: object | string) =>
    h.app.inject({
      method,
      url,
      headers: { ...bearer(token), ...(typeof payload === 'string' ? { 'content-type': 'text/csv' } : {}) },
      ...(payload !== undefined ? { payload } : {}),
    });
  const csv = (sn: string) => `device_sn,result,inspect_time\n${sn},SUCCESS,2026-01-01T10:00:00.000+08:00\n`;

  it.skipIf(skip)("finds an organisation's merchant for its super admins and operators only", async () => {
    const url = `/api/v1/orgs/${shopOrg}/merchant`;
    for (const token of [tokens.boss, h.operatorToken]) {
      const r = await api('GET', url, token);
      expect(r.statusCode).toBe(200);
      expect(r.json().merchant).toMatchObject({ org_id: shopOrg, mchid: MCHID, merchant_shortname: 'Shop' });
    }
    for (const token of [tokens.otherBoss, tokens.deviceAdmin, tokens.vendor]) {
      expect((await api('GET', url, token)).json().error.code).toBe('FORBIDDEN');
    }
    // Not a merchant: a coded 404 for whoever may ask.
    const none = await api('GET', `/api/v1/orgs/${otherOrg}/merchant`, tokens.otherBoss);
    expect([none.statusCode, none.json().error.code]).toEqual([404, 'MERCHANT_NOT_FOUND']);
    expect((await api('GET', '/api/v1/orgs/org_nowhere/merchant', h.operatorToken)).json().error.code).toBe('ORG_NOT_FOUND');
    expect((await api('GET', '/api/v1/orgs/org_nowhere/merchant', tokens.boss)).json().error.code).toBe('FORBIDDEN');
  });

  it.skipIf(skip)("lets the merchant organisation's super admin manage keys, the APIv3 key and the key mode", async () => {
    const base = `/api/v1/merchants/${MCHID}`;
    expect((await api('GET', base, tokens.boss)).json().merchant.mchid).toBe(MCHID);

    const key = makeMerchantKey(MCHID);
    const added = await api('POST', `${base}/keys`, tokens.boss, { certificate_pem: key.certificatePem, name: 'prod' });
    expect(added.statusCode).toBe(201);
    expect((await api('GET', `${base}/keys`, tokens.boss)).json().keys.map((k: { serial_no: string }) => k.serial_no)).toEqual([
      key.serial,
    ]);
    expect((await api('DELETE', `${base}/keys/${key.serial}`, tokens.boss)).statusCode).toBe(204);
    expect((await api('GET', `${base}/keys`, tokens.boss)).json().keys).toEqual([]);

    const gen = await api('PUT', `${base}/apiv3-key`, tokens.boss, {});
    expect(gen.json().apiv3_key).toMatch(/^[A-Za-z0-9]{32}$/);
    expect((await api('GET', base, tokens.boss)).json().merchant.has_apiv3_key).toBe(true);

    const mode = await api('PATCH', base, tokens.boss, { key_mode: 'platform_certificate' });
    expect(mode.json().merchant.key_mode).toBe('platform_certificate');
    // The short name is the merchant as WeChat Pay knows it: operators only; nothing changed.
    const renamed = await api('PATCH', base, tokens.boss, { merchant_shortname: 'Mine', key_mode: 'public_key' });
    expect(renamed.json().error.code).toBe('FORBIDDEN');
    expect((await api('GET', base, tokens.boss)).json().merchant).toMatchObject({
      merchant_shortname: 'Shop',
      key_mode: 'platform_certificate',
    });

    const pem = await api('GET', '/api/v1/merchants/platform-key?format=pem', tokens.boss);
    expect(pem.body).toContain('BEGIN PUBLIC KEY');

    // Still the operators' own: making merchants, listing them all, reindexing.
    expect((await api('GET', '/api/v1/merchants', tokens.boss)).statusCode).toBe(403);
    expect((await api('POST', `${base}/fleet/reindex`, tokens.boss, {})).statusCode).toBe(403);
    const create = await api('POST', '/api/v1/merchants', tokens.boss, {
      org_id: otherOrg,
      mchid: '1900000888',
      merchant_shortname: 'X',
    });
    expect(create.statusCode).toBe(403);

    // The merchant organisation's audit log shows what its super admin did.
    const actions = await h.deps.db.kysely
      .selectFrom('audit_log')
      .select('action')
      .where('org_id', '=', shopOrg)
      .where('actor', 'like', 'user:%')
      .orderBy('at')
      .execute();
    expect(actions.map((a) => a.action)).toEqual(
      expect.arrayContaining(['merchant.key.add', 'merchant.key.revoke', 'merchant.apiv3_key.set', 'merchant.update']),
    );
  });

  it.skipIf(skip)('lets them attach new sub-merchants and their own organisations, rename and detach them', async () => {
    const base = `/api/v1/merchants/${MCHID}/sub-merchants`;
    const made = await api('POST', base, tokens.boss, {
      name: 'Branch',
      sub_mchid: '1900000901',
      sub_merchant_shortname: 'Branch',
    });
    expect(made.statusCode).toBe(201);
    expect(made.json().merchant.sub_merchants.map((x: { sub_mchid: string }) => x.sub_mchid)).toEqual(['1900000901']);
    expect((await api('PATCH', `${base}/1900000901`, tokens.boss, { sub_merchant_shortname: 'Branch 1' })).statusCode).toBe(200);
    expect((await api('DELETE', `${base}/1900000901`, tokens.boss)).statusCode).toBe(204);

    // Another organisation would bring its devices into this merchant's list: only its own super admin may.
    const theirs = await api('POST', base, tokens.boss, {
      org_id: otherOrg,
      sub_mchid: '1900000902',
      sub_merchant_shortname: 'O',
    });
    expect(theirs.json().error.code).toBe('FORBIDDEN');
    expect((await api('GET', `/api/v1/merchants/${MCHID}`, tokens.boss)).json().merchant.sub_merchants).toEqual([]);
    const bossId = (
      await h.deps.db.kysely.selectFrom('users').select('id').where('username', '=', 'shop.boss').executeTakeFirstOrThrow()
    ).id;
    await h.services.organisations.addMember(OPERATOR, otherOrg, { userId: bossId, role: 'super_admin' });
    try {
      const mine = await api('POST', base, tokens.boss, {
        org_id: otherOrg,
        sub_mchid: '1900000902',
        sub_merchant_shortname: 'O',
      });
      expect(mine.statusCode).toBe(201);
      expect(mine.json().merchant.fleet_total).toBe(2); // the other organisation's device joined the list
      expect((await api('DELETE', `${base}/1900000902`, tokens.boss)).statusCode).toBe(204);
    } finally {
      await h.deps.db.kysely.deleteFrom('org_members').where('org_id', '=', otherOrg).where('user_id', '=', bossId).execute();
    }
  });

  it.skipIf(skip)("imports inspection records for the devices in the merchant's list only", async () => {
    const url = `/api/v1/merchants/${MCHID}/inspections/import`;
    const ok = await api('POST', url, tokens.boss, csv('SELF00001'));
    expect([ok.statusCode, ok.json()]).toEqual([200, { imported: 1 }]);
    expect((await h.services.inspections.get(OPERATOR, 'SELF00001')).result).toBe('SUCCESS');

    const outside = await api('POST', url, tokens.boss, csv('SELF00002'));
    expect(outside.statusCode).toBe(422);
    expect(outside.json().error.details.errors).toEqual([
      { line: 2, message: `no device with SN SELF00002 is in the list of merchant ${MCHID}` },
    ]);
    // The vendors' own import stays theirs.
    expect((await api('POST', '/api/v1/inspections/import', tokens.boss, csv('SELF00001'))).statusCode).toBe(403);
    expect((await api('POST', url, h.operatorToken, csv('SELF00001'))).statusCode).toBe(200);
  });

  it.skipIf(skip)("refuses a super admin of another organisation and the merchant's device admin everywhere", async () => {
    const key = makeMerchantKey(MCHID);
    await h.services.merchant.addKey(OPERATOR, MCHID, { public_key_pem: key.publicKeyPem, serial_no: 'KEEP01' });
    const base = `/api/v1/merchants/${MCHID}`;
    const calls: Array<[Parameters<typeof api>[0], string, (object | string)?]> = [
      ['GET', base],
      ['PATCH', base, { key_mode: 'public_key' }],
      ['PUT', `${base}/apiv3-key`, {}],
      ['GET', `${base}/keys`],
      ['POST', `${base}/keys`, { public_key_pem: key.publicKeyPem, serial_no: 'NEW01' }],
      ['DELETE', `${base}/keys/KEEP01`],
      ['POST', `${base}/sub-merchants`, { name: 'X', sub_mchid: '1900000903', sub_merchant_shortname: 'X' }],
      ['POST', `${base}/inspections/import`, csv('SELF00001')],
      // An mchid that does not exist reads the same: nothing tells an outsider which ones do.
      ['GET', '/api/v1/merchants/1999999999'],
    ];
    for (const who of ['otherBoss', 'deviceAdmin', 'vendor'] as const) {
      for (const [method, url, body] of calls) {
        const r = await api(method, url, tokens[who], body);
        expect(`${who} ${method} ${url} ${r.statusCode} ${r.json().error?.code}`).toBe(`${who} ${method} ${url} 403 FORBIDDEN`);
      }
    }
    // Nothing they tried took effect.
    const m = (await api('GET', base, h.operatorToken)).json().merchant;
    expect(m.keys.map((k: { serial_no: string }) => k.serial_no)).toEqual(['KEEP01']);
    expect(m.sub_merchants).toEqual([]);
  });
});
