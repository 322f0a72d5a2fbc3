import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DomainEvent } from '../../shared/domain-events.js';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { type Harness, startHarness } from '../../testing/harness.js';
import { subscribeDevice, WireDevice } from '../gateway/wire-device.js';
import { acmeOrg, type Browser, login, type OrgFixture, PASSWORD, vendorWithModels } from '../people/people.fixture.js';
import { startCloudJobs } from './cloud-jobs.js';

// biome-ignore lint/suspicious/noExplicitAny: answers are JSON, checked by the assertions
type Json = Record<string, any>;

/**
 * The §B3 device-scoped API and the seed-000 management codes, end to end over HTTP: a vendor's
 * cloud speaks for its device with a device_access_token; people scan what it generates.
 */
describe.each(storageBackends())('cloud device API on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let org: OrgFixture;
  let models: Record<string, string>;
  let boss: Browser;
  let carol: Browser;
  const modelTokens: Record<string, string> = {};
  const events: DomainEvent[] = [];
  const wires: WireDevice[] = [];

  const cgi = async (path: string, q: Record<string, string>, body: object): Promise<Json> => {
    const r = await h.app.inject({ method: 'POST', url: `/cgi-bin/openhw/${path}?${new URLSearchParams(q)}`, payload: body });
    expect(r.statusCode).toBe(200);
    return r.json();
  };
  const dev = (token: string, path: string, body: object = {}) => cgi(`device/${path}`, { device_access_token: token }, body);
  const ofType = <T extends DomainEvent['type']>(t: T, sn: string) =>
    events.filter((e): e is Extract<DomainEvent, { type: T }> => e.type === t && 'sn' in e && e.sn === sn);

  async function modelToken(pk: string): Promise<string> {
    const { model_secret } = await h.services.models.rotateSecret(SYSTEM_CLI, models[pk]!);
    const { model_ticket } = await h.services.models.currentTicket(SYSTEM_CLI, models[pk]!);
    const r = await cgi('get_model_token', {}, { model_id: models[pk], model_secret, model_ticket });
    return r.model_access_token as string;
  }

  /** Registers and binds an SN to Acme (visible to Sales), then exchanges a bind auth_code like a vendor would. */
  async function cloudDevice(sn: string, pk = 'pkC'): Promise<{ secretNo: string; device_secret: string; token: string }> {
    const { secret_no } = await h.services.devices.register(SYSTEM_CLI, models[pk]!, sn);
    await h.services.binding.bind(
      SYSTEM_CLI,
      sn,
      { type: 'org', id: org.orgId },
      { visibleTo: { departments: [org.dept.sales] } },
    );
    const code = await h.services.deviceTokens.issueAuthCode({ sn, modelId: models[pk]! });
    const r = await cgi('get_device_secret', { model_access_token: modelTokens[pk]! }, { auth_code: code });
    expect(r).toMatchObject({ errcode: 0, expires_in: 7200 });
    return { secretNo: secret_no, device_secret: r.device_secret, token: r.device_access_token };
  }

  const deviceCard = async (sn: string) => {
    const r = await boss.req('GET', `/api/v1/orgs/${org.orgId}/devices?q=${sn}`);
    return (r.json().devices as Json[]).find((d) => d.sn === sn)!;
  };

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    ({ models } = await vendorWithModels(h, [
      { name: 'Cloud Lock', productKey: 'pkC' },
      { name: 'Other', productKey: 'pkD' },
    ]));
    org = await acmeOrg(h, 'cl');
    boss = await login(h.app, 'boss.cl', PASSWORD);
    carol = await login(h.app, 'carol.cl', PASSWORD);
    modelTokens.pkC = await modelToken('pkC');
    modelTokens.pkD = await modelToken('pkD');
    for (const t of [
      'device.online',
      'device.offline',
      'device.activated',
      'device.user_scan',
      'device.firmware_result',
    ] as const) {
      h.services.events.on(t, (e) => {
        events.push(e);
      });
    }
  });
  afterAll(async () => {
    await Promise.all(wires.map((w) => w.close()));
    await h?.close();
  });

  it.skipIf(skip)('report_device_status: online at once, shown like a WSS device, offline after an hour of silence', async () => {
    const { token } = await cloudDevice('CLOUD0001');
    expect((await deviceCard('CLOUD0001')).online).toBe(false);
    const r = await dev(token, 'report_device_status', { online_status: 1, cur_version: '1.2.0' });
    expect(r).toEqual({ errcode: 0, errmsg: 'ok' });
    // The first call under the binding activated it.
    expect(ofType('device.activated', 'CLOUD0001')).toHaveLength(1);
    expect(await deviceCard('CLOUD0001')).toMatchObject({ online: true, firmware_version: '1.2.0' });
    expect(ofType('device.online', 'CLOUD0001')).toEqual([expect.objectContaining({ via: 'cloud' })]);
    const online = await boss.req('GET', `/api/v1/orgs/${org.orgId}/devices?online=true`);
    expect((online.json().devices as Json[]).map((d) => d.sn)).toContain('CLOUD0001');

    // A second report changes nothing visible and announces nothing.
    h.clock.advance(30 * 60_000);
    await dev(token, 'report_device_status', { online_status: 1, upgradable_version: '1.3.0' });
    expect(ofType('device.online', 'CLOUD0001')).toHaveLength(1);
    const stored = await h.deps.db.kysely.selectFrom('cloud_device_status').selectAll().executeTakeFirstOrThrow();
    // One upgradable field alone is ignored (§B3).
    expect(stored).toMatchObject({ cur_version: '1.2.0', upgradable_version: null, upgradable_version_desc: null });

    // The gateway's stale-connection sweep (90 s) is not for cloud devices.
    h.clock.advance(59 * 60_000);
    await h.app.gateway.maintain();
    expect(await h.services.cloudDevices.sweepOffline()).toBe(0);
    expect((await deviceCard('CLOUD0001')).online).toBe(true);
    h.clock.advance(2 * 60_000);
    expect(await h.services.cloudDevices.sweepOffline()).toBe(1);
    expect(await h.services.cloudDevices.sweepOffline()).toBe(0);
    expect((await deviceCard('CLOUD0001')).online).toBe(false);
    expect(ofType('device.offline', 'CLOUD0001')).toEqual([expect.objectContaining({ via: 'cloud' })]);

    // Back online by a report; offline at once by online_status 2.
    await dev(token, 'report_device_status', { online_status: 1, upgradable_version: '1.3.0', upgradable_version_desc: 'fixes' });
    expect((await deviceCard('CLOUD0001')).online).toBe(true);
    await dev(token, 'report_device_status', { online_status: 2 });
    expect((await deviceCard('CLOUD0001')).online).toBe(false);
    expect(ofType('device.online', 'CLOUD0001')).toHaveLength(2);
    expect(ofType('device.offline', 'CLOUD0001')).toHaveLength(2);
    expect(await h.deps.db.kysely.selectFrom('cloud_device_status').selectAll().executeTakeFirstOrThrow()).toMatchObject({
      upgradable_version: '1.3.0',
      upgradable_version_desc: 'fixes',
    });
    expect(ofType('device.activated', 'CLOUD0001')).toHaveLength(1);

    for (const bad of [{}, { online_status: 3 }, { online_status: '1' }, { online_status: 1, cur_version: 'x'.repeat(33) }]) {
      expect((await dev(token, 'report_device_status', bad)).errcode, JSON.stringify(bad)).toBe(40058);
    }
    expect((await dev('not-a-token', 'report_device_status', { online_status: 1 })).errcode).toBe(40014);
  });

  it.skipIf(skip)('the loop main.ts starts runs the renewal and the offline sweep at once, and stops cleanly', async () => {
    const { token } = await cloudDevice('LOOP0001');
    await dev(token, 'report_device_status', { online_status: 1 });
    h.clock.advance(61 * 60_000);
    const renewed: string[] = [];
    const off = h.services.events.on('model.ticket_renewed', (e) => {
      renewed.push(e.modelId);
    });
    const jobs = startCloudJobs(h.services, h.deps.logger, 3_600_000);
    await jobs.stop();
    off();
    expect(renewed).toEqual(expect.arrayContaining([models.pkC, models.pkD]));
    expect((await deviceCard('LOOP0001')).online).toBe(false);
    // The hours moved here outlive the model tokens of the cases that follow.
    modelTokens.pkC = await modelToken('pkC');
    modelTokens.pkD = await modelToken('pkD');
  });

  it.skipIf(skip)('report_firmware_upgrade_result: success moves the version, failure and in-progress do not', async () => {
    const { token } = await cloudDevice('CLOUD0002');
    await dev(token, 'report_device_status', { online_status: 1, cur_version: '1.0.0' });
    expect(
      await dev(token, 'report_firmware_upgrade_result', {
        oper_id: 'op1',
        errcode: 1,
        errmsg: 'device offline',
        cur_version: '1.0.0',
      }),
    ).toEqual({
      errcode: 0,
      errmsg: 'ok',
    });
    expect((await deviceCard('CLOUD0002')).firmware_version).toBe('1.0.0');
    await dev(token, 'report_firmware_upgrade_result', { oper_id: 'op2', errcode: 0, errmsg: '', cur_version: '2.0.0' });
    expect((await deviceCard('CLOUD0002')).firmware_version).toBe('2.0.0');
    expect(ofType('device.firmware_result', 'CLOUD0002').map((e) => [e.operId, e.errcode, e.errmsg, e.curVersion])).toEqual([
      ['op1', 1, 'device offline', '1.0.0'],
      ['op2', 0, '', '2.0.0'],
    ]);
    expect((await dev(token, 'report_firmware_upgrade_result', { oper_id: 'op3', errcode: 'no' })).errcode).toBe(40058);
  });

  it.skipIf(skip)('get_userinfo_by_page: the people who may use the device, paged by an opaque cursor', async () => {
    const { token } = await cloudDevice('CLOUD0003');
    const all = await dev(token, 'get_userinfo_by_page', {});
    expect(all).toMatchObject({ errcode: 0, next_cursor: '' });
    const items = all.userinfo.useritems as Json[];
    const byId = new Map(items.map((u) => [u.open_userid, u]));
    // Visible to Sales: the super admin and Sales' admin manage it; Sales members use it; Engineering does not see it.
    expect(byId.get(org.users.boss)).toEqual({
      open_userid: org.users.boss,
      user_name: 'boss',
      user_type: 1,
      pass_rule: { rule_list: [] },
    });
    expect(byId.get(org.users.salesAdmin)).toMatchObject({ user_type: 1 });
    expect(byId.get(org.users.bob)).toMatchObject({ user_name: 'bob', user_type: 0 });
    for (const u of [org.users.carol, org.users.engAdmin, org.users.outsider]) expect(byId.has(u)).toBe(false);

    const seen: string[] = [];
    let cursor = '';
    let pages = 0;
    do {
      const p = await dev(token, 'get_userinfo_by_page', { cursor, limit: 2 });
      expect(p.perm_version).toBe(all.perm_version);
      expect((p.userinfo.useritems as Json[]).length).toBeLessThanOrEqual(2);
      seen.push(...(p.userinfo.useritems as Json[]).map((u) => u.open_userid));
      cursor = p.next_cursor;
      pages++;
    } while (cursor !== '' && pages < 20);
    expect(seen).toEqual(items.map((u) => u.open_userid));
    expect(pages).toBe(Math.ceil(items.length / 2));

    const only = await dev(token, 'get_userinfo_by_page', { only_perm_version: true });
    expect(only).toMatchObject({ perm_version: all.perm_version, userinfo: { useritems: [] } });
    // Carol joins the range: the version moves.
    const device = await h.deps.db.kysely
      .selectFrom('devices')
      .select('id')
      .where('sn', '=', 'CLOUD0003')
      .executeTakeFirstOrThrow();
    await h.deps.db.kysely
      .insertInto('device_visibility')
      .values({ device_id: device.id, department_id: org.dept.eng, user_id: null })
      .execute();
    const after = await dev(token, 'get_userinfo_by_page', {});
    expect(after.perm_version).not.toBe(all.perm_version);
    expect((after.userinfo.useritems as Json[]).map((u) => u.open_userid)).toContain(org.users.carol);

    const ids = await dev(token, 'get_userinfo_by_ids', {
      user_item: [
        { open_userid: org.users.bob, user_type: 0 },
        { open_userid: org.users.outsider, user_type: 0 },
      ],
    });
    expect((ids.userinfo.useritems as Json[]).map((u) => u.open_userid)).toEqual([org.users.bob]);
    expect((await dev(token, 'get_userinfo_by_page', { cursor: 'bm9wZQ' })).errcode).toBe(40058);
    expect((await dev(token, 'get_userinfo_by_page', { limit: 0 })).errcode).toBe(40058);
  });

  it.skipIf(skip)(
    'gen_login_qrcode type 0: the seed-000 static URL; a scan by someone who may manage it reaches user_scan',
    async () => {
      const { token } = await cloudDevice('CLOUD0004');
      const r = await dev(token, 'gen_login_qrcode', { state: 'xxx1', type: 0 });
      expect(Object.keys(r).sort()).toEqual(['errcode', 'errmsg', 'qrcode_content']);
      expect(r.qrcode_content).toMatch(
        /^https:\/\/bindery\.test\/connect\/hardware\?type=static_login&login_code=[A-Za-z0-9_-]{20,}&state=xxx1$/,
      );
      expect((await carol.req('POST', '/api/v1/scan/login', { content: r.qrcode_content })).statusCode).toBe(403);
      const ok = await boss.req('POST', '/api/v1/scan/login', { content: r.qrcode_content });
      expect(ok.statusCode).toBe(200);
      expect(ofType('device.user_scan', 'CLOUD0004')).toEqual([
        expect.objectContaining({ state: 'xxx1', userId: org.users.boss, userType: 1, operId: ok.json().oper_id }),
      ]);
      // Static codes stay valid while the binding lasts…
      expect((await boss.req('POST', '/api/v1/scan/login', { content: r.qrcode_content })).statusCode).toBe(200);
      // …and die with it.
      await h.services.binding.unbind(SYSTEM_CLI, 'CLOUD0004');
      const dead = await boss.req('POST', '/api/v1/scan/resolve', { content: r.qrcode_content });
      expect(dead.json()).toMatchObject({ kind: 'static_login', validity: 'unknown' });
    },
  );

  it.skipIf(skip)(
    'gen_login_qrcode type 1: the seed-000 dynamic URL, 300 s, single use; forged, expired and replayed codes are refused',
    async () => {
      const { token } = await cloudDevice('CLOUD0005');
      const r = await dev(token, 'gen_login_qrcode', { state: 'xxx2', type: 1 });
      expect(r.expires_in).toBe(300);
      const ts = Math.floor(h.clock.now() / 1000);
      expect(r.qrcode_content).toMatch(
        new RegExp(
          `^https://bindery\\.test/connect/hardware\\?sn=CLOUD0005&timestamp=${ts}&signature=[0-9a-f]{64}&type=dynamic_login&state=xxx2$`,
        ),
      );
      const url = r.qrcode_content as string;
      const forgedState = url.replace('state=xxx2', 'state=xxx3');
      expect((await boss.req('POST', '/api/v1/scan/login', { content: forgedState })).json().error.code).toBe('QR_FORGED');
      const forgedSig = url.replace(/signature=([0-9a-f])/, (_, c) => `signature=${c === '0' ? '1' : '0'}`);
      expect((await boss.req('POST', '/api/v1/scan/login', { content: forgedSig })).json().error.code).toBe('QR_FORGED');
      // Someone who may not manage it is refused without spending the code.
      expect((await carol.req('POST', '/api/v1/scan/login', { content: url })).statusCode).toBe(403);
      const ok = await boss.req('POST', '/api/v1/scan/login', { content: url });
      expect(ok.statusCode).toBe(200);
      expect(ofType('device.user_scan', 'CLOUD0005')).toEqual([
        expect.objectContaining({ state: 'xxx2', userId: org.users.boss }),
      ]);
      const replay = await boss.req('POST', '/api/v1/scan/login', { content: url });
      expect(replay.json().error.code).toBe('QR_USED');
      expect(ofType('device.user_scan', 'CLOUD0005')).toHaveLength(1);

      const { token: t6 } = await cloudDevice('CLOUD0006');
      const late = await dev(t6, 'gen_login_qrcode', { state: 's', type: 1 });
      h.clock.advance(301_000);
      expect((await boss.req('POST', '/api/v1/scan/login', { content: late.qrcode_content })).json().error.code).toBe(
        'QR_EXPIRED',
      );
      expect(ofType('device.user_scan', 'CLOUD0006')).toHaveLength(0);
    },
  );

  it.skipIf(skip)('a WSS device that also has a cloud token: the scan reaches it as push_user_scan with the state', async () => {
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    const { secretNo, token } = await cloudDevice('HYBRID0001');
    const w = await WireDevice.connect(`ws://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`);
    wires.push(w);
    await subscribeDevice(w, 'HYBRID0001', secretNo, Math.floor(h.clock.now() / 1000));
    for (const type of [0, 1]) {
      const r = await dev(token, 'gen_login_qrcode', { state: `menu${type}`, type });
      // push() answers from what already arrived, so forget the previous round's push first.
      w.pushes.length = 0;
      const pushed = w.push('push_user_scan');
      const ok = await boss.req('POST', '/api/v1/scan/login', { content: r.qrcode_content });
      expect(ok.json()).toMatchObject({ outcome: 'delivered' });
      expect((await pushed).body).toMatchObject({
        state: `menu${type}`,
        userid: org.users.boss,
        user_type: 1,
        oper_id: ok.json().oper_id,
      });
    }
  });

  it.skipIf(skip)('gen_id_dynamic_qrcode: a dynamic identity code for an SN of the model; it binds once', async () => {
    await h.services.devices.register(SYSTEM_CLI, models.pkC!, 'IDQR0001');
    const other = await cgi(
      'device/gen_id_dynamic_qrcode',
      { model_access_token: modelTokens.pkD! },
      { device_sn: 'IDQR0001', state: 's' },
    );
    expect(other.errcode).toBe(46012);
    const r = await cgi(
      'device/gen_id_dynamic_qrcode',
      { model_access_token: modelTokens.pkC! },
      { device_sn: 'IDQR0001', state: 'hello' },
    );
    expect(r.expires_in).toBe(300);
    expect(r.qrcode_content).toMatch(
      /^https:\/\/bindery\.test\/connect\/hardware\?sn=IDQR0001&timestamp=\d+&signature=[0-9a-f]{64}&type=qrcode&state=hello$/,
    );
    const bound = await boss.req('POST', '/api/v1/bind', { content: r.qrcode_content, owner: { type: 'org', id: org.orgId } });
    expect(bound.statusCode).toBe(201);
    await h.services.binding.unbind(SYSTEM_CLI, 'IDQR0001');
    const again = await boss.req('POST', '/api/v1/bind', { content: r.qrcode_content, owner: { type: 'org', id: org.orgId } });
    expect(again.json().error.code).toBe('QR_USED');
    // A login code does not pass as an identity code: the purpose is signed.
    const { token } = await cloudDevice('IDQR0002');
    const login = await dev(token, 'gen_login_qrcode', { state: 'x', type: 1 });
    const asBind = (login.qrcode_content as string).replace('type=dynamic_login', 'type=qrcode');
    await h.services.binding.unbind(SYSTEM_CLI, 'IDQR0002');
    const refused = await boss.req('POST', '/api/v1/bind', { content: asBind, owner: { type: 'org', id: org.orgId } });
    expect(refused.json().error.code).toBe('QR_FORGED');
  });

  it.skipIf(skip)('limits: one code per SN per minute for each type; dynamic login shares with the identity code', async () => {
    const a = await cloudDevice('LIMIT0001');
    expect((await dev(a.token, 'gen_login_qrcode', { type: 0 })).errcode).toBe(0);
    expect((await dev(a.token, 'gen_login_qrcode', { type: 0 })).errcode).toBe(45033);
    expect((await dev(a.token, 'gen_login_qrcode', { type: 1 })).errcode).toBe(0);
    expect((await dev(a.token, 'gen_login_qrcode', { type: 1 })).errcode).toBe(45033);
    const id = (sn: string) =>
      cgi('device/gen_id_dynamic_qrcode', { model_access_token: modelTokens.pkC! }, { device_sn: sn, state: '' });
    expect((await id('LIMIT0001')).errcode).toBe(45033);

    const b = await cloudDevice('LIMIT0002');
    expect((await id('LIMIT0002')).errcode).toBe(0);
    expect((await dev(b.token, 'gen_login_qrcode', { type: 1 })).errcode).toBe(45033);
    expect((await dev(b.token, 'gen_login_qrcode', { type: 0 })).errcode).toBe(0);
    // Invalid requests spend nothing.
    const c = await cloudDevice('LIMIT0003');
    expect((await dev(c.token, 'gen_login_qrcode', { type: 2 })).errcode).toBe(40058);
    expect((await dev(c.token, 'gen_login_qrcode', { type: 1, state: 'x'.repeat(129) })).errcode).toBe(40058);
    expect((await dev(c.token, 'gen_login_qrcode', { type: 1 })).errcode).toBe(0);
  });
});
