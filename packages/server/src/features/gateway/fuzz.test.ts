import { encodeBinaryRequest, signRegister, WsErr } from '@bindery/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageBackends } from '../../testing/backends.js';
import { type GatewayHarness, startGatewayHarness } from './gateway.testkit.js';
import { type Received, subscribeDevice, WireDevice } from './wire-device.js';

/** Deterministic PRNG (mulberry32), so a failing run can be replayed from its seed. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, pick };
}
type Rng = ReturnType<typeof prng>;

type Frame = { text: string } | { binary: Buffer } | { invalidUtf8: Buffer };

const CMDS = [
  'ping',
  'get_timestamp',
  'register',
  'get_secret_no',
  'active',
  'subscribe_corp',
  'get_firmware_info',
  'gen_login_qrcode',
  'error_report',
  'get_corp_info',
  'selfhelp_notify',
  'upload_log',
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
  'push_bind_corp',
  'get_userinfo_by_page',
  '',
  'x'.repeat(65),
];
const VALUES: unknown[] = [
  null,
  true,
  0,
  -1,
  1.5,
  Number.MAX_VALUE,
  Number.MAX_SAFE_INTEGER + 2,
  '',
  '123',
  '-7',
  '1e5',
  '18446744073709551615',
  [],
  [1, 'a'],
  {},
  { a: { b: { c: [] } } },
  '\u0000\u202e\ud83d\ude00',
  'A'.repeat(40),
];

function randomString(r: Rng, max: number): string {
  const n = r.int(max);
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(r.pick([r.int(128), 0x20 + r.int(95), 0x4e00 + r.int(100), 0x22, 0x5c]));
  return s;
}

function randomValue(r: Rng, depth = 0): unknown {
  if (depth > 3 || r.next() < 0.6) return r.next() < 0.5 ? r.pick(VALUES) : randomString(r, 40);
  if (r.next() < 0.5) return Array.from({ length: r.int(4) }, () => randomValue(r, depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = r.int(5); i > 0; i--)
    o[
      r.pick([
        'sn',
        'nonce',
        'timestamp',
        'device_signature',
        'active_code',
        'secret',
        'state',
        'data',
        'errcode',
        randomString(r, 8),
      ])
    ] = randomValue(r, depth + 1);
  return o;
}

/** Flips, drops, duplicates or truncates characters of a text. */
function mutate(r: Rng, s: string): string {
  let out = s;
  for (let i = 1 + r.int(4); i > 0; i--) {
    const p = r.int(out.length + 1);
    switch (r.int(5)) {
      case 0:
        out = out.slice(0, p) + String.fromCharCode(r.int(128)) + out.slice(p + 1);
        break;
      case 1:
        out = out.slice(0, p) + out.slice(p + 1 + r.int(5));
        break;
      case 2:
        out = out.slice(0, p) + out.slice(p, p + r.int(10)) + out.slice(p);
        break;
      case 3:
        out = out.slice(0, p);
        break;
      default:
        out = out.slice(0, p) + r.pick(['{', '}', '"', ':', ',', '[', ']', '\\', 'null', '1e999']) + out.slice(p);
    }
  }
  return out;
}

