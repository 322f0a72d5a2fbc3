import { createPublicKey, createVerify } from 'node:crypto';
import axios, { type AxiosError, type AxiosResponse, type InternalAxiosRequestConfig } from 'axios';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Wechatpay } from 'wechatpay-axios-plugin';
import Pay from 'wechatpay-node-v3';
import { storageBackends } from '../../testing/backends.js';
import { type Harness, startHarness } from '../../testing/harness.js';
import { makeMerchantKey, OPERATOR, type SeededFleet, seedFleet, setOwner } from './merchant.fixtures.js';
import { rfc3339 } from './merchant.service.js';

const MCHID = '1900000001';

interface Platform {
  pub_key_id: string;
  public_key_pem: string;
  certificate_serial: string;
}

/** Checks a reply's Wechatpay-* signature ourselves (the axios plugin only checks 2xx). */
function verifyReply(headers: Record<string, unknown>, body: string, platform: Platform): boolean {
  const h = (k: string) => String(headers[k.toLowerCase()] ?? '');
  return createVerify('RSA-SHA256')
    .update(`${h('Wechatpay-Timestamp')}\n${h('Wechatpay-Nonce')}\n${body}\n`)
    .verify(createPublicKey(platform.public_key_pem), h('Wechatpay-Signature'), 'base64');
}

function authParams(header: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of header.matchAll(/(\w+)="([^"]*)"/g)) out[m[1]!] = m[2]!;
  return out;
}

