import { createHash } from 'node:crypto';
import { WsErr } from '@bindery/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import { backoffDelay, DEFAULT_BACKOFF } from './backoff.js';
import { Device, type DeviceOptions } from './device.js';
import type { DeviceCredentials } from './events.js';
import { type PeerFrame, ScriptedPeer } from './testing/scripted-peer.js';
import { ManualTime } from './time.js';

/** Independent of the protocol package: sha1 over the sorted values, lowercase hex (§A4). */
function sha1Sorted(values: string[]): string {
  return createHash('sha1')
    .update([...values].sort().join(''))
    .digest('hex');
}

/** Deterministic [0,1) numbers for jitter. */
function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SN = 'HSA1RF5A0700165';
const SECRET_NO = '58ee0d77d6b9db9fc227862eb2d01289';
const WAIT = 5000;

describe('Device against a scripted peer (ManualTime)', () => {
  let peer: ScriptedPeer;
  let time: ManualTime;
  let dev: Device | undefined;
  let nonces: number;

  beforeEach(async () => {
    peer = await ScriptedPeer.start();
    time = new ManualTime(Date.UTC(2026, 10, 21, 12, 0, 0));
    nonces = 0;
  });
  afterEach(async () => {
    dev?.stop();
    dev = undefined;
    await peer.close();
  });

  function makeDevice(creds: Partial<DeviceCredentials> = {}, opts: Partial<DeviceOptions> = {}): Device {
    dev = new Device({
      url: peer.url,
      credentials: { sn: SN, secretNo: SECRET_NO, ...creds },
      firmwareVersion: '2.1.0',
      clock: time,
      timers: time,
      random: () => 0,
      nonce: () => String(9_007_199_254_740_993n + BigInt(++nonces)),
      ...opts,
    });
    return dev;
  }

  const serverSec = () => Math.floor(time.now() / 1000);

  async function connectAndSync(d: Device): Promise<WebSocket> {
    const conn = peer.nextConnection();
    d.start();
    const ws = await conn;
    const sync = await peer.expect('get_timestamp');
    expect(sync.body).toBeUndefined();
    peer.reply(sync, 0, { timestamp: serverSec() });
    return ws;
  }

  /** Takes a fresh device (secretNo only) all the way to ready. */
  async function toReady(d: Device): Promise<WebSocket> {
    const ws = await connectAndSync(d);
    peer.reply(await peer.expect('register'), 0, { active_code: 'AC-1' });
    peer.reply(await peer.expect('active'), 0, { secret: 'SECRET-1' });
    const sub = await peer.expect('subscribe_corp');
    const subscribed = d.waitFor('subscribed', undefined, WAIT);
    peer.reply(sub);
    await subscribed;
    return ws;
  }

  it('goes sync → register (signed) → active polling every 5 s → at once on push_bind_corp → subscribe', async () => {
    const d = makeDevice();
    const persisted: DeviceCredentials[] = [];
    d.on('persist', (c) => persisted.push(c));
    const ws = await connectAndSync(d);

    const reg = await peer.expect('register');
    const b = reg.body as Record<string, string>;
    expect(b.sn).toBe(SN);
    expect(b.timestamp).toBe(String(serverSec()));
    expect(b.nonce).toBe('9007199254740994');
    expect(b.device_signature).toBe(sha1Sorted([SN, SECRET_NO, b.timestamp!, b.nonce!, 'register']));
    peer.reply(reg, 0, { active_code: 'AC-1' });

    const a1 = await peer.expect('active');
    expect(a1.body).toEqual({ active_code: 'AC-1' });
    const waiting = d.waitFor('waiting_for_binding', undefined, WAIT);
    peer.reply(a1, WsErr.NOT_YET_BOUND, undefined, 'not yet bound');
    expect(await waiting).toEqual({ errcode: WsErr.NOT_YET_BOUND, errmsg: 'not yet bound' });
    expect(d.waiting).toBe(true);
    expect(d.state).toBe('active');

    // Nothing before 5 s: a request sent at 4.999 s is the next frame the peer sees.
    time.advance(4_999);
    const probe = d.request('get_corp_info');
    const p = await peer.expect('get_corp_info');
    peer.reply(p, 0, { corp_name: 'x' });
    await probe;
    time.advance(1);
    const a2 = await peer.expect('active');
    const waiting2 = d.waitFor('waiting_for_binding', undefined, WAIT);
    peer.reply(a2, WsErr.NOT_YET_BOUND);
    await waiting2;

    // push_bind_corp: active is sent at once, without any time passing.
    const bound = d.waitFor('push_bind_corp', undefined, WAIT);
    peer.push(ws, 'push_bind_corp');
    await bound;
    const a3 = await peer.expect('active');
    peer.reply(a3, 0, { secret: 'SECRET-1' });

    const sub = await peer.expect('subscribe_corp');
    expect(sub.body).toEqual({ secret: 'SECRET-1', firmware_version: '2.1.0' });
    const subscribed = d.waitFor('subscribed', undefined, WAIT);
    peer.reply(sub);
    await subscribed;
    expect(d.state).toBe('ready');
    expect(persisted.at(-1)).toEqual({ sn: SN, secretNo: SECRET_NO, activeCode: 'AC-1', secret: 'SECRET-1' });
  });

  it('exchanges the seed SecretNo first when it holds only the seed (or the "123456" placeholder)', async () => {
    const seed = 'aaaabbbbccccddddeeeeffff00001111';
    for (const creds of [
      { secretNo: undefined, seedSecretNo: seed },
      { secretNo: '123456', seedSecretNo: seed },
    ]) {
      const d = makeDevice(creds);
      await connectAndSync(d);
      const ex = await peer.expect('get_secret_no');
      const b = ex.body as Record<string, string>;
      expect(b.device_signature).toBe(sha1Sorted([SN, seed, b.timestamp!, b.nonce!, 'secret_no']));
      peer.reply(ex, 0, { secret_no: 'fedcba9876543210fedcba9876543210' });
      const reg = await peer.expect('register');
      const r = reg.body as Record<string, string>;
      expect(r.device_signature).toBe(sha1Sorted([SN, 'fedcba9876543210fedcba9876543210', r.timestamp!, r.nonce!, 'register']));
      expect(d.credentials.secretNo).toBe('fedcba9876543210fedcba9876543210');
      d.stop();
    }
  });

  it('signs with server time from get_timestamp, not its own clock', async () => {
    const d = makeDevice();
    const conn = peer.nextConnection();
    d.start();
    await conn;
    const sync = await peer.expect('get_timestamp');
    const server = serverSec() + 3600; // the device's clock is an hour behind
    peer.reply(sync, 0, { timestamp: server });
    const reg = await peer.expect('register');
    expect((reg.body as Record<string, string>).timestamp).toBe(String(server));
    expect(d.serverNowSec()).toBe(server);
  });

  it('in the official order (timeSync on-demand) registers at once on its own clock and syncs only when told it is stale', async () => {
    // Unanswered heartbeats must not drop the connection before the 12 h check at the end.
    const d = makeDevice({}, { timeSync: 'on-demand', intervals: { deadAfterMs: 24 * 3600_000 } });
    const conn = peer.nextConnection();
    d.start();
    await conn;
    // connect → register → active → subscribe_corp (§A2 official order): no get_timestamp first.
    const reg = await peer.expect('register');
    expect((reg.body as Record<string, string>).timestamp).toBe(String(serverSec()));
    peer.reply(reg, WsErr.STALE_TIMESTAMP, undefined, 'timestamp is more than 300 s away from server time');
    // Refused as stale: ask the server's time, then sign again with it.
    const sync = await peer.expect('get_timestamp');
    const server = serverSec() + 3600;
    peer.reply(sync, 0, { timestamp: server });
    const again = await peer.expect('register');
    expect((again.body as Record<string, string>).timestamp).toBe(String(server));
    // A second stale answer right after a sync is not believed: the step waits 5 s, no sync loop.
    const anomaly = d.waitFor('protocol_error', undefined, WAIT);
    peer.reply(again, WsErr.STALE_TIMESTAMP);
    expect((await anomaly).message).toBe('register refused as stale right after get_timestamp');
    time.advance(4999);
    await new Promise((r) => setTimeout(r, 20));
    expect(peer.buffered()).toHaveLength(0);
    time.advance(1);
    const third = await peer.expect('register');
    peer.reply(third, 0, { active_code: 'AC-1' });
    peer.reply(await peer.expect('active'), 0, { secret: 'SECRET-1' });
    const subscribed = d.waitFor('subscribed', undefined, WAIT);
    peer.reply(await peer.expect('subscribe_corp'));
    await subscribed;
    // No periodic get_timestamp either: 12 h later only heartbeats have gone out.
    time.advance(12 * 3600_000 + 1000);
    // 1 440 heartbeats (one per 30 s) are on their way over the socket; wait for all of them.
    for (let i = 0; i < 250 && peer.buffered().length < 1440; i++) await new Promise((r) => setTimeout(r, 20));
    const later = peer.buffered();
    expect(later.length).toBeGreaterThanOrEqual(1440);
    expect(later.filter((f) => f.cmd !== 'ping')).toEqual([]);
  });

  it('follows the register answers of §A7: 600002 keeps the stored code, 600053 skips to subscribe, 600054 to ready', async () => {
    let d = makeDevice({ activeCode: 'STORED' });
    await connectAndSync(d);
    peer.reply(await peer.expect('register'), WsErr.REGISTERED);
    expect((await peer.expect('active')).body).toEqual({ active_code: 'STORED' });
    d.stop();

    d = makeDevice({ activeCode: 'STORED', secret: 'S' });
    await connectAndSync(d);
    peer.reply(await peer.expect('register'), WsErr.ACTIVED);
    expect((await peer.expect('subscribe_corp')).body).toMatchObject({ secret: 'S' });
    d.stop();

    d = makeDevice({ activeCode: 'STORED', secret: 'S' });
    await connectAndSync(d);
    const subscribed = d.waitFor('subscribed', undefined, WAIT);
    peer.reply(await peer.expect('register'), WsErr.HAS_SUBSCRIBED);
    expect(await subscribed).toEqual({ errcode: WsErr.HAS_SUBSCRIBED });
    expect(d.state).toBe('ready');
  });

  it('skips active when it holds a secret; 600045 on subscribe counts as success', async () => {
    const d = makeDevice({ activeCode: 'AC', secret: 'KEPT' });
    await connectAndSync(d);
    peer.reply(await peer.expect('register'), 0, { active_code: 'AC' });
    const sub = await peer.expect('subscribe_corp');
    expect(sub.body).toMatchObject({ secret: 'KEPT' });
    const subscribed = d.waitFor('subscribed', undefined, WAIT);
    peer.reply(sub, WsErr.SUBSCRIBED);
    await subscribed;
    expect(d.state).toBe('ready');
  });

  it('re-registers on 600003 (invalid active code)', async () => {
    const d = makeDevice({ activeCode: 'OLD' });
    await connectAndSync(d);
    peer.reply(await peer.expect('register'), WsErr.REGISTERED);
    peer.reply(await peer.expect('active'), WsErr.INVALID_ACTIVE_CODE);
    const reg = await peer.expect('register');
    peer.reply(reg, 0, { active_code: 'NEW' });
    expect((await peer.expect('active')).body).toEqual({ active_code: 'NEW' });
  });

  it('resends a flow step after 5 s without an answer', async () => {
    const d = makeDevice();
    await connectAndSync(d);
    const r1 = await peer.expect('register');
    time.advance(5_000);
    const r2 = await peer.expect('register');
    expect(r2.reqId).not.toBe(r1.reqId);
    peer.reply(r1, 0, { active_code: 'LATE' }); // an answer to the abandoned request changes nothing
    peer.reply(r2, 0, { active_code: 'AC' });
    expect((await peer.expect('active')).body).toEqual({ active_code: 'AC' });
  });

  it('pings every 30 s from connect time, before login too', async () => {
    const d = makeDevice();
    const conn = peer.nextConnection();
    d.start();
    await conn;
    await peer.expect('get_timestamp'); // left unanswered: the device stays in sync, not logged in
    time.advance(29_999);
    // A request made now reaches the peer after everything sent so far: no ping among those.
    const probe = d.request('get_corp_info');
    let p = await peer.next();
    for (; p.cmd !== 'get_corp_info'; p = await peer.next()) expect(p.cmd).toBe('get_timestamp');
    peer.reply(p, 0, { corp_name: 'x' });
    await probe;
    time.advance(1);
    let f = await peer.next();
    while (f.cmd === 'get_timestamp') f = await peer.next();
    expect(f.cmd).toBe('ping');
    expect(f.body).toBeUndefined();
    peer.reply(f);
    time.advance(29_999);
    const probe2 = d.request('get_corp_info');
    for (p = await peer.next(); p.cmd !== 'get_corp_info'; p = await peer.next()) expect(p.cmd).toBe('get_timestamp');
    peer.reply(p, 0, { corp_name: 'x' });
    await probe2;
    time.advance(1);
    f = await peer.next();
    while (f.cmd === 'get_timestamp') f = await peer.next();
    expect(f.cmd).toBe('ping');
  });

  it.each([
    [WsErr.NOT_AUTHORIZED, true],
    [WsErr.NOT_REGISTERED, false],
    [WsErr.NOT_ACTIVE, false],
    [WsErr.NOT_LOGIN, false],
  ])('restarts the flow when a reply carries %i (secret wiped: %s)', async (code, wiped) => {
    const d = makeDevice();
    await toReady(d);
    const restart = d.waitFor('restart', undefined, WAIT);
    const call = d.getFirmwareInfo();
    peer.reply(await peer.expect('get_firmware_info'), code);
    await expect(call).rejects.toMatchObject({ errcode: code });
    expect(await restart).toEqual({ errcode: code, cmd: 'get_firmware_info', wiped });
    peer.reply(await peer.expect('get_timestamp'), 0, { timestamp: serverSec() });
    peer.reply(await peer.expect('register'), WsErr.REGISTERED);
    // Without its secret the device must activate again; with it, it subscribes straight away.
    const next = await peer.next();
    expect(next.cmd).toBe(wiped ? 'active' : 'subscribe_corp');
    expect(d.credentials.secret).toBe(wiped ? undefined : 'SECRET-1');
  });

  it('restarts on a header-less 600020 error frame and backs off when restarts repeat without progress', async () => {
    const d = makeDevice();
    const ws = await toReady(d);
    peer.sendRaw(ws, JSON.stringify({ errcode: WsErr.NOT_LOGIN, errmsg: 'not login' }));
    const s1 = await peer.expect('get_timestamp');
    peer.reply(s1, 0, { timestamp: serverSec() });
    // register itself answered 600014: a second restart in a row waits out a backoff delay.
    peer.reply(await peer.expect('register'), WsErr.NOT_REGISTERED);
    await d.waitFor('restart', (r) => r.errcode === WsErr.NOT_REGISTERED, WAIT);
    const delay = backoffDelay(0, DEFAULT_BACKOFF, () => 0);
    expect(time.pending().some((t) => t.delay === delay)).toBe(true);
    time.advance(delay);
    await peer.expect('get_timestamp');
  });

  it('reconnects with exponential backoff and jitter, and starts afresh once the server accepts it', async () => {
    const random = mulberry32(7);
    const d = makeDevice({}, { random });
    const delays: number[] = [];
    d.on('disconnected', (e) => delays.push(e.reconnectInMs!));
    peer.refuse = true;
    d.start();
    for (let n = 0; n < 10; n++) {
      await d.waitFor('disconnected', () => delays.length === n + 1, WAIT);
      // The scheduled timer is exactly the announced delay.
      expect(time.pending().map((t) => t.delay)).toEqual([delays[n]]);
      if (n < 9) time.advance(delays[n]!);
    }
    delays.forEach((ms, n) => {
      const base = Math.min(DEFAULT_BACKOFF.maxMs, DEFAULT_BACKOFF.initialMs * 2 ** n);
      expect(ms).toBeGreaterThanOrEqual(base * (1 - DEFAULT_BACKOFF.jitter));
      expect(ms).toBeLessThanOrEqual(base);
    });
    expect(delays.at(-1)).toBeGreaterThan(30_000); // capped at 60 s, not 512 s
    expect(new Set(delays.map((ms, n) => ms / Math.min(60_000, 1000 * 2 ** n))).size).toBeGreaterThan(1); // jittered

    // The server comes back: the device connects, registers, and the next loss starts from attempt 0.
    peer.refuse = false;
    const conn = peer.nextConnection();
    time.advance(delays[9]!);
    const ws = await conn;
    peer.reply(await peer.expectOn(ws, 'get_timestamp'), 0, { timestamp: serverSec() });
    const registered = d.waitFor('registered', undefined, WAIT);
    peer.reply(await peer.expectOn(ws, 'register'), 0, { active_code: 'AC' });
    await registered;
    const lost = d.waitFor('disconnected', undefined, WAIT);
    ws.terminate();
    expect((await lost).reconnectInMs).toBeLessThanOrEqual(DEFAULT_BACKOFF.initialMs);
  });

  it('gives the exact schedule 1, 2, 4 … 60 s without jitter', () => {
    const p = { ...DEFAULT_BACKOFF, jitter: 0 };
    expect([0, 1, 2, 3, 4, 5, 6, 7, 10].map((n) => backoffDelay(n, p, Math.random))).toEqual([
      1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000,
    ]);
  });

  it('routes by req_id: frames without cmd are replies, frames with cmd are pushes', async () => {
    const d = makeDevice();
    const ws = await toReady(d);
    const c1 = d.getCorpInfo();
    const c2 = d.getFirmwareInfo();
    const f1 = await peer.expect('get_corp_info');
    const f2 = await peer.expect('get_firmware_info');
    expect(f1.reqId).not.toBe(f2.reqId);
    // A push that happens to carry a pending request's req_id is still a push.
    const pushes: string[] = [];
    d.on('push', (p) => pushes.push(p.cmd));
    const scan = d.waitFor('push_user_scan', undefined, WAIT);
    peer.push(
      ws,
      'push_user_scan',
      { userid: 'zhangsan', op_type: 'scan_qrcode_open', oper_id: 'op1', state: 's1', user_type: 1 },
      f1.reqId,
    );
    expect(await scan).toEqual({ userid: 'zhangsan', op_type: 'scan_qrcode_open', oper_id: 'op1', state: 's1', user_type: 1 });
    // Replies out of order still reach their own callers.
    peer.reply(f2, 0, { firmware_version: '2.2.0', md5sum: 'ab', size: 10, download_url: 'http://x/fw' });
    peer.reply(f1, 0, { corp_name: 'Acme' });
    expect(await c1).toEqual({ corp_name: 'Acme' });
    expect((await c2).firmware_version).toBe('2.2.0');
    expect(pushes).toEqual(['push_user_scan']);
  });

  it('gives every push of §A6 its typed event', async () => {
    const d = makeDevice();
    const ws = await toReady(d);
    const seen: Array<[string, unknown]> = [];
    for (const cmd of ['push_update_firmware', 'push_fetch_log', 'push_restart_device', 'push_selfhelp_notify'] as const) {
      d.on(cmd, (p) => seen.push([cmd, p]));
    }
    const unknown = d.waitFor('push', (p) => p.cmd === 'push_enter_page', WAIT);
    peer.push(ws, 'push_update_firmware');
    peer.push(ws, 'push_fetch_log', { hint: 'device_log/20190101' });
    peer.push(ws, 'push_restart_device');
    peer.push(ws, 'push_selfhelp_notify', { data: '{"a":1}' });
    peer.push(ws, 'push_enter_page', { page_type: 'fa' });
    await unknown;
    expect(seen).toEqual([
      ['push_update_firmware', {}],
      ['push_fetch_log', { hint: 'device_log/20190101' }],
      ['push_restart_device', {}],
      ['push_selfhelp_notify', { data: '{"a":1}' }],
    ]);
  });

  it('push_unbind_corp wipes the secret and returns the device to activation polling', async () => {
    const d = makeDevice();
    const ws = await toReady(d);
    peer.push(ws, 'push_unbind_corp');
    const a = await peer.expect('active');
    expect(a.body).toEqual({ active_code: 'AC-1' });
    expect(d.credentials.secret).toBeUndefined();
    const waiting = d.waitFor('waiting_for_binding', undefined, WAIT);
    peer.reply(a, WsErr.NOT_YET_BOUND);
    await waiting;
    time.advance(5_000);
    await peer.expect('active');
  });

  it('gen_login_qrcode resolves with the binary reply; upload_log goes out as a binary request', async () => {
    const d = makeDevice();
    const ws = await toReady(d);
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);
    const q = d.genLoginQrcode('qrcode_login');
    const qf = await peer.expect('gen_login_qrcode');
    expect(qf.body).toEqual({ state: 'qrcode_login', format_version: 1 });
    peer.replyBinary(qf, png);
    expect(Buffer.compare(await q, png)).toBe(0);

    const log = Buffer.from('2026-11-21 12:00:00 boot\n');
    const u = d.uploadLog(log);
    const uf = await peer.expect('upload_log');
    expect(uf.binary?.data.toString()).toBe(log.toString());
    peer.reply(uf);
    expect((await u).errcode).toBe(0);

    const bad = d.waitFor('protocol_error', undefined, WAIT);
    peer.sendRaw(ws, Buffer.from([1, 0, 0, 0, 99]));
    expect((await bad).message).toMatch(/truncated/);
  });

  it('drops a connection that has been silent for three heartbeats, then reconnects', async () => {
    const d = makeDevice({}, { intervals: { deadAfterMs: 90_000 } });
    await toReady(d);
    const lost = d.waitFor('disconnected', undefined, WAIT);
    const conn = peer.nextConnection();
    time.advance(120_000); // pings go unanswered
    const e = await lost;
    time.advance(e.reconnectInMs!);
    await peer.expectOn(await conn, 'get_timestamp');
  });

  it('can speak like Lombo: fixed req_ids and numbers as JSON numbers', async () => {
    const d = makeDevice({}, { reqIds: 'fixed', numbers: 'number' });
    await connectAndSync(d);
    const reg: PeerFrame = await peer.expect('register');
    expect(reg.reqId).toBe('lb_register');
    expect(reg.raw).toMatch(/"nonce":9007199254740994[,}]/);
    expect(reg.raw).toMatch(/"timestamp":\d+[,}]/);
    // parseFrameText kept the 64-bit nonce exact, so the signature still checks out.
    const b = reg.body as Record<string, string>;
    expect(b.device_signature).toBe(sha1Sorted([SN, SECRET_NO, b.timestamp!, '9007199254740994', 'register']));
  });

  it('refuses to start without any SecretNo', () => {
    expect(() => new Device({ url: peer.url, credentials: { sn: SN } })).toThrow(/secretNo/);
  });
});