function makeFrame(r: Rng, valid: (cmd: string) => string): Frame {
  const kind = r.int(100);
  if (kind < 12) return { text: randomString(r, 200) }; // bad JSON
  if (kind < 30) return { text: mutate(r, valid(r.pick(CMDS))) }; // mutated valid frames
  if (kind < 50) {
    // wrong types in every position
    const f: Record<string, unknown> = {};
    if (r.next() < 0.8) f.cmd = r.next() < 0.6 ? r.pick(CMDS) : randomValue(r);
    if (r.next() < 0.8)
      f.headers = r.next() < 0.6 ? { req_id: r.next() < 0.7 ? randomString(r, 20) : randomValue(r) } : randomValue(r);
    if (r.next() < 0.7) f.body = randomValue(r);
    return { text: JSON.stringify(r.next() < 0.05 ? randomValue(r) : f) };
  }
  if (kind < 60) {
    // unknown commands with well-formed frames
    return { text: JSON.stringify({ cmd: randomString(r, 30) || 'x', headers: { req_id: randomString(r, 10) }, body: {} }) };
  }
  if (kind < 66) {
    // huge strings: under and over the 64 KiB text limit
    const big = 'Z'.repeat(r.pick([1000, 30_000, 63_000, 70_000, 200_000]));
    return { text: JSON.stringify({ cmd: r.pick(CMDS), headers: { req_id: r.next() < 0.5 ? big : 'h' }, body: { data: big } }) };
  }
  if (kind < 68) return { text: `${'['.repeat(20_000)}${']'.repeat(20_000)}` }; // deep nesting
  if (kind < 88) {
    // binary: valid, truncated, lying lengths, random bytes
    const full = encodeBinaryRequest(
      r.pick(['upload_log', 'upload_log', 'ping', 'x']),
      randomString(r, 12),
      Buffer.from(randomString(r, 300)),
    );
    switch (r.int(4)) {
      case 0:
        return { binary: full.subarray(0, r.int(full.length)) };
      case 1: {
        const b = Buffer.from(full);
        b.writeUInt32LE(
          r.pick([0, 0xffffffff, 11, b.length]),
          r.pick([0, 4, 8 + (b.readUInt32LE(4) % 64)].filter((o) => o + 4 <= b.length)),
        );
        return { binary: b };
      }
      case 2:
        return { binary: Buffer.from(Array.from({ length: r.int(64) }, () => r.int(256))) };
      default:
        return { binary: full };
    }
  }
  if (kind < 89) return { invalidUtf8: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]) }; // ws closes 1007
  return { text: valid(r.pick(CMDS)) }; // well-formed (some valid, most refused for their state)
}

/**
 * The fuzz test of the Done-when list: ≥ 10 000 random and mutated frames at the gateway. Every
 * frame gets a reply (an error, mostly) or the connection is closed cleanly (a close frame, never
 * a dropped socket), the process stays up, and a well-behaved device alongside keeps getting its
 * ping answered. Floods get RATE_LIMITED and then a 1008 close (P-RATE-1/2).
 */
