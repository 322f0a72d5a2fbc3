import { randomBytes } from 'node:crypto';
import { WsErr } from '@bindery/protocol';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerBody, WireDevice } from '../src/features/gateway/wire-device.js';
import { redisUrl, skipReasonPostgres, skipReasonRedis } from '../src/testing/backends.js';
import { bootstrapPgSchema, killChildren, type Proc, removeTempDirs, startPair, stopServer, until } from './support/processes.js';

/**
 * Two real server processes on one PostgreSQL schema and one Redis (P-CL-1..4): a raw-ws device
 * holds its socket on process A while binds, commands and unbinds are made through process B's
 * HTTP API, and every push arrives on A's socket. Then the device moves to B and a command
 * queued while it was away is delivered there, once; a second connection on A takes it back.
 */
const SLOW = 180_000;
const skip = skipReasonPostgres() ?? skipReasonRedis();

async function call(p: Proc, token: string, method: string, url: string, body?: unknown) {
  const r = await fetch(p.base + url, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  return { status: r.status, json: () => JSON.parse(text) as Record<string, unknown>, text };
}

describe('two gateway processes on one PostgreSQL + Redis', () => {
  const prefix = `bindery_t_${randomBytes(6).toString('hex')}`;
  const masterKey = randomBytes(32).toString('hex');
  let dropSchema: (() => Promise<void>) | undefined;
  let a: Proc;
  let b: Proc;
  let token: string;
  let orgId: string;
  const devices: WireDevice[] = [];

  beforeAll(async () => {
    if (skip) return;
    // Migrate and bootstrap an operator and an organisation with the server's own code, on a schema of their own.
    orgId = `org_${randomBytes(4).toString('hex')}`;
    const pg = await bootstrapPgSchema({ id: orgId, name: 'Cluster Corp' });
    dropSchema = pg.drop;
    token = pg.token;
    [a, b] = await startPair(
      {
        DATABASE_URL: pg.url,
        REDIS_URL: redisUrl!,
        BINDERY_REDIS_PREFIX: prefix,
        BINDERY_MASTER_KEY: masterKey,
        BINDERY_PUBLIC_URL: 'https://bindery.test',
      },
      ['node-a', 'node-b'],
      'bindery-cluster-',
    );
  }, SLOW);

  afterAll(async () => {
    await Promise.all(devices.map((d) => d.close()));
    for (const p of [a, b]) {
      if (!p) continue;
      const exit = await stopServer(p);
      if (exit !== 'timeout') expect(exit.code, p.output()).toBe(0);
    }
    killChildren();
    await dropSchema?.();
    if (!skip) {
      const r = new Redis(redisUrl!);
      const keys = await r.keys(`${prefix}*`);
      if (keys.length) await r.del(...keys);
      await r.quit();
    }
    removeTempDirs();
  }, SLOW);

  it.skipIf(skip)(
    'a push issued on process B reaches the device on process A, and follows it when it moves',
    async () => {
      // Register the device through B's HTTP API.
      const v = await call(b, token, 'POST', '/api/v1/vendors', { name: 'Cluster Vendor' });
      const vendorId = (v.json().vendor as { id: string }).id;
      const m = await call(b, token, 'POST', `/api/v1/vendors/${vendorId}/models`, { name: 'Cluster Model' });
      const modelId = (m.json().model as { model_id: string }).model_id;
      const sn = 'CLUSTER0001';
      const reg = await call(b, token, 'POST', `/api/v1/models/${modelId}/devices`, { sn });
      expect(reg.status, reg.text).toBe(201);
      const secretNo = reg.json().secret_no as string;

      // The device lives on A, waiting for its binding.
      const d = await WireDevice.connect(a.ws, 'protocol');
      devices.push(d);
      const ts = (await d.request('get_timestamp')).body!.timestamp as number;
      const r = await d.request('register', registerBody(sn, secretNo, ts));
      expect(r.errcode).toBe(0);
      const activeCode = r.body!.active_code as string;
      expect((await d.request('active', { active_code: activeCode })).errcode).toBe(WsErr.NOT_YET_BOUND);

      // Bound through B: push_bind_corp arrives on A's socket.
      const bindPush = d.push('push_bind_corp');
      const bound = await call(b, token, 'POST', `/api/v1/devices/${sn}/bind`, { owner_type: 'org', owner_id: orgId });
      expect(bound.status, bound.text).toBe(204);
      await bindPush;
      const act = await d.request('active', { active_code: activeCode });
      expect(act.errcode).toBe(0);
      const secret = act.body!.secret as string;
      expect((await d.request('subscribe_corp', { secret, firmware_version: '1.2.3' })).errcode).toBe(0);

      // A reboot requested on B is forwarded to A.
      const restart = d.push('push_restart_device');
      const cmd = await call(b, token, 'POST', `/api/v1/devices/${sn}/commands`, { cmd: 'restart' });
      expect(cmd.status, cmd.text).toBe(202);
      expect(cmd.json().outcome).toBe('forwarded');
      expect((await restart).headers).toEqual({ req_id: cmd.json().command_id });

      // A's batched state write is visible through B.
      await until('the device to show online through B', async () => {
        const dev = (await call(b, token, 'GET', `/api/v1/devices/${sn}`)).json().device as Record<string, unknown>;
        return dev.online === true && dev.firmware_version === '1.2.3' ? dev : undefined;
      });

      // The device goes away; a log request made on B waits for it.
      await d.close();
      const fetchLog = await call(b, token, 'POST', `/api/v1/devices/${sn}/commands`, { cmd: 'fetch_log', hint: 'main' });
      expect(['queued', 'forwarded']).toContain(fetchLog.json().outcome);

      // It comes back on B: the queued command is delivered there, once.
      const onB = await WireDevice.connect(b.ws);
      devices.push(onB);
      const ts2 = (await onB.request('get_timestamp')).body!.timestamp as number;
      expect((await onB.request('register', registerBody(sn, secretNo, ts2))).body!.active_code).toBe(activeCode);
      expect((await onB.request('subscribe_corp', { secret, firmware_version: '1.2.3' })).errcode).toBe(0);
      const fetched = await onB.push('push_fetch_log');
      expect(fetched).toEqual({ cmd: 'push_fetch_log', headers: { req_id: fetchLog.json().command_id }, body: { hint: 'main' } });
      expect((await onB.request('subscribe_corp', { secret, firmware_version: '1.2.3' })).errcode).toBe(0);
      expect(onB.pushes.filter((p) => p.cmd === 'push_fetch_log')).toHaveLength(1);

      // A new connection on A takes the device back; B closes its socket (newest wins across processes).
      const backOnA = await WireDevice.connect(a.ws);
      devices.push(backOnA);
      expect((await backOnA.request('register', registerBody(sn, secretNo, ts2))).errcode).toBe(0);
      expect(await onB.closed).toEqual({ code: 4000, reason: 'replaced by a newer connection' });
      expect((await backOnA.request('subscribe_corp', { secret, firmware_version: '1.2.4' })).errcode).toBe(0);

      // Unbound through B: push_unbind_corp reaches A, and the secret no longer logs in.
      const unbindPush = backOnA.push('push_unbind_corp');
      expect((await call(b, token, 'DELETE', `/api/v1/devices/${sn}/bind`)).status).toBe(204);
      await unbindPush;
      expect((await backOnA.request('subscribe_corp', { secret, firmware_version: '1.2.4' })).errcode).toBe(WsErr.NOT_AUTHORIZED);
      const listed = (await call(a, token, 'GET', `/api/v1/devices/${sn}/commands`)).json().commands as Array<{
        cmd: string;
        status: string;
      }>;
      expect(listed.map((c) => [c.cmd, c.status])).toEqual([
        ['push_fetch_log', 'delivered'],
        ['push_restart_device', 'delivered'],
      ]);
    },
    SLOW,
  );
  it.skipIf(skip)(
    'the 1-per-minute QR limits are counted once across both processes (Redis)',
    async () => {
      const v = await call(a, token, 'POST', '/api/v1/vendors', { name: 'Limits Vendor' });
      const vendorId = (v.json().vendor as { id: string }).id;
      const m = await call(a, token, 'POST', `/api/v1/vendors/${vendorId}/models`, { name: 'Limits Model' });
      const modelId = (m.json().model as { model_id: string }).model_id;
      const modelSecret = m.json().model_secret as string;
      const ticket = (await call(b, token, 'GET', `/api/v1/models/${modelId}/ticket`)).json().model_ticket as string;
      const cgi = async (p: Proc, url: string, body: unknown) => {
        const r = await fetch(p.base + url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        return (await r.json()) as Record<string, unknown>;
      };
      const tok = await cgi(a, '/cgi-bin/openhw/get_model_token', {
        model_id: modelId,
        model_secret: modelSecret,
        model_ticket: ticket,
      });
      const q = `?model_access_token=${encodeURIComponent(tok.model_access_token as string)}`;
      expect((await cgi(b, `/cgi-bin/openhw/model/register_sn${q}`, { device_sn: 'LIMITS0001' })).errcode).toBe(0);
      expect((await cgi(b, `/cgi-bin/openhw/model/register_sn${q}`, { device_sn: 'LIMITS0002' })).errcode).toBe(0);

      // The identity QR of one SN: once on A, then refused on B within the minute (and on A again).
      const first = await cgi(a, `/cgi-bin/openhw/device/gen_id_dynamic_qrcode${q}`, { device_sn: 'LIMITS0001', state: 's' });
      expect(first.errcode).toBe(0);
      expect(first.qrcode_content).toMatch(/sn=LIMITS0001&timestamp=\d+&signature=[0-9a-f]{64}/);
      expect((await cgi(b, `/cgi-bin/openhw/device/gen_id_dynamic_qrcode${q}`, { device_sn: 'LIMITS0001' })).errcode).toBe(45033);
      expect((await cgi(a, `/cgi-bin/openhw/device/gen_id_dynamic_qrcode${q}`, { device_sn: 'LIMITS0001' })).errcode).toBe(45033);
      // Another SN has a budget of its own.
      expect((await cgi(b, `/cgi-bin/openhw/device/gen_id_dynamic_qrcode${q}`, { device_sn: 'LIMITS0002' })).errcode).toBe(0);
    },
    SLOW,
  );
});