describe.each(storageBackends())('merchant v3 API on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let base: string;
  let fleet: SeededFleet;
  let platform: Platform;

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    const addr = h.app.server.address();
    base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    fleet = await seedFleet(h, { mchid: MCHID, own: 100, sub: [80, 70], prefix: 'HSA1RF' });
    // Devices of another merchant and unowned ones must never show.
    const other = await seedFleet(h, { mchid: '1900000099', own: 3, sub: [2, 1], prefix: 'OTHER' });
    expect(other.sns).toHaveLength(6);
    const m = await h.services.devices.register(OPERATOR, fleet.modelIds[0]!, 'LOOSE00001');
    expect(m.device.bound).toBe(false);
    platform = (
      await h.app.inject({
        method: 'GET',
        url: '/api/v1/merchants/platform-key',
        headers: { authorization: `Bearer ${h.operatorToken}` },
      })
    ).json().platform_key;
  });
  afterAll(async () => {
    await h?.close();
  });
  beforeEach(() => {
    // The harness clock is frozen; the clients sign with the real time.
    if (!skip) h.clock.set(Date.now());
  });

  /** A merchant client with a fresh API key (each has its own 20/s budget). */
  async function client(opts: { upper?: boolean } = {}) {
    const key = makeMerchantKey(MCHID);
    await h.services.merchant.addKey(OPERATOR, MCHID, { certificate_pem: key.certificatePem });
    const wxpay = new Wechatpay({
      mchid: MCHID,
      serial: opts.upper === false ? key.serial.toLowerCase() : key.serial,
      privateKey: key.privateKeyPem,
      certs: { [platform.pub_key_id]: platform.public_key_pem },
      baseURL: `${base}/`,
    });
    // The plugin's chain is typed by an index signature; these are the two endpoints it reaches.
    const v3 = wxpay.v3!.iotmanage!;
    const devices = (config: Record<string, unknown>): Promise<AxiosResponse> => v3.devices!.get(config);
    const inspection = (device_sn: string): Promise<AxiosResponse> => v3.deviceInspections!._device_sn_!.get({ device_sn });
    return { devices, inspection, key };
  }

  async function expectedRows() {
    return h.deps.db.kysely
      .selectFrom('devices as d')
      .innerJoin('models as m', 'm.model_id', 'd.model_id')
      .innerJoin('organisations as o', 'o.id', 'd.owner_id')
      .select([
        'd.sn',
        'd.camera_sn',
        'd.app_scene_code',
        'd.operating_system',
        'd.activated_at',
        'm.category_code',
        'm.class_code',
        'm.name',
        'o.id as owner',
        'o.mchid as owner_mchid',
        'o.merchant_shortname as owner_short',
      ])
      .where('d.owner_type', '=', 'org')
      .where('d.owner_id', 'in', [fleet.orgId, ...fleet.subs.map((s) => s.orgId)])
      .execute();
  }

  it.skipIf(skip)('wechatpay-axios-plugin pages through every device and verifies every reply itself', async () => {
    const { devices } = await client();
    const seen: Array<Record<string, string>> = [];
    let params: Record<string, string | number> | null = { limit: 100, offset: 0 };
    let pages = 0;
    while (params) {
      const res: AxiosResponse = await devices({ params });
      pages++;
      // The plugin throws unless the signature, serial and timestamp check out; these are extras.
      expect(res.headers['wechatpay-signature-type']).toBe('WECHATPAY2-SHA256-RSA2048');
      expect(res.headers['wechatpay-serial']).toBe(platform.pub_key_id);
      expect(res.headers['request-id']).toMatch(/^[0-9a-f-]{36}$/);
      const body = res.data;
      expect(body.total_count).toBe(250);
      expect(body.limit).toBe(Number(params.limit));
      expect(body.offset).toBe(Number(params.offset));
      expect(body.links.self).toBe(`/v3/iotmanage/devices?offset=${params.offset}&limit=${params.limit}`);
      expect(JSON.stringify(body)).not.toContain('null');
      seen.push(...body.data);
      params = body.links.next ? Object.fromEntries(new URL(body.links.next, base).searchParams) : null;
      if (pages === 1) expect(body.links.prev).toBe('');
    }
    expect(pages).toBe(3);
    // The stable order is binding order, and the list is exactly the merchant's devices.
    expect(seen.map((d) => d.device_sn)).toEqual(fleet.sns);

    const rows = new Map((await expectedRows()).map((r) => [r.sn, r]));
    const categories: Record<string, string> = { '3': '行业收银硬件', '6': '智能扫码枪' };
    const classes: Record<string, string> = { '101': '大屏自助收银机', '110': '手持设备' };
    const scenes: Record<string, string> = { '1': 'SDK模式', '2': 'APP模式', '3': '离线模式', '4': '境外APP模式' };
    for (const d of seen) {
      const r = rows.get(d.device_sn!)!;
      const sub = fleet.subs.find((s) => s.orgId === r.owner);
      const expected: Record<string, string> = {
        device_sn: r.sn,
        device_category_code: r.category_code,
        device_category: categories[r.category_code]!,
        device_class_code: r.class_code,
        device_class: classes[r.class_code]!,
        device_model: r.name,
        activation_status: r.activated_at !== null ? 'ACTIVATED' : 'INACTIVATED',
        mchid: MCHID,
        merchant_shortname: '某公司HSA1RF',
        ...(r.camera_sn ? { camera_sn: r.camera_sn } : {}),
        ...(r.app_scene_code ? { app_scene_code: r.app_scene_code, app_scene: scenes[r.app_scene_code]! } : {}),
        ...(r.operating_system ? { operating_system: r.operating_system } : {}),
        ...(r.activated_at !== null ? { activation_time: rfc3339(Number(r.activated_at)) } : {}),
        ...(sub ? { sub_mchid: sub.subMchid, sub_merchant_shortname: sub.shortname } : {}),
      };
      expect(d).toEqual(expected);
    }
    // Every owner kind and every optional field occurs at least once.
    expect(seen.filter((d) => d.sub_mchid === `${MCHID}1`).length).toBe(80);
    expect(seen.filter((d) => d.sub_mchid === `${MCHID}2`).length).toBe(70);
    expect(seen.filter((d) => !d.sub_mchid).length).toBe(100);
    const activated = seen.find((d) => d.activation_status === 'ACTIVATED')!;
    expect(activated.activation_time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+08:00$/);
    expect(Date.parse(activated.activation_time!)).toBe(Number(rows.get(activated.device_sn!)!.activated_at));
  });

  it.skipIf(skip)('answers the last and past-the-end pages with empty next links and a prev link', async () => {
    const { devices } = await client();
    const last = (await devices({ params: { limit: 100, offset: 200 } })).data;
    expect(last.data).toHaveLength(50);
    expect(last.links).toEqual({
      next: '',
      prev: '/v3/iotmanage/devices?offset=100&limit=100',
      self: '/v3/iotmanage/devices?offset=200&limit=100',
    });
    const past = (await devices({ params: { limit: 10, offset: 1000 } })).data;
    expect(past).toMatchObject({
      data: [],
      total_count: 250,
      links: { next: '', prev: '/v3/iotmanage/devices?offset=240&limit=10' },
    });
    const odd = (await devices({ params: { limit: 7, offset: 3 } })).data;
    expect(odd.data.map((d: { device_sn: string }) => d.device_sn)).toEqual(fleet.sns.slice(3, 10));
  });

  async function expectSignError(p: Promise<unknown>): Promise<{ body: Record<string, unknown>; auth: Record<string, string> }> {
    const e = (await p.then(
      () => null,
      (x: AxiosError) => x,
    )) as AxiosError | null;
    expect(e, 'the request should have failed').not.toBeNull();
    expect(e!.response?.status).toBe(401);
    const raw = e!.response!.data;
    const body = (typeof raw === 'string' ? JSON.parse(raw) : raw) as Record<string, unknown>;
    expect(body.code).toBe('SIGN_ERROR');
    // Errors are signed too, and carry a Request-ID.
    expect(verifyReply(e!.response!.headers as Record<string, unknown>, JSON.stringify(body), platform)).toBe(true);
    expect(e!.response!.headers['request-id']).toBeTruthy();
    const sent = e!.config!.headers.Authorization as string;
    return { body, auth: authParams(sent) };
  }

  it.skipIf(skip)('refuses a 6-minute-old timestamp with 401 SIGN_ERROR showing what it reconstructed', async () => {
    const { devices } = await client();
    h.clock.set(Date.now() + 6 * 60_000);
    const { body, auth } = await expectSignError(devices({ params: { limit: 10, offset: 0 } }));
    const url = '/v3/iotmanage/devices?limit=10&offset=0';
    const message = `GET\n${url}\n${auth.timestamp}\n${auth.nonce_str}\n\n`;
    expect(body.detail).toMatchObject({
      field: 'timestamp',
      location: 'authorization',
      sign_information: { method: 'GET', url, sign_message_length: Buffer.byteLength(message), truncated_sign_message: message },
    });
    // Within the window again, the same client is accepted.
    h.clock.set(Date.now() + 4 * 60_000);
    const ok = await devices({ params: { limit: 1, offset: 0 } });
    expect(ok.status).toBe(200);
  });

  it.skipIf(skip)('refuses a replayed nonce with 401 SIGN_ERROR', async () => {
    const { devices } = await client();
    const first = await devices({ params: { limit: 5, offset: 0 } });
    const captured = first.config.headers.Authorization as string;
    // The same request again, the Authorization header sent byte for byte as before.
    const replay = devices({
      params: { limit: 5, offset: 0 },
      transformRequest: [
        (data: unknown, headers: { set(k: string, v: string): void }) => {
          headers.set('Authorization', captured);
          return data;
        },
      ],
    });
    const { body, auth } = await expectSignError(replay);
    expect(auth.nonce_str).toBe(authParams(captured).nonce_str);
    expect(body.detail).toMatchObject({
      field: 'nonce_str',
      sign_information: { url: '/v3/iotmanage/devices?limit=5&offset=0' },
    });
  });

  it.skipIf(skip)('refuses a query tampered with after signing, echoing the URL it verified', async () => {
    const { devices } = await client();
    const http = axios.getAdapter('http');
    // A proxy in the middle raises the limit after the client signed limit=5.
    const tampered = devices({
      params: { limit: 5, offset: 0 },
      adapter: (config: InternalAxiosRequestConfig) => http({ ...config, params: { limit: 100, offset: 0 } }),
    });
    const { body } = await expectSignError(tampered);
    expect(body.detail).toMatchObject({
      field: 'signature',
      detail: { issue: 'sign not match' },
      sign_information: { method: 'GET', url: '/v3/iotmanage/devices?limit=100&offset=0' },
    });
  });

  it.skipIf(skip)('answers the 21st request within one second with 429 FREQUENCY_LIMITED', async () => {
    // Requests are fired together; if this machine was too slow to fit 21 in one second, try again.
    for (let attempt = 0; attempt < 5; attempt++) {
      const { devices } = await client();
      const started = Date.now();
      const results = await Promise.all(
        Array.from({ length: 21 }, () =>
          devices({ params: { limit: 1, offset: 0 } }).then(
            (r: AxiosResponse) => ({ status: r.status, data: r.data }),
            (e: AxiosError) => ({ status: e.response?.status, data: e.response?.data }),
          ),
        ),
      );
      if (Date.now() - started >= 1000) continue;
      const statuses = results.map((r) => r.status);
      expect(statuses.filter((s) => s === 200)).toHaveLength(20);
      const limited = results.filter((r) => r.status === 429);
      expect(limited).toHaveLength(1);
      expect(limited[0]!.data).toMatchObject({ code: 'FREQUENCY_LIMITED' });
      return;
    }
    throw new Error('no burst of 21 requests fitted in one second in 5 attempts');
  });

  it.skipIf(skip)('counts the limit per endpoint (rule 20000730): list and inspections each get 20 in one second', async () => {
    const status = (p: Promise<AxiosResponse>) =>
      p.then(
        (r) => ({ status: r.status, code: undefined as string | undefined }),
        (e: AxiosError) => ({ status: e.response?.status, code: (e.response?.data as { code?: string })?.code }),
      );
    for (let attempt = 0; attempt < 5; attempt++) {
      const { devices, inspection } = await client();
      const started = Date.now();
      // 21 of each, interleaved, from one client; every inspection SN differs (one budget per endpoint, not per SN).
      const [list, insp] = await Promise.all([
        Promise.all(Array.from({ length: 21 }, () => status(devices({ params: { limit: 1, offset: 0 } })))),
        Promise.all(Array.from({ length: 21 }, (_, i) => status(inspection(fleet.sns[i]!)))),
      ]);
      if (Date.now() - started >= 1000) continue;
      for (const results of [list, insp]) {
        expect(results.filter((r) => r.status === 429)).toEqual([{ status: 429, code: 'FREQUENCY_LIMITED' }]);
      }
      expect(list.filter((r) => r.status === 200)).toHaveLength(20);
      // Inspections answer 200 or 404 (no record) — either way the request was served, not limited.
      expect(insp.filter((r) => r.status === 200 || r.status === 404)).toHaveLength(20);
      return;
    }
    throw new Error('no burst of 42 requests fitted in one second in 5 attempts');
  });

  it.skipIf(skip)('requires limit (1–100) and offset: 400 PARAM_ERROR with detail', async () => {
    const { devices } = await client();
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ offset: 0 }, 'limit'],
      [{ limit: 10 }, 'offset'],
      [{ limit: 101, offset: 0 }, 'limit'],
      [{ limit: 0, offset: 0 }, 'limit'],
      [{ limit: 'ten', offset: 0 }, 'limit'],
      [{ limit: 10, offset: -1 }, 'offset'],
    ];
    for (const [params, field] of cases) {
      const e = (await devices({ params }).catch((x: AxiosError) => x)) as AxiosError;
      expect(e.response?.status, JSON.stringify(params)).toBe(400);
      const body = e.response!.data as { code: string; detail: Record<string, unknown> };
      expect(body.code).toBe('PARAM_ERROR');
      expect(body.detail).toMatchObject({ field, location: 'query' });
      expect(verifyReply(e.response!.headers as Record<string, unknown>, JSON.stringify(body), platform)).toBe(true);
    }
  });

  it.skipIf(skip)('serves inspections for the merchant’s devices only, 404 for unknown SNs', async () => {
    const { inspection } = await client();
    const sn = fleet.sns[4]!;
    const csv = [
      'device_sn,wired_mac,wireless_mac,bluetooth_mac,app_version,camera_sn,imei,result,errors,warnings,inspect_time',
      `${sn},aa-bb-cc-dd-ee-01,AABBCCDDEE02,aa:bb:cc:dd:ee:03,1.2.3,CAM-1,861234567890123,WARN,,fan noise|scratch,2025-04-01T10:00:00.250+08:00`,
      'OTHER00000,,,,,,,SUCCESS,,,2025-04-01T10:00:00Z',
    ].join('\n');
    const imp = await h.app.inject({
      method: 'POST',
      url: '/api/v1/inspections/import',
      headers: { authorization: `Bearer ${h.operatorToken}`, 'content-type': 'text/csv' },
      payload: csv,
    });
    expect(imp.statusCode, imp.body).toBe(200);
    expect(imp.json()).toEqual({ imported: 2 });

    const r = await inspection(sn.toLowerCase());
    expect(r.data).toEqual({
      device_sn: sn,
      wired_mac: 'AA:BB:CC:DD:EE:01',
      wireless_mac: 'AA:BB:CC:DD:EE:02',
      bluetooth_mac: 'AA:BB:CC:DD:EE:03',
      app_version: '1.2.3',
      camera_sn: 'CAM-1',
      imei: '861234567890123',
      result: 'WARN',
      errors: [],
      warnings: ['fan noise', 'scratch'],
      inspect_time: '2025-04-01T10:00:00.250+08:00',
    });
    for (const [device_sn, status, code] of [
      ['NOSUCHDEVICE1', 404, 'RESOURCE_NOT_EXISTS'],
      ['OTHER00000', 404, 'RESOURCE_NOT_EXISTS'], // another merchant's device
      [fleet.sns[5]!, 404, 'RESOURCE_NOT_EXISTS'], // no record imported
      ['AB12', 400, 'PARAM_ERROR'],
    ] as const) {
      const e = (await inspection(device_sn).catch((x: AxiosError) => x)) as AxiosError;
      expect(e.response?.status, device_sn).toBe(status);
      expect((e.response!.data as { code: string }).code).toBe(code);
    }
  });

  it.skipIf(skip)('signs unknown-route 404s, accepts mch_id, any parameter order and a lower-case serial', async () => {
    const nf = await fetch(`${base}/v3/iotmanage/nothing-here`);
    expect(nf.status).toBe(404);
    const text = await nf.text();
    expect(JSON.parse(text).code).toBe('NOT_FOUND');
    expect(verifyReply(Object.fromEntries(nf.headers), text, platform)).toBe(true);
    expect(nf.headers.get('request-id')).toBeTruthy();

    const key = makeMerchantKey(MCHID);
    await h.services.merchant.addKey(OPERATOR, MCHID, { certificate_pem: key.certificatePem });
    const url = '/v3/iotmanage/devices?offset=0&limit=2';
    const ts = String(Math.floor(Date.now() / 1000));
    const nonce = 'VKZ4Y0QA1PL6OL1Z';
    const { createSign } = await import('node:crypto');
    const signature = createSign('RSA-SHA256').update(`GET\n${url}\n${ts}\n${nonce}\n\n`).sign(key.privateKeyPem, 'base64');
    const res = await fetch(base + url, {
      headers: {
        authorization: `WECHATPAY2-SHA256-RSA2048 signature="${signature}", serial_no="${key.serial.toLowerCase()}",timestamp="${ts}",nonce_str="${nonce}",mch_id="${MCHID}"`,
      },
    });
    const body = await res.text();
    expect(res.status, body).toBe(200);
    expect(JSON.parse(body).data).toHaveLength(2);
    expect(verifyReply(Object.fromEntries(res.headers), body, platform)).toBe(true);

    // No HEAD twin of the GET routes: its headers would sign a body that is not sent.
    expect((await fetch(base + url, { method: 'HEAD' })).status).toBe(404);

    const missing = await fetch(base + url);
    expect(missing.status).toBe(401);
    expect(await missing.json()).toMatchObject({ code: 'SIGN_ERROR', detail: { field: 'authorization' } });
  });

  it.skipIf(skip)('accepts every active key for rotation and refuses a revoked one', async () => {
    const a = await client();
    const b = await client();
    expect((await a.devices({ params: { limit: 1, offset: 0 } })).status).toBe(200);
    expect((await b.devices({ params: { limit: 1, offset: 0 } })).status).toBe(200);
    await h.services.merchant.revokeKey(OPERATOR, MCHID, a.key.serial.toLowerCase());
    const { body } = await expectSignError(a.devices({ params: { limit: 1, offset: 0 } }));
    expect(body.detail).toMatchObject({ field: 'serial_no' });
    expect((await b.devices({ params: { limit: 1, offset: 0 } })).status).toBe(200);
  });

  it.skipIf(skip)('platform-certificate mode works with wechatpay-node-v3’s certificate download', async () => {
    const { apiv3_key } = await h.services.merchant.setApiV3Key(OPERATOR, MCHID);
    expect(apiv3_key).toHaveLength(32);
    await h.services.merchant.update(OPERATOR, MCHID, { key_mode: 'platform_certificate' });
    const key = makeMerchantKey(MCHID);
    await h.services.merchant.addKey(OPERATOR, MCHID, { certificate_pem: key.certificatePem });

    const REAL = 'https://api.mch.weixin.qq.com';
    const to = (u: string) => (u.startsWith(REAL) ? base + u.slice(REAL.length) : u.startsWith('/') ? base + u : u);
    const pay = new Pay({
      appid: 'wx0000000000000001',
      mchid: MCHID,
      publicKey: Buffer.from(key.certificatePem),
      privateKey: Buffer.from(key.privateKeyPem),
      key: apiv3_key!,
    });
    const transport = {
      get: async (url: string, headers: Record<string, string>) => {
        const r = await fetch(to(url), { headers });
        const text = await r.text();
        return { status: r.status, data: text ? JSON.parse(text) : undefined, headers: Object.fromEntries(r.headers), text };
      },
      post: async () => {
        throw new Error('not used');
      },
      upload: async () => {
        throw new Error('not used');
      },
    };
    pay.createHttp(transport as never);
    // The iotmanage endpoints are not among node-v3's methods: its own signer is used directly (§A5).
    const internals = pay as unknown as {
      fetchCertificates(apiSecret: string): Promise<void>;
      buildAuthorization(method: string, url: string): string;
      getHeaders(authorization: string): Record<string, string>;
    };
    const statics = Pay as unknown as { certificates: Record<string, string> };
    statics.certificates = {};
    await internals.fetchCertificates(apiv3_key!);
    expect(Object.keys(statics.certificates)).toEqual([platform.certificate_serial]);
    expect(createPublicKey(statics.certificates[platform.certificate_serial]!).export({ type: 'spki', format: 'pem' })).toBe(
      platform.public_key_pem,
    );

    // A list request signed by node-v3, its reply verified by node-v3 against the downloaded certificate.
    const path = '/v3/iotmanage/devices?limit=10&offset=0';
    const r = await transport.get(path, internals.getHeaders(internals.buildAuthorization('GET', path)));
    expect(r.status, r.text).toBe(200);
    expect(r.headers['wechatpay-serial']).toBe(platform.certificate_serial);
    const ok = await pay.verifySign({
      timestamp: r.headers['wechatpay-timestamp']!,
      nonce: r.headers['wechatpay-nonce']!,
      body: r.text,
      serial: r.headers['wechatpay-serial']!,
      signature: r.headers['wechatpay-signature']!,
    });
    expect(ok).toBe(true);
    expect(r.data.data).toHaveLength(10);

    // A client that names the public key in Wechatpay-Serial gets replies signed under that name.
    const asked = await transport.get(path.replace('10', '11'), {
      ...internals.getHeaders(internals.buildAuthorization('GET', path.replace('10', '11'))),
      'Wechatpay-Serial': platform.pub_key_id,
    });
    expect(asked.headers['wechatpay-serial']).toBe(platform.pub_key_id);
    await h.services.merchant.update(OPERATOR, MCHID, { key_mode: 'public_key' });
  });

  it.skipIf(skip)('follows ownership: an unbound device leaves the list, the rest keep their order', async () => {
    const { devices } = await client();
    const gone = fleet.sns[10]!;
    await setOwner(h, gone, null);
    const all: string[] = [];
    for (let offset = 0; ; offset += 100) {
      const page = (await devices({ params: { limit: 100, offset } })).data;
      expect(page.total_count).toBe(249);
      all.push(...page.data.map((d: { device_sn: string }) => d.device_sn));
      if (!page.links.next) break;
    }
    expect(all).toEqual(fleet.sns.filter((s) => s !== gone));
    // Bound again, it comes back at the end.
    await setOwner(h, gone, { type: 'org', id: fleet.subs[0]!.orgId });
    const tail = (await devices({ params: { limit: 1, offset: 249 } })).data;
    expect(tail.data[0]).toMatchObject({ device_sn: gone, sub_mchid: fleet.subs[0]!.subMchid });
    expect(await h.services.merchant.reindexFleet(OPERATOR, MCHID)).toEqual({ removed: 0, added: 0, total: 250 });
  });
});
