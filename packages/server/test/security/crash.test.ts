import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WsErr } from '@bindery/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/adapters/storage/database.js';
import { registerBody, WireDevice } from '../../src/features/gateway/wire-device.js';
import { bootstrapDatabase, killChildren, type Proc, startServer, stopServer } from '../support/processes.js';

/**
 * Issue 11, finding 9: crash safety. The real server on its embedded SQLite file is killed with
 * SIGKILL (no shutdown flush) right after a device was told it is registered and activated; the
 * database must already say so. A firmware upload's temporary `.part` file left by a crash is
 * removed when the server starts again.
 */
const SLOW = 180_000;

describe('finding 9: crash safety', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'bindery-crash-'));
  const env = {
    BINDERY_DATA_DIR: dataDir,
    BINDERY_MASTER_KEY: randomBytes(32).toString('hex'),
    BINDERY_PUBLIC_URL: 'https://bindery.test',
    BINDERY_NODE_ID: 'crash-node',
  };
  let token: string;
  let server: Proc | undefined;
  const devices: WireDevice[] = [];

  const call = async (method: string, url: string, body?: unknown) => {
    const r = await fetch(server!.base + url, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await r.text();
    return { status: r.status, text, json: () => JSON.parse(text) as Record<string, unknown> };
  };
  const killHard = async () => {
    const s = server!;
    s.child.kill('SIGKILL');
    expect((await s.exited).signal).toBe('SIGKILL');
    server = undefined;
  };
  const readDevice = async (sn: string) => {
    const db = openDatabase({ kind: 'sqlite', file: path.join(dataDir, 'bindery.sqlite') });
    try {
      return await db.kysely
        .selectFrom('devices')
        .select(['activated_at', 'registered_net_at', 'bound_at'])
        .where('sn_key', '=', sn.toLowerCase())
        .executeTakeFirstOrThrow();
    } finally {
      await db.close();
    }
  };

  beforeAll(async () => {
    // Bootstrap an operator on the server's own database file, with the server's own code.
    token = await bootstrapDatabase(
      { kind: 'sqlite', file: path.join(dataDir, 'bindery.sqlite') },
      { id: 'org_crash', name: 'Crash Corp' },
    );
    server = await startServer(env);
  }, SLOW);

  afterAll(async () => {
    await Promise.all(devices.map((d) => d.close()));
    if (server) await stopServer(server);
    killChildren();
    rmSync(dataDir, { recursive: true, force: true });
  }, SLOW);

  it(
    'finding 9: after kill -9 right after `active` answered, activated_at and registered_net_at are in the database',
    async () => {
      const v = await call('POST', '/api/v1/vendors', { name: 'Crash Vendor' });
      const vendorId = (v.json().vendor as { id: string }).id;
      const m = await call('POST', `/api/v1/vendors/${vendorId}/models`, { name: 'Crash Model' });
      const modelId = (m.json().model as { model_id: string }).model_id;
      const sn = 'CRASH0001';
      const reg = await call('POST', `/api/v1/models/${modelId}/devices`, { sn });
      expect(reg.status, reg.text).toBe(201);
      const secretNo = reg.json().secret_no as string;

      const d = await WireDevice.connect(server!.ws);
      devices.push(d);
      const ts = (await d.request('get_timestamp')).body!.timestamp as number;
      const r = await d.request('register', registerBody(sn, secretNo, ts));
      expect(r.errcode).toBe(0);
      const activeCode = r.body!.active_code as string;
      expect((await d.request('active', { active_code: activeCode })).errcode).toBe(WsErr.NOT_YET_BOUND);
      const bound = await call('POST', `/api/v1/devices/${sn}/bind`, { owner_type: 'org', owner_id: 'org_crash' });
      expect(bound.status, bound.text).toBe(204);
      const act = await d.request('active', { active_code: activeCode });
      expect(act.errcode).toBe(0);
      expect(typeof act.body!.secret).toBe('string');

      // The device has its secret. The process dies before any periodic flush could run.
      await killHard();
      const row = await readDevice(sn);
      expect(row.bound_at).not.toBeNull();
      expect(row.activated_at).not.toBeNull();
      expect(row.activated_at!).toBeGreaterThanOrEqual(row.bound_at!);
      expect(row.registered_net_at).not.toBeNull();
    },
    SLOW,
  );

  it(
    'finding 9: a firmware .part file left by a crash is removed when the server starts again',
    async () => {
      if (server) await killHard();
      const fwDir = path.join(dataDir, 'firmware');
      mkdirSync(fwDir, { recursive: true });
      const part = path.join(fwDir, 'fw_0000000000000000000000000000.bin.a1b2c3d4.part');
      writeFileSync(part, Buffer.alloc(4096, 1));
      const kept = path.join(fwDir, 'fw_0000000000000000000000000001.bin');
      writeFileSync(kept, Buffer.alloc(16, 2));
      server = await startServer(env);
      expect(existsSync(part)).toBe(false);
      // Published firmware files stay.
      expect(existsSync(kept)).toBe(true);
    },
    SLOW,
  );
});
