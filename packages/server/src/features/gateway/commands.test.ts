import { createHash } from 'node:crypto';
import { WsErr, wecomSign } from '@bindery/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { bearer } from '../../testing/harness.js';
import { type GatewayHarness, startGatewayHarness } from './gateway.testkit.js';
import { registerBody, subscribeDevice, WireDevice } from './wire-device.js';

/** Every command of §A5 and every push of §A6 through a real socket (docs/protocol.md P-CMD-*, P-PUSH-*). */
describe.each(storageBackends())('gateway commands and pushes on $backend.name', ({ backend, skip }) => {
  let g: GatewayHarness;
  const open: WireDevice[] = [];
  const connect = async () => {
    const d = await WireDevice.connect(g.url);
    open.push(d);
    return d;
  };
  const api = (method: 'GET' | 'POST', url: string, payload?: object, token = g.h.operatorToken) =>
    g.h.app.inject({ method, url, headers: bearer(token), ...(payload ? { payload } : {}) });
  const row = (sn: string) =>
    g.h.deps.db.kysely.selectFrom('devices').selectAll().where('sn_key', '=', sn.toLowerCase()).executeTakeFirstOrThrow();

  beforeAll(async () => {
    if (skip) return;
    g = await startGatewayHarness(backend);
  });
  afterAll(async () => {
    await Promise.all(open.map((d) => d.close()));
    await g?.close();
  });

  it.skipIf(skip)('takes a device from register through binding, login, every command and every push, to unbinding', async () => {
    const sn = 'LIFE0001';
    const secretNo = await g.addDevice(sn);
    const d = await connect();

    // Before anything: the commands that need a state say which step is missing (P-ST-3).
    expect((await d.request('subscribe_corp', { secret: 'x', firmware_version: '1' })).errcode).toBe(WsErr.NOT_REGISTERED);
    expect((await d.request('error_report', { errcode: -1, errmsg: 'x' })).errcode).toBe(WsErr.NOT_REGISTERED);

    const ts = await d.request('get_timestamp');
    const reg = await d.request('register', registerBody(sn, secretNo, ts.body!.timestamp as number));
    expect(reg.errcode).toBe(0);
    const activeCode = reg.body!.active_code as string;
    // P-CMD-register-4: again, on the same socket, the same code and errcode 0.
    const again = await d.request('register', registerBody(sn, secretNo, g.nowSec()));
    expect(again).toMatchObject({ errcode: 0, body: { active_code: activeCode } });
    expect((await d.request('get_firmware_info')).errcode).toBe(WsErr.NOT_ACTIVE);

    // P-CMD-active-1/2: a wrong code, then the right one before binding.
    const wrongCode = `${activeCode.slice(0, -1)}${activeCode.endsWith('x') ? 'y' : 'x'}`;
    expect((await d.request('active', { active_code: wrongCode })).errcode).toBe(WsErr.INVALID_ACTIVE_CODE);
    expect((await d.request('active', { active_code: activeCode.toLowerCase() })).errcode).toBe(WsErr.INVALID_ACTIVE_CODE);
    expect((await d.request('active', { active_code: activeCode })).errcode).toBe(WsErr.NOT_YET_BOUND);
    // Registered devices may report errors before login (P-CMD-error_report-1).
    expect((await d.request('error_report', { errcode: -1, errmsg: 'waiting for binding' })).errcode).toBe(0);

    // P-PUSH-1: binding reaches the waiting device at once, with no body.
    const pushed = d.push('push_bind_corp');
    await g.bind(sn);
    const bindPush = await pushed;
    expect(Object.keys(bindPush).sort()).toEqual(['cmd', 'headers']);
    expect((bindPush.headers as { req_id: string }).req_id).toMatch(/^push_/);

    const act = await d.request('active', { active_code: activeCode });
    expect(act.errcode).toBe(0);
    const secret = act.body!.secret as string;
    expect(secret).toMatch(/^[0-9a-f]{32}$/);
    expect((await d.request('active', { active_code: activeCode })).body!.secret).toBe(secret);
    await g.h.app.gateway.flush();
    // One flush carries the device's first register, its activation and its online state.
    expect(await row(sn)).toMatchObject({ activated_at: g.h.clock.now(), registered_net_at: g.h.clock.now(), online: 1 });
    expect((await d.request('get_firmware_info')).errcode).toBe(WsErr.NOT_LOGIN);

    expect((await d.request('subscribe_corp', { secret: 'f'.repeat(32), firmware_version: '1.0.0' })).errcode).toBe(
      WsErr.NOT_AUTHORIZED,
    );
    const sub = await d.request('subscribe_corp', {
      secret,
      firmware_version: '1.0.0',
      ext_args: { fa_algorithm: ['default'], fp_algorithm: [] },
    });
    expect(sub).toEqual({ headers: { req_id: 'req_subscribe_corp' }, errcode: 0, errmsg: 'ok' });
    expect((await d.request('subscribe_corp', { secret, firmware_version: '1.0.0' })).errcode).toBe(0);

    // P-LIVE-3: the device's state reaches the database with the next flush.
    await g.h.app.gateway.flush();
    expect(await row(sn)).toMatchObject({
      online: 1,
      firmware_version: '1.0.0',
      node_id: g.h.deps.config.nodeId,
      remote_addr: expect.stringContaining('127.0.0.1'),
    });
    expect((await row(sn)).last_seen_at).toBeGreaterThan(0);

    // get_firmware_info: nothing published, then the current version (P-CMD-get_firmware_info-2).
    expect((await d.request('get_firmware_info')).errcode).toBe(WsErr.NO_FIRMWARE);
    const md5 = createHash('md5').update('v2').digest('hex');
    const pub = await api('POST', `/api/v1/models/${g.modelId}/firmware`, {
      version: '2.0.0',
      download_url: 'https://cdn.example.com/fw-2.0.0.bin',
      md5sum: md5,
      size: 4096,
    });
    expect(pub.statusCode).toBe(201);
    const fw = await d.request('get_firmware_info');
    expect(fw).toMatchObject({
      errcode: 0,
      body: { firmware_version: '2.0.0', md5sum: md5, size: 4096, download_url: 'https://cdn.example.com/fw-2.0.0.bin' },
    });

    const corp = await d.request('get_corp_info');
    expect(corp).toMatchObject({ errcode: 0, body: { corp_name: 'Acme Corp' } });

    // error_report: stored, listed with the device, counted.
    expect((await d.request('error_report', { errcode: '-7', errmsg: 'connect timeout' })).errcode).toBe(0);
    expect((await d.request('error_report', { errcode: 'x' })).errcode).toBe(WsErr.INVALID_PARAM);
    const reports = await api('GET', `/api/v1/devices/${sn}/error-reports`);
    expect(reports.json().error_reports.map((r: { errcode: number; errmsg: string }) => [r.errcode, r.errmsg])).toEqual([
      [-7, 'connect timeout'],
      [-1, 'waiting for binding'],
    ]);
    const metrics = await g.h.deps.metrics.registry.getSingleMetricAsString('bindery_device_error_reports_total');
    expect(metrics).toMatch(/bindery_device_error_reports_total 2$/m);

    // selfhelp_notify: the reply, then the echo push (P-CMD-selfhelp_notify-2).
    const echo = d.push('push_selfhelp_notify');
    expect((await d.request('selfhelp_notify', { data: '{"k":"v"}' })).errcode).toBe(0);
    expect((await echo).body).toEqual({ data: '{"k":"v"}' });

    // upload_log over the limit: refused, the connection stays (P-CMD-upload_log-2).
    const big = Buffer.alloc(4 * 1024 * 1024 + 1, 0x61);
    const head = Buffer.alloc(4 + 4 + 10 + 4 + 3 + 4);
    let o = head.writeUInt32LE(1, 0);
    o = head.writeUInt32LE(10, o);
    o += head.write('upload_log', o, 'ascii');
    o = head.writeUInt32LE(3, o);
    o += head.write('big', o, 'ascii');
    head.writeUInt32LE(big.length, o);
    d.sendBinary(Buffer.concat([head, big]));
    expect((await d.nextReply())!.json).toMatchObject({ errcode: WsErr.PAYLOAD_TOO_LARGE, headers: { req_id: 'big' } });
    expect(d.isOpen).toBe(true);
    expect((await d.request('upload_log', { data: 'x' })).errcode).toBe(WsErr.INVALID_PARAM);
    expect((await api('GET', `/api/v1/devices/${sn}/logs`)).json().logs).toEqual([]);

    // Pushes other features send: user scan (service), and the API's commands.
    const scan = d.push('push_user_scan');
    const scanResult = await g.h.services.pushes.userScan(sn, {
      userid: 'zhangsan',
      op_type: 'scan_qrcode_open',
      oper_id: 'op_1',
      state: 'qrcode_login',
      user_type: 1,
    });
    expect(scanResult.outcome).toBe('delivered');
    expect((await scan).body).toEqual({
      userid: 'zhangsan',
      op_type: 'scan_qrcode_open',
      oper_id: 'op_1',
      state: 'qrcode_login',
      user_type: 1,
    });

    const upgrade = d.push('push_update_firmware');
    const up = await api('POST', `/api/v1/devices/${sn}/commands`, { cmd: 'update_firmware' });
    expect(up.statusCode).toBe(202);
    expect(up.json()).toMatchObject({ outcome: 'delivered', command_id: expect.stringMatching(/^cmd_/) });
    const upPush = await upgrade;
    expect(upPush).not.toHaveProperty('body');
    expect((upPush.headers as { req_id: string }).req_id).toBe(up.json().command_id);

    const fetch = d.push('push_fetch_log');
    expect(
      (await api('POST', `/api/v1/devices/${sn}/commands`, { cmd: 'fetch_log', hint: 'device_log/20261121' })).json().outcome,
    ).toBe('delivered');
    expect((await fetch).body).toEqual({ hint: 'device_log/20261121' });

    const restart = d.push('push_restart_device');
    expect((await api('POST', `/api/v1/devices/${sn}/commands`, { cmd: 'restart' })).json().outcome).toBe('delivered');
    expect(await restart).not.toHaveProperty('body');

    const listed = await api('GET', `/api/v1/devices/${sn}/commands`);
    expect(listed.json().commands.map((c: { cmd: string; status: string }) => [c.cmd, c.status])).toEqual([
      ['push_restart_device', 'delivered'],
      ['push_fetch_log', 'delivered'],
      ['push_update_firmware', 'delivered'],
    ]);

    // P-PUSH-2: unbinding reaches the device; its secret is dead and the connection logged out.
    const unbound = d.push('push_unbind_corp');
    await g.unbind(sn);
    expect(Object.keys(await unbound).sort()).toEqual(['cmd', 'headers']);
    expect((await d.request('get_corp_info')).errcode).toBe(WsErr.NOT_ACTIVE);
    expect((await d.request('subscribe_corp', { secret, firmware_version: '1.0.0' })).errcode).toBe(WsErr.NOT_AUTHORIZED);
    expect((await d.request('active', { active_code: activeCode })).errcode).toBe(WsErr.NOT_YET_BOUND);

    // No reply ever carried a cmd; every push did.
    for (const r of d.received) {
      if (r.json?.cmd !== undefined) expect(String(r.json.cmd)).toMatch(/^push_/);
    }
  });

  it.skipIf(skip)(
    'exchanges a seed SecretNo before registration only, and only for shared-seed models (P-CMD-get_secret_no-3)',
    async () => {
      const sn = 'SEED0001';
      const secretNo = await g.addDevice(sn, { seed: true });
      const d = await connect();
      const signed = (s: string, seed: string) => {
        const timestamp = String(g.nowSec());
        const nonce = String(Math.floor(Math.random() * 1e12));
        return { sn: s, timestamp, nonce, device_signature: wecomSign([s, seed, timestamp, nonce, 'secret_no']) };
      };
      const ok = await d.request('get_secret_no', signed(sn, g.seedSecretNo));
      expect(ok).toMatchObject({ errcode: 0, body: { secret_no: secretNo } });
      expect((await d.request('get_secret_no', signed(sn, 'f'.repeat(32)))).errcode).toBe(WsErr.BAD_SIGNATURE);
      expect((await d.request('register', registerBody(sn, secretNo, g.nowSec()))).errcode).toBe(0);
      expect((await d.request('get_secret_no', signed(sn, g.seedSecretNo))).errcode).toBe(WsErr.SECRET_NO_REFUSED);

      const plain = 'NOSEED01';
      const plainSecretNo = await g.addDevice(plain);
      expect((await d.request('get_secret_no', signed(plain, plainSecretNo))).errcode).toBe(WsErr.SECRET_NO_REFUSED);
    },
  );

  it.skipIf(skip)(
    'lets a device that kept its active_code skip register (P-CMD-active-4) and one that kept its secret skip active',
    async () => {
      const sn = 'SKIP0001';
      const secretNo = await g.addDevice(sn);
      await g.bind(sn);
      const first = await connect();
      const { activeCode, secret } = await subscribeDevice(first, sn, secretNo, g.nowSec());
      await first.close();

      const d = await connect();
      const act = await d.request('active', { active_code: activeCode });
      expect(act).toMatchObject({ errcode: 0, body: { secret } });
      expect((await d.request('subscribe_corp', { secret, firmware_version: '1.0.1' })).errcode).toBe(0);
      expect((await d.request('get_corp_info')).errcode).toBe(0);

      const e = await connect();
      expect((await e.request('register', registerBody(sn, secretNo, g.nowSec()))).errcode).toBe(0);
      expect((await e.request('subscribe_corp', { secret, firmware_version: '1.0.2' })).errcode).toBe(0);
      // The second connection took over the first (P-CL-4).
      expect((await d.closed).code).toBe(4000);
    },
  );

  it.skipIf(skip)('counts failed register and get_secret_no attempts per SN, never successful ones (P-RATE-3)', async () => {
    const limits = g.h.app.gateway.limits;
    const framesPerSec = limits.framesPerSec;
    limits.framesPerSec = 1e6; // P-RATE-1 would otherwise pace this one socket
    try {
      const sn = 'RATE0001';
      const secretNo = await g.addDevice(sn);
      const d = await connect();
      const register = async (secret: string, s = sn) =>
        (await d.request('register', registerBody(s, secret, g.nowSec()))).errcode;
      // A device that signs correctly is never held back, however often it registers.
      for (let i = 0; i < limits.registerPerMinute + 10; i++) expect(await register(secretNo)).toBe(0);
      // Wrong signatures use up the SN's budget; the attempt after it is refused...
      for (let i = 0; i < limits.registerPerMinute; i++) expect(await register('f'.repeat(32))).toBe(WsErr.BAD_SIGNATURE);
      const over = await d.request('register', registerBody(sn, 'f'.repeat(32), g.nowSec()));
      expect(over).toMatchObject({
        errcode: WsErr.RATE_LIMITED,
        errmsg: 'too many failed attempts for this SN; retry in a minute',
      });
      // ...and so is the right signature, on any connection and through get_secret_no, for the rest of the minute.
      expect(await register(secretNo)).toBe(WsErr.RATE_LIMITED);
      const e = await connect();
      expect((await e.request('register', registerBody(sn, secretNo, g.nowSec()))).errcode).toBe(WsErr.RATE_LIMITED);
      const timestamp = String(g.nowSec());
      const nonce = '42';
      const seedAttempt = { sn, timestamp, nonce, device_signature: wecomSign([sn, secretNo, timestamp, nonce, 'secret_no']) };
      expect((await e.request('get_secret_no', seedAttempt)).errcode).toBe(WsErr.RATE_LIMITED);
      // Other SNs keep their own budgets, known or not.
      const other = 'RATE0002';
      const otherSecretNo = await g.addDevice(other);
      expect(await register(otherSecretNo, other)).toBe(0);
      expect(await register(secretNo, 'RATE9999')).toBe(WsErr.UNKNOWN_SN);
    } finally {
      limits.framesPerSec = framesPerSec;
    }
  });

  it.skipIf(skip)('honours a binding change between active and subscribe_corp', async () => {
    const sn = 'RACE0001';
    const secretNo = await g.addDevice(sn);
    await g.bind(sn);
    const d = await connect();
    const reg = await d.request('register', registerBody(sn, secretNo, g.nowSec()));
    const act = await d.request('active', { active_code: reg.body!.active_code });
    const old = act.body!.secret as string;
    const unbound = d.push('push_unbind_corp');
    await g.unbind(sn);
    await unbound;
    expect((await d.request('subscribe_corp', { secret: old, firmware_version: '1' })).errcode).toBe(WsErr.NOT_AUTHORIZED);
    // Bound again: a new secret; the old one stays dead.
    const rebound = d.push('push_bind_corp');
    await g.bind(sn);
    await rebound;
    const again = await d.request('active', { active_code: reg.body!.active_code });
    expect(again.body!.secret).not.toBe(old);
    expect((await d.request('subscribe_corp', { secret: old, firmware_version: '1' })).errcode).toBe(WsErr.NOT_AUTHORIZED);
    expect((await d.request('subscribe_corp', { secret: again.body!.secret, firmware_version: '1' })).errcode).toBe(0);
  });

  it.skipIf(skip)('only those who may manage the device see its logs, reports and commands', async () => {
    const sn = 'PERM0001';
    await g.addDevice(sn);
    const other = await g.h.services.vendors.create(SYSTEM_CLI, { name: 'Other Vendor' });
    const { token } = await g.h.services.accounts.createVendorKey(SYSTEM_CLI, other.id, 'k');
    for (const url of [`/api/v1/devices/${sn}/logs`, `/api/v1/devices/${sn}/error-reports`, `/api/v1/devices/${sn}/commands`]) {
      expect((await api('GET', url, undefined, token)).statusCode, url).toBe(403);
    }
    expect((await api('POST', `/api/v1/devices/${sn}/commands`, { cmd: 'restart' }, token)).statusCode).toBe(403);
    const anon = await g.h.app.inject({ method: 'GET', url: `/api/v1/devices/${sn}/logs` });
    expect(anon.statusCode).toBe(401);
    const missing = await api('GET', `/api/v1/devices/${sn}/logs/log_nope`);
    expect(missing.json().error.code).toBe('LOG_NOT_FOUND');
  });
});
