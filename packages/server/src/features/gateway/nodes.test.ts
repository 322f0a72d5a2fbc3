import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventBus } from '../../adapters/bus/event-bus.js';
import { RedisEventBus } from '../../adapters/bus/redis-bus.js';
import { FlexibleRateLimiter } from '../../adapters/ratelimit/flexible-limiter.js';
import { SecretBox } from '../../adapters/secrets/secret-box.js';
import { buildApp } from '../../app.js';
import { loadConfig } from '../../config.js';
import type { Deps } from '../../deps.js';
import type { Services } from '../../services.js';
import { ManualClock } from '../../shared/clock.js';
import { createLogger } from '../../shared/logger.js';
import { Metrics } from '../../shared/metrics.js';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { redisUrl, skipReasonRedis, storageBackends } from '../../testing/backends.js';
import { registerBody, subscribeDevice, WireDevice } from './wire-device.js';

interface Node {
  app: FastifyInstance;
  services: Services;
  bus: EventBus;
  url: string;
}

/**
 * Two gateway nodes in one test process, on one database and one Redis (presence + bus), each
 * with its own port: a push issued on either reaches the device on the other (P-CL-1..4). The
 * two-process version of this is packages/server/test/cluster.test.ts.
 */
describe.each(storageBackends())('gateway across nodes (Redis) on $backend.name', ({ backend, skip: dbSkip }) => {
  const skip = dbSkip ?? skipReasonRedis();
  const prefix = `bindery_t_${randomBytes(6).toString('hex')}`;
  const clock = new ManualClock(Date.now());
  const dataDir = mkdtempSync(path.join(tmpdir(), 'bindery-nodes-'));
  let a: Node;
  let b: Node;
  let cleanupDb: () => Promise<void>;
  let modelId: string;
  let orgId: string;
  const open: WireDevice[] = [];
  const connect = async (n: Node) => {
    const d = await WireDevice.connect(n.url);
    open.push(d);
    return d;
  };

  beforeAll(async () => {
    if (skip) return;
    const { db, cleanup } = await backend.open();
    cleanupDb = cleanup;
    const masterKey = randomBytes(32);
    const makeNode = async (nodeId: string): Promise<Node> => {
      const config = loadConfig({
        BINDERY_DATA_DIR: dataDir,
        BINDERY_PUBLIC_URL: 'https://bindery.test',
        BINDERY_LOG_LEVEL: 'silent',
        BINDERY_NODE_ID: nodeId,
        REDIS_URL: redisUrl,
        BINDERY_REDIS_PREFIX: prefix,
      });
      const bus = new RedisEventBus(redisUrl!, prefix);
      const deps: Deps = {
        config,
        db,
        secrets: new SecretBox(masterKey),
        bus,
        limiter: FlexibleRateLimiter.memory(),
        logger: createLogger(config),
        clock,
        metrics: new Metrics(false),
      };
      const { app, services } = await buildApp(deps);
      await app.listen({ port: 0, host: '127.0.0.1' });
      return { app, services, bus, url: `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}` };
    };
    a = await makeNode('node-a');
    b = await makeNode('node-b');
    const v = await a.services.vendors.create(SYSTEM_CLI, { name: 'V' });
    modelId = (await a.services.models.create(SYSTEM_CLI, v.id, { name: 'M' })).model.model_id;
    orgId = `org_${randomBytes(4).toString('hex')}`;
    await db.kysely
      .insertInto('organisations')
      .values({ id: orgId, name: 'Org', parent_id: null, mchid: null, merchant_shortname: null, created_at: 0 })
      .execute();
  });

  afterAll(async () => {
    if (skip) return;
    await Promise.all(open.map((d) => d.close()));
    for (const n of [a, b]) {
      if (!n) continue;
      await n.app.close();
      await n.bus.close();
    }
    await cleanupDb?.();
    const admin = new Redis(redisUrl!);
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length) await admin.del(...keys);
    await admin.quit();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const nowSec = () => Math.floor(clock.now() / 1000);
  const addDevice = async (sn: string) => (await a.services.devices.register(SYSTEM_CLI, modelId, sn)).secret_no;

  it.skipIf(skip)('a bind on node B reaches the waiting device on node A, and so do pushes and durable commands', async () => {
    const sn = 'NODES0001';
    const secretNo = await addDevice(sn);
    const d = await connect(a);
    const reg = await d.request('register', registerBody(sn, secretNo, nowSec()));
    expect((await d.request('active', { active_code: reg.body!.active_code })).errcode).toBe(600103);

    const bound = d.push('push_bind_corp');
    await b.services.binding.bind(SYSTEM_CLI, sn, { type: 'org', id: orgId });
    await bound;
    const act = await d.request('active', { active_code: reg.body!.active_code });
    expect((await d.request('subscribe_corp', { secret: act.body!.secret, firmware_version: '1' })).errcode).toBe(0);

    const restart = d.push('push_restart_device');
    expect((await b.services.pushes.push(sn, 'push_restart_device')).outcome).toBe('forwarded');
    await restart;

    const fetch = d.push('push_fetch_log');
    const r = await b.services.pushes.sendCommand(SYSTEM_CLI, sn, 'fetch_log', { hint: 'main' });
    expect(r.outcome).toBe('forwarded');
    expect((await fetch).headers).toEqual({ req_id: r.command_id });
    const cmds = await b.services.pushes.listCommands(SYSTEM_CLI, sn);
    expect(cmds.map((c) => [c.cmd, c.status])).toEqual([['push_fetch_log', 'delivered']]);

    const unbound = d.push('push_unbind_corp');
    await b.services.binding.unbind(SYSTEM_CLI, sn);
    await unbound;
  });

  it.skipIf(skip)('the newest connection wins across nodes; pushes follow the device to its new node', async () => {
    const sn = 'NODES0002';
    const secretNo = await addDevice(sn);
    await a.services.binding.bind(SYSTEM_CLI, sn, { type: 'org', id: orgId });
    const onA = await connect(a);
    await subscribeDevice(onA, sn, secretNo, nowSec());
    await a.app.gateway.flush();
    expect(await a.services.devices.repo.findBySn(sn)).toMatchObject({ online: 1, node_id: 'node-a' });
    const onB = await connect(b);
    await subscribeDevice(onB, sn, secretNo, nowSec());
    expect(await onA.closed).toEqual({ code: 4000, reason: 'replaced by a newer connection' });

    const restart = onB.push('push_restart_device');
    expect((await a.services.pushes.push(sn, 'push_restart_device')).outcome).toBe('forwarded');
    await restart;
    // A got only the bind made while the device was away (kept for its subscribe: P-PUSH-1), nothing after.
    expect(onA.pushes.map((p) => p.cmd)).toEqual(['push_bind_corp']);

    // Node B's state write names node B; A's later offline write must not undo it (P-CL-4).
    await b.app.gateway.flush();
    await a.app.gateway.flush();
    const row = await a.services.devices.repo.findBySn(sn);
    expect(row).toMatchObject({ online: 1, node_id: 'node-b' });

    // Gone from B: a non-durable push is dropped, a durable one waits.
    await onB.close();
    const deadline = Date.now() + 30_000;
    while (b.app.gateway.connectionOf(sn.toLowerCase()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    // The presence release is asynchronous; lookups settle to "nobody" once it lands.
    let outcome = 'forwarded';
    while (outcome !== 'offline' && Date.now() < deadline) {
      outcome = (await a.services.pushes.push(sn, 'push_restart_device')).outcome;
    }
    expect(outcome).toBe('offline');
    expect((await a.services.pushes.push(sn, 'push_restart_device', undefined, { durable: true })).outcome).toBe('queued');
  });

  it.skipIf(skip)("instance health on either node lists every node with its devices, from the nodes' heartbeats", async () => {
    const sn = 'NODES0003';
    const secretNo = await addDevice(sn);
    // Devices of the earlier cases may still be connected to either node.
    const [onA, onB] = [a.app.gateway.stats.devices + 1, b.app.gateway.stats.devices];
    const d = await connect(a);
    expect((await d.request('register', registerBody(sn, secretNo, nowSec()))).errcode).toBe(0);
    // Node A's periodic heartbeat, now rather than within presenceHeartbeatSec.
    await a.services.pushes.presence.heartbeat('node-a', a.app.gateway.limits.presenceTtlSec, a.app.gateway.report());
    const seen = (h: Awaited<ReturnType<Services['instance']['health']>>) =>
      h.nodes.map((n) => [n.node_id, n.this_process, n.devices]);
    const fromB = await b.services.instance.health(SYSTEM_CLI, b.app.gateway);
    expect(seen(fromB)).toEqual([
      ['node-b', true, onB],
      ['node-a', false, onA],
    ]);
    expect(fromB.devices_connected).toBe(onA + onB);
    expect(fromB.dependencies.find((x) => x.name === 'bus')).toMatchObject({ kind: 'redis', ok: true });
    expect(seen(await a.services.instance.health(SYSTEM_CLI, a.app.gateway))).toEqual([
      ['node-a', true, onA],
      ['node-b', false, onB],
    ]);
    await d.close();
  });
});
