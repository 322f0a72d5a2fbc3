import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { bearer } from '../../testing/harness.js';
import { type GatewayHarness, startGatewayHarness } from '../gateway/gateway.testkit.js';
import { registerBody, WireDevice } from '../gateway/wire-device.js';
import type { InstanceHealth } from './instance.service.js';
import { isLocalUrl } from './instance.service.js';

const VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;

describe.each(storageBackends())('instance health on $backend.name', ({ backend, skip }) => {
  let g: GatewayHarness;
  let userToken: string;
  let vendorToken: string;

  beforeAll(async () => {
    if (skip) return;
    // A fresh instance as `npm start` makes it: the public URL left at localhost.
    g = await startGatewayHarness(backend, {
      config: { BINDERY_PUBLIC_URL: 'http://localhost:8080', BINDERY_OUTBOUND_ALLOW: '127.0.0.1/32' },
    });
    const s = g.h.services;
    const user = await s.accounts.createUser(SYSTEM_CLI, { username: 'plain.person', password: 'a long password here' });
    userToken = (await s.people.createToken({ kind: 'user', userId: user.id, isOperator: false }, 't')).token;
    vendorToken = (await s.accounts.createVendorKey(SYSTEM_CLI, g.vendorId, 'k')).token;
  });
  afterAll(async () => {
    await g?.close();
  });

  const get = (url: string, token: string | null) => g.h.app.inject({ method: 'GET', url, headers: token ? bearer(token) : {} });
  const health = async () => {
    const r = await get('/api/v1/instance/health', g.h.operatorToken);
    expect(r.statusCode).toBe(200);
    return r.json() as InstanceHealth;
  };

  it.skipIf(skip)('is for operators only, the warnings too', async () => {
    for (const url of ['/api/v1/instance/health', '/api/v1/instance/warnings']) {
      expect((await get(url, null)).statusCode).toBe(401);
      expect((await get(url, userToken)).json().error.code).toBe('FORBIDDEN');
      expect((await get(url, vendorToken)).json().error.code).toBe('FORBIDDEN');
      expect((await get(url, g.h.operatorToken)).statusCode).toBe(200);
    }
  });

  it.skipIf(skip)('shows each dependency answering, the version and this process', async () => {
    const h = await health();
    expect(h.status).toBe('ok');
    expect(h.version).toBe(VERSION);
    expect(h.node_id).toBe(g.h.deps.config.nodeId);
    expect(h.public_url).toBe('http://localhost:8080');
    expect(h.uptime_sec).toBeGreaterThanOrEqual(0);
    expect(h.dependencies.map((d) => [d.name, d.kind, d.ok, d.error])).toEqual([
      ['database', backend.name, true, null],
      ['bus', 'memory', true, null],
      ['rate_limiter', 'memory', true, null],
    ]);
    for (const d of h.dependencies) expect(d.latency_ms).toBeGreaterThanOrEqual(0);
    expect(h.nodes).toEqual([
      expect.objectContaining({ node_id: g.h.deps.config.nodeId, this_process: true, devices: 0, version: VERSION }),
    ]);
    expect(h.nodes_error).toBeNull();
  });

  it.skipIf(skip)('a dependency that does not answer makes the instance degraded, with its error', async () => {
    const limiter = g.h.deps.limiter;
    const before = limiter.ping;
    limiter.ping = async () => false;
    try {
      const h = await health();
      expect(h.status).toBe('degraded');
      expect(h.dependencies.find((d) => d.name === 'rate_limiter')).toMatchObject({ ok: false, error: 'not answering' });
      expect(h.dependencies.find((d) => d.name === 'database')).toMatchObject({ ok: true });
    } finally {
      limiter.ping = before;
    }
    g.h.deps.bus.ping = async () => {
      throw new Error('redis gone');
    };
    try {
      expect((await health()).dependencies.find((d) => d.name === 'bus')).toMatchObject({ ok: false, error: 'redis gone' });
    } finally {
      delete g.h.deps.bus.ping;
    }
  });

  it.skipIf(skip)('counts the devices connected to this process, live', async () => {
    const sn = 'HEALTH0001';
    const secretNo = await g.addDevice(sn);
    const d = await WireDevice.connect(g.url);
    try {
      expect((await health()).devices_connected).toBe(0); // a socket, but no device yet
      expect((await d.request('register', registerBody(sn, secretNo, g.nowSec()))).errcode).toBe(0);
      const h = await health();
      expect(h.devices_connected).toBe(1);
      expect(h.nodes[0]).toMatchObject({ this_process: true, devices: 1, connections: 1 });
    } finally {
      await d.close();
    }
    const deadline = Date.now() + 10_000;
    while ((await health()).devices_connected !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect((await health()).devices_connected).toBe(0);
  });

  it.skipIf(skip)('shows queue depths: callback deliveries, durable commands, batches being generated', async () => {
    const s = g.h.services;
    const empty = (await health()).queues;
    expect(empty).toEqual({
      callbacks_pending: 0,
      callbacks_failed_24h: 0,
      commands_pending: 0,
      batches_generating: 0,
      label_zips: 0,
    });

    // Deliveries wait in the outbox (nobody delivers in this harness); one of them gave up.
    await s.callbacks.createWebhook(SYSTEM_CLI, { type: 'vendor', id: g.vendorId }, { url: 'http://127.0.0.1:9/hooks' });
    for (const sn of ['HEALTH0002', 'HEALTH0003']) {
      await g.addDevice(sn);
      await g.bind(sn);
    }
    const pending = (await health()).queues.callbacks_pending;
    expect(pending).toBeGreaterThanOrEqual(2);
    const one = await g.h.deps.db.kysely.selectFrom('outbox').select('seq').orderBy('seq').executeTakeFirstOrThrow();
    await g.h.deps.db.kysely
      .updateTable('outbox')
      .set({ status: 'failed', finished_at: g.h.clock.now() })
      .where('seq', '=', one.seq)
      .execute();
    let q = (await health()).queues;
    expect([q.callbacks_pending, q.callbacks_failed_24h]).toEqual([pending - 1, 1]);
    // A failure older than a day no longer counts.
    g.h.clock.advance(86_400_001);
    expect((await health()).queues.callbacks_failed_24h).toBe(0);

    // A command for an offline device waits for its next subscribe, until it expires.
    const cmd = await s.pushes.sendCommand(SYSTEM_CLI, 'HEALTH0002', 'fetch_log', { ttlSec: 3600 });
    expect(cmd.outcome).toBe('queued');
    expect((await health()).queues.commands_pending).toBe(1);
    g.h.clock.advance(3_600_001);
    expect((await health()).queues.commands_pending).toBe(0);

    // A batch counts while it is being generated.
    const { model } = await s.models.create(SYSTEM_CLI, g.vendorId, { name: 'Health Batch' });
    const batch = s.production.createBatch(SYSTEM_CLI, model.model_id, {
      count: 3000,
      pattern: { kind: 'random', prefix: 'HB', length: 10, checkChar: false },
    });
    q = (await health()).queues;
    await batch;
    expect(q.batches_generating).toBe(1);
    expect((await health()).queues.batches_generating).toBe(0);
  });

  it.skipIf(skip)('warns while the public URL is localhost and while no operator can sign in with a password', async () => {
    const warnings = async () => {
      const r = await get('/api/v1/instance/warnings', g.h.operatorToken);
      return (r.json() as { warnings: Array<{ code: string; message: string }> }).warnings.map((w) => w.code);
    };
    expect(await warnings()).toEqual(['public_url_localhost']);
    expect((await health()).warnings.map((w) => w.code)).toEqual(['public_url_localhost']);

    const db = g.h.deps.db.kysely;
    const root = await db
      .selectFrom('users')
      .select(['id', 'password_hash'])
      .where('username', '=', 'root')
      .executeTakeFirstOrThrow();
    const second = await g.h.services.accounts.createUser(SYSTEM_CLI, {
      username: 'second.operator',
      password: 'another long password',
      isOperator: true,
    });
    // The operator calling here keeps its token, but its password is cleared (a placeholder, not a hash);
    // the second one has a password but is disabled: nobody can sign in with a password.
    await db.updateTable('users').set({ password_hash: '!' }).where('id', '=', root.id).execute();
    await db.updateTable('users').set({ disabled_at: g.h.clock.now() }).where('id', '=', second.id).execute();
    try {
      expect(await warnings()).toEqual(['public_url_localhost', 'no_operator_password']);
      expect((await health()).warnings.map((w) => w.code)).toEqual(['public_url_localhost', 'no_operator_password']);
      // Enabled again, the second operator can sign in.
      await db.updateTable('users').set({ disabled_at: null }).where('id', '=', second.id).execute();
      expect(await warnings()).toEqual(['public_url_localhost']);
    } finally {
      await db.updateTable('users').set({ password_hash: root.password_hash }).where('id', '=', root.id).execute();
    }
    expect(await warnings()).toEqual(['public_url_localhost']);
  });
});

describe('isLocalUrl', () => {
  it('names the addresses only this machine reaches', () => {
    const local = [
      'http://localhost:8080',
      'https://LOCALHOST',
      'http://localhost.:80',
      'http://app.localhost',
      'http://127.0.0.1:8080',
      'http://127.1.2.3',
      'http://[::1]:8080',
      'http://0.0.0.0:8080',
      'http://[::ffff:127.0.0.1]',
    ];
    const reachable = [
      'https://bindery.example.com',
      'http://192.168.1.20:8080',
      'http://10.0.0.1',
      'http://[2001:db8::1]',
      'http://localhost-box.lan',
      'http://128.0.0.1',
      'not a url',
    ];
    expect(local.filter((u) => !isLocalUrl(u))).toEqual([]);
    expect(reachable.filter((u) => isLocalUrl(u))).toEqual([]);
  });
});