describe.each(storageBackends())('gateway fuzz on $backend.name', ({ backend, skip }) => {
  let g: GatewayHarness;
  let good: WireDevice;
  const seed = Number(process.env.BINDERY_FUZZ_SEED ?? 20261121);
  const FRAMES = 10_000;

  beforeAll(async () => {
    if (skip) return;
    g = await startGatewayHarness(backend);
    const sn = 'FUZZGOOD01';
    const secretNo = await g.addDevice(sn);
    await g.bind(sn);
    good = await WireDevice.connect(g.url);
    await subscribeDevice(good, sn, secretNo, g.nowSec());
  });
  afterAll(async () => {
    await good?.close();
    await g?.close();
  });

  const heartbeat = async () => {
    const r = await good.request('ping', undefined, 'lb_ping');
    expect(r).toEqual({ headers: { req_id: 'lb_ping' }, errcode: 0, errmsg: 'ok' });
  };

  it.skipIf(skip)(
    `${FRAMES} random and mutated frames: each gets a reply or a clean close`,
    async () => {
      const r = prng(seed);
      const sn = 'FUZZBAD01';
      const secretNo = await g.addDevice(sn);
      await g.bind(sn);
      const valid = (cmd: string) => {
        const ts = String(g.nowSec());
        const nonce = String(r.int(1e9));
        const body: Record<string, unknown> = {
          sn,
          nonce,
          timestamp: ts,
          device_signature: signRegister({ sn, timestamp: ts, nonce }, secretNo),
          active_code: randomString(r, 64),
          secret: randomString(r, 32),
          firmware_version: '9.9',
          state: 's',
          data: '{}',
          errcode: -1,
          errmsg: 'fuzz',
        };
        return JSON.stringify({ cmd, headers: { req_id: `v${r.int(100)}` }, body });
      };
      // Every frame should reach the parser here; the flood test below keeps the real limits.
      const limits = { ...g.h.app.gateway.limits };
      g.h.app.gateway.limits.framesPerSec = 1e9;
      g.h.app.gateway.limits.floodFramesPerSec = 1e9;
      g.h.app.gateway.limits.registerPerMinute = 1e9;

      let d = await WireDevice.connect(g.url);
      const stats = { sent: 0, replies: 0, errors: 0, binary: 0, closes: new Map<number, number>(), bursts: 0 };
      const check = (rep: Received) => {
        if (rep.binary) {
          stats.binary++;
          return;
        }
        const j = rep.json!;
        expect(typeof j.errcode, rep.text?.slice(0, 200)).toBe('number');
        expect(typeof j.errmsg).toBe('string');
        expect(j).not.toHaveProperty('cmd');
        if (j.errcode !== 0) stats.errors++;
      };
      const reopen = async () => {
        const c = await d.closed;
        // A clean close carries a close frame; 1006 would mean the socket was just dropped.
        expect(c.code).not.toBe(1006);
        stats.closes.set(c.code, (stats.closes.get(c.code) ?? 0) + 1);
        d = await WireDevice.connect(g.url);
        // Half of the connections log in first, so deeper commands get fuzzed too.
        if (r.next() < 0.5) await subscribeDevice(d, sn, secretNo, g.nowSec());
      };
      const send = (f: Frame) => {
        if ('text' in f) d.sendText(f.text);
        else if ('binary' in f) d.sendBinary(f.binary);
        else d.ws.send(f.invalidUtf8, { binary: false });
        stats.sent++;
      };

      while (stats.sent < FRAMES) {
        if (r.next() < 0.01) {
          // A burst: many frames without waiting; the queue limit answers the excess (P-RATE-2).
          const n = 20 + r.int(120);
          for (let i = 0; i < n; i++) {
            const f =
              r.next() < 0.5
                ? makeFrame(r, valid)
                : { text: valid(r.pick(['active', 'error_report', 'register', 'get_corp_info'])) };
            // Frames that make ws close the socket stay out of bursts: each burst frame must get its reply.
            send('invalidUtf8' in f ? { text: '{' } : f);
          }
          stats.bursts++;
          for (let i = 0; i < n; i++) {
            const rep = await d.nextReply();
            if (!rep) break;
            stats.replies++;
            check(rep);
          }
          if (!d.isOpen) await reopen();
          continue;
        }
        send(makeFrame(r, valid));
        const rep = await d.nextReply();
        if (rep) {
          stats.replies++;
          check(rep);
        } else {
          await reopen();
        }
        if (stats.sent % 250 === 0) await heartbeat();
      }
      // An 8 MiB+ frame is beyond the socket layer's ceiling: ws closes with 1009, cleanly.
      d.sendBinary(Buffer.alloc(9 * 1024 * 1024));
      stats.sent++;
      expect(await d.nextReply()).toBeNull();
      expect((await d.closed).code).toBe(1009);
      await d.close();

      Object.assign(g.h.app.gateway.limits, limits);
      console.log(
        `[fuzz seed=${seed}] sent ${stats.sent}, replies ${stats.replies} (errors ${stats.errors}, binary ${stats.binary}), bursts ${stats.bursts}, closes ${JSON.stringify([...stats.closes])}`,
      );
      expect(stats.sent).toBeGreaterThanOrEqual(FRAMES);
      expect(stats.errors).toBeGreaterThan(FRAMES / 2);
      await heartbeat();
      const health = await g.h.app.inject({ method: 'GET', url: '/healthz' });
      expect(health.statusCode).toBe(200);
      // 10 000 round trips: generous on a loaded 2-core machine (nothing here measures time).
    },
    600_000,
  );

  it.skipIf(skip)(
    'a flood gets RATE_LIMITED, then a 1008 close; the good device keeps its heartbeat',
    async () => {
      const d = await WireDevice.connect(g.url);
      const frame = '{"cmd":"ping","headers":{"req_id":"f"}}';
      for (let i = 0; i < 1000; i++) d.sendText(frame);
      const seen: number[] = [];
      for (;;) {
        const rep = await d.nextReply();
        if (!rep) break;
        seen.push(rep.json!.errcode as number);
      }
      expect(await d.closed).toEqual({ code: 1008, reason: 'frame flood' });
      expect(seen.filter((c) => c === 0).length).toBeLessThanOrEqual(g.h.app.gateway.limits.framesPerSec);
      expect(seen).toContain(WsErr.RATE_LIMITED);
      // Answered or cut off: nothing in between.
      expect(seen.every((c) => c === 0 || c === WsErr.RATE_LIMITED)).toBe(true);
      await heartbeat();
      expect(good.isOpen).toBe(true);
      expect((await good.request('get_corp_info')).errcode).toBe(0);
    },
    120_000,
  );
});
