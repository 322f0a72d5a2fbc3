import { signRegister, staticLoginUrl, wecomSign } from '@bindery/protocol';
import jsqrModule from 'jsqr';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageBackends } from '../../testing/backends.js';
import { bearer } from '../../testing/harness.js';
import { staticLoginCode } from './commands/gen-login-qrcode.js';
import { type GatewayHarness, startGatewayHarness } from './gateway.testkit.js';
import { registerBody, subscribeDevice, WireDevice } from './wire-device.js';

// jsqr is CommonJS with an ES-style default in its types; at runtime the default import is the function.
const jsQR = ((jsqrModule as unknown as { default?: unknown }).default ?? jsqrModule) as unknown as (
  data: Uint8ClampedArray,
  width: number,
  height: number,
) => { data: string } | null;

/**
 * The wire details of §A1 pinned with a raw `ws` client (docs/protocol.md P-F-*, P-SIG-*, P-B-*):
 * what the bytes on the socket are, not what an SDK makes of them.
 */
describe.each(storageBackends())('gateway wire on $backend.name', ({ backend, skip }) => {
  let g: GatewayHarness;
  const open: WireDevice[] = [];
  const connect = async (path = '/', protocols?: string | string[]) => {
    const d = await WireDevice.connect(g.url + path, protocols);
    open.push(d);
    return d;
  };

  beforeAll(async () => {
    if (skip) return;
    g = await startGatewayHarness(backend);
  });
  afterAll(async () => {
    await Promise.all(open.map((d) => d.close()));
    await g?.close();
  });

  /** Every reply a test saw must be a reply: no cmd (P-F-3). */
  const expectNoCmdInReplies = () => {
    for (const d of open) {
      for (const r of d.received) {
        if (r.json && !String(r.json.cmd ?? '').startsWith('push_')) expect(r.json).not.toHaveProperty('cmd');
      }
    }
  };

  it.skipIf(skip)('accepts any path, with or without a sub-protocol (P-F-1)', async () => {
    for (const [path, protocols] of [
      ['/', undefined],
      ['/websocket', undefined],
      ['/some/other/path?x=1', undefined],
      ['/', 'protocol'],
      ['/', ['protocol', 'other']],
    ] as const) {
      const d = await connect(path, protocols as string | string[] | undefined);
      if (protocols) expect(d.ws.protocol).toBe(Array.isArray(protocols) ? protocols[0] : protocols);
      const r = await d.request('get_timestamp');
      expect(r.errcode).toBe(0);
      expect(Math.abs((r.body!.timestamp as number) - g.nowSec())).toBeLessThanOrEqual(1);
      await d.close();
    }
  });

  it.skipIf(skip)(
    'replies echo req_id, carry top-level errcode/errmsg and no cmd; repeated req_ids are normal (P-F-2, P-F-3)',
    async () => {
      const d = await connect();
      d.sendText('{"cmd":"ping","headers":{"req_id":"lb_ping"}}');
      const first = await d.nextReply();
      expect(first!.text).toBe('{"headers":{"req_id":"lb_ping"},"errcode":0,"errmsg":"ok"}');
      d.sendText('{"cmd":"ping","headers":{"req_id":"lb_ping"}}');
      expect((await d.nextReply())!.text).toBe(first!.text);
      // req_id comes back unchanged, whatever it holds.
      const odd = 'ü-\u00e9 "quoted" \\ / 𝄞 '.repeat(3);
      const r = await d.request('ping', undefined, odd);
      expect(r.headers!.req_id).toBe(odd);
      const ts = await d.request('get_timestamp', undefined, 'media_0123');
      expect(Object.keys(ts)).toEqual(['headers', 'body', 'errcode', 'errmsg']);
      expect(ts).not.toHaveProperty('cmd');
      expectNoCmdInReplies();
    },
  );

  it.skipIf(skip)(
    'registers with string and number nonces, a 20-digit numeric nonce, and an uppercase signature (P-F-4, P-SIG-1, P-SIG-2)',
    async () => {
      const sn = 'WIREREG01';
      const secretNo = await g.addDevice(sn);
      const now = g.nowSec();

      // Lombo style: everything as strings.
      const d1 = await connect();
      const r1 = await d1.request('register', registerBody(sn, secretNo, now, '123456'));
      expect(r1.errcode).toBe(0);
      expect(r1.body!.active_code).toMatch(/^[A-Za-z0-9_-]{64}$/);

      // 20 digits as a bare JSON number: a double would round it and the signature would fail.
      const nonce = '18446744073709551615';
      const sig = signRegister({ sn, timestamp: String(now), nonce }, secretNo);
      expect(signRegister({ sn, timestamp: String(now), nonce: String(Number(nonce)) }, secretNo)).not.toBe(sig);
      const d2 = await connect();
      d2.sendText(
        `{"cmd":"register","headers":{"req_id":"r2"},"body":{"sn":"${sn}","nonce":${nonce},"timestamp":${now},"device_signature":"${sig.toUpperCase()}"}}`,
      );
      const r2 = (await d2.nextReply())!.json!;
      expect(r2).toMatchObject({ errcode: 0, headers: { req_id: 'r2' } });
      // P-CMD-register-4: the same active_code every time.
      expect((r2.body as { active_code: string }).active_code).toBe(r1.body!.active_code);
      // The second registration took the device over: the first socket was told so (P-CL-4).
      expect(await d1.closed).toEqual({ code: 4000, reason: 'replaced by a newer connection' });
      expectNoCmdInReplies();
    },
  );

  it.skipIf(skip)('refuses a 301 s old timestamp and accepts a 300 s one (P-SIG-3)', async () => {
    const sn = 'WIRETS01';
    const secretNo = await g.addDevice(sn);
    const d = await connect();
    const stale = await d.request('register', registerBody(sn, secretNo, g.nowSec() - 301));
    expect(stale).toMatchObject({ errcode: 600101, headers: { req_id: 'req_register' } });
    const future = await d.request('register', registerBody(sn, secretNo, g.nowSec() + 301));
    expect(future.errcode).toBe(600101);
    const edge = await d.request('register', registerBody(sn, secretNo, g.nowSec() - 300));
    expect(edge.errcode).toBe(0);
  });

  it.skipIf(skip)('names bad signatures, unknown SNs and bad parameters with their own codes (P-ERR-1)', async () => {
    const sn = 'WIRESIG01';
    const secretNo = await g.addDevice(sn);
    const d = await connect();
    const body = registerBody(sn, secretNo, g.nowSec());
    const wrong = await d.request('register', { ...body, device_signature: wecomSign(['not', 'it']) });
    expect(wrong.errcode).toBe(600100);
    const unknown = await d.request('register', registerBody('NOSUCHSN1', secretNo, g.nowSec()));
    expect(unknown.errcode).toBe(600102);
    for (const bad of [
      { ...body, nonce: 1.5 },
      { ...body, nonce: -3 },
      { ...body, nonce: '1e5' },
      { ...body, nonce: '1'.repeat(21) },
      { ...body, timestamp: 'yesterday' },
      { ...body, sn: 'has space' },
      { ...body, device_signature: 'abc' },
      { ...body, sn: 42 },
    ]) {
      const r = await d.request('register', bad);
      expect(r.errcode, JSON.stringify(bad)).toBe(600111);
    }
    // Nothing above registered the socket.
    expect((await d.request('subscribe_corp', { secret: 'x' })).errcode).toBe(600014);
  });

  it.skipIf(skip)(
    'answers unparseable frames with a header-less error, and frames with a req_id with headers (P-F-5)',
    async () => {
      const d = await connect();
      d.sendText('{not json');
      expect((await d.nextReply())!.json).toEqual({ errcode: 600105, errmsg: 'the frame is not JSON' });
      d.sendText('{"cmd":"ping","headers":{"req_id":"x"},"body":[1]}');
      expect((await d.nextReply())!.json).toMatchObject({ errcode: 600105, headers: { req_id: 'x' } });
      d.sendText('{"cmd":"ping"}');
      const noHeaders = (await d.nextReply())!.json!;
      expect(noHeaders.errcode).toBe(600105);
      expect(noHeaders).not.toHaveProperty('headers');
      const unknown = await d.request('get_userinfo_by_page', { cursor: '' }, 'u1');
      expect(unknown).toMatchObject({ errcode: 600106, headers: { req_id: 'u1' } });
      // Before login the commands that need it say which step is missing (P-ST-3).
      expect((await d.request('get_firmware_info')).errcode).toBe(600014);
      expect(d.isOpen).toBe(true);
    },
  );

  it.skipIf(skip)(
    'sends gen_login_qrcode as the binary frame of §A1.2, byte for byte, with the static login URL inside (P-B-3)',
    async () => {
      const sn = 'WIREQR01';
      const secretNo = await g.addDevice(sn);
      await g.bind(sn);
      const d = await connect();
      const { secret } = await subscribeDevice(d, sn, secretNo, g.nowSec());
      const reqId = 'lb_login_qr';
      d.sendJson({ cmd: 'gen_login_qrcode', headers: { req_id: reqId }, body: { state: 'qrcode_login', format_version: 1 } });
      const bin = (await d.nextReply())!.binary!;
      expect(bin.readUInt32LE(0)).toBe(1);
      expect(bin.readUInt32LE(4)).toBe(reqId.length);
      expect(bin.subarray(8, 8 + reqId.length).toString('ascii')).toBe(reqId);
      const dataLen = bin.readUInt32LE(8 + reqId.length);
      const png = bin.subarray(12 + reqId.length);
      expect(png.length).toBe(dataLen);
      expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
      const img = PNG.sync.read(png);
      const qr = jsQR(new Uint8ClampedArray(img.data), img.width, img.height);
      expect(qr?.data).toBe(staticLoginUrl('https://bindery.test', staticLoginCode(secret), 'qrcode_login'));
      // The same code on every call while the binding lasts.
      d.sendJson({ cmd: 'gen_login_qrcode', headers: { req_id: 'again' }, body: { state: 'qrcode_login' } });
      const again = (await d.nextReply())!.binary!;
      expect(again.subarray(12 + 5)).toEqual(png);
    },
  );

  it.skipIf(skip)(
    'stores an upload_log binary frame byte for byte and answers with JSON keyed by its req_id (P-B-2)',
    async () => {
      const sn = 'WIRELOG01';
      const secretNo = await g.addDevice(sn);
      await g.bind(sn);
      const d = await connect();
      await subscribeDevice(d, sn, secretNo, g.nowSec());
      const log = Buffer.concat([Buffer.from('2026-11-21 12:00:00 boot\n'), Buffer.from([0, 1, 2, 0xff, 0xfe])]);
      const reqId = 'lb_upload_log';
      // Built by hand (not with the codec under test): version, cmd_len, cmd, req_id_len, req_id, data_len, data.
      const frame = Buffer.alloc(4 + 4 + 10 + 4 + reqId.length + 4 + log.length);
      let o = frame.writeUInt32LE(1, 0);
      o = frame.writeUInt32LE(10, o);
      o += frame.write('upload_log', o, 'ascii');
      o = frame.writeUInt32LE(reqId.length, o);
      o += frame.write(reqId, o, 'ascii');
      o = frame.writeUInt32LE(log.length, o);
      log.copy(frame, o);
      d.sendBinary(frame);
      const r = (await d.nextReply())!.json!;
      expect(r).toEqual({ headers: { req_id: reqId }, errcode: 0, errmsg: 'ok' });
      const list = await g.h.app.inject({ method: 'GET', url: `/api/v1/devices/${sn}/logs`, headers: bearer(g.h.operatorToken) });
      const [entry] = list.json().logs;
      expect(entry).toMatchObject({ req_id: reqId, size: log.length });
      const file = await g.h.app.inject({
        method: 'GET',
        url: `/api/v1/devices/${sn}/logs/${entry.id}`,
        headers: bearer(g.h.operatorToken),
      });
      expect(file.statusCode).toBe(200);
      expect(file.rawPayload).toEqual(log);

      // Truncated: the data_len promises more than the frame has.
      d.sendBinary(frame.subarray(0, frame.length - 3));
      expect((await d.nextReply())!.json).toMatchObject({ errcode: 600105 });
      // Too short to hold even the version.
      d.sendBinary(Buffer.from([1, 0]));
      expect((await d.nextReply())!.json).toMatchObject({ errcode: 600105 });
      // A binary frame for a command that has no binary form.
      const other = Buffer.alloc(4 + 4 + 4 + 4 + 1 + 4);
      let p = other.writeUInt32LE(1, 0);
      p = other.writeUInt32LE(4, p);
      p += other.write('ping', p, 'ascii');
      p = other.writeUInt32LE(1, p);
      p += other.write('z', p, 'ascii');
      other.writeUInt32LE(0, p);
      d.sendBinary(other);
      expect((await d.nextReply())!.json).toMatchObject({ errcode: 600106, headers: { req_id: 'z' } });
      expect(d.isOpen).toBe(true);
    },
  );

  it.skipIf(skip)('get_secret_no uses the seed signature with purpose "secret_no" (P-SIG-4)', async () => {
    const sn = 'WIRESEED1';
    const secretNo = await g.addDevice(sn, { seed: true });
    const d = await connect();
    const timestamp = String(g.nowSec());
    const nonce = '98765432109876543210';
    const device_signature = wecomSign([sn, g.seedSecretNo, timestamp, nonce, 'secret_no']);
    d.sendText(
      `{"cmd":"get_secret_no","headers":{"req_id":"s"},"body":{"sn":"${sn}","nonce":${nonce},"timestamp":"${timestamp}","device_signature":"${device_signature}"}}`,
    );
    const r = (await d.nextReply())!.json!;
    expect(r).toMatchObject({ errcode: 0, body: { secret_no: secretNo } });
  });
});
