import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisEventBus } from '../../adapters/bus/redis-bus.js';
import { buildApp } from '../../app.js';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { redisUrl, skipReasonRedis, storageBackends } from '../../testing/backends.js';
import { type Harness, startHarness } from '../../testing/harness.js';
import { acmeOrg, type Browser, login, type OrgFixture, PASSWORD, vendorWithModels } from '../people/people.fixture.js';

interface SseEvent {
  id?: string;
  event: string;
  data: unknown;
}

/** Reads a text/event-stream response and hands out parsed events in order. */
function sse(res: Response) {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const queue: SseEvent[] = [];
  let buf = '';
  const pump = async (): Promise<void> => {
    const { value, done } = await reader.read();
    if (done) throw new Error('stream ended');
    buf += decoder.decode(value, { stream: true });
    let i = buf.indexOf('\n\n');
    while (i >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const e: SseEvent = { event: 'message', data: null };
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('id: ')) e.id = line.slice(4);
        else if (line.startsWith('event: ')) e.event = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      if (data) {
        e.data = JSON.parse(data);
        queue.push(e);
      }
      i = buf.indexOf('\n\n');
    }
  };
  return {
    /** The next event satisfying `pred`, skipping others (the test times out if none comes). */
    async next(pred: (e: SseEvent) => boolean = () => true): Promise<SseEvent> {
      for (;;) {
        const k = queue.findIndex(pred);
        if (k >= 0) return queue.splice(k, 1)[0]!;
        queue.length = 0;
        await pump();
      }
    },
    close: () => reader.cancel().catch(() => {}),
  };
}

describe.each(storageBackends())('notifications on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let org: OrgFixture;
  let modelId: string;
  let n = 0;
  const b: Record<string, Browser> = {};

  const newDevice = async () => {
    const sn = `NT${String(++n).padStart(4, '0')}`;
    await h.services.devices.register(SYSTEM_CLI, modelId, sn);
    return sn;
  };
  const inbox = async (who: string) => (await b[who]!.req('GET', '/api/v1/notifications')).json();

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    modelId = (await vendorWithModels(h, [{ name: 'Sensor', productKey: 'pkN' }])).models.pkN!;
    // About who hears of a bind, not proof of possession: the model takes typed SNs alone.
    await h.services.binding.putBindSettings(SYSTEM_CLI, modelId, { typedSnMode: 'sn_only' });
    org = await acmeOrg(h, 'nt', { memberBinding: true });
    for (const u of ['boss', 'salesadmin', 'engadmin', 'alice', 'bob']) b[u] = await login(h.app, `${u}.nt`, PASSWORD);
  });
  afterAll(async () => {
    await h?.close();
  });

  it.skipIf(skip)(
    '"device bound" goes to the binder and every admin with the binding permission over it, linking to the device',
    async () => {
      const sn = await newDevice();
      const r = await b.alice!.req('POST', '/api/v1/bind', { sn, owner: { type: 'org', id: org.orgId } });
      expect(r.statusCode).toBe(201);
      for (const who of ['alice', 'boss', 'salesadmin']) {
        const box = await inbox(who);
        expect(box.unread, who).toBe(1);
        expect(box.notifications[0]).toMatchObject({
          kind: 'device.bound',
          link: `/devices/${sn}`,
          read: false,
          data: { sn, model_name: 'Sensor', owner_type: 'org', owner_name: 'Acme nt', by_name: 'alice', method: 'sn' },
        });
        expect(box.notifications[0].body).toBe(`alice bound Sensor ${sn} to Acme nt.`);
      }
      // Not an admin of that scope, not the binder: nothing.
      expect((await inbox('engadmin')).unread).toBe(0);
      expect((await inbox('bob')).unread).toBe(0);
    },
  );

  it.skipIf(skip)('unread counts, marking some or all read; unbinding tells the member who bound it', async () => {
    const sn = await newDevice();
    await b.alice!.req('POST', '/api/v1/bind', { sn, owner: { type: 'org', id: org.orgId } });
    expect((await b.boss!.req('GET', '/api/v1/notifications/unread-count')).json()).toEqual({ unread: 2 });
    const first = (await inbox('boss')).notifications[0].id as number;
    const one = await b.boss!.req('POST', '/api/v1/notifications/read', { ids: [first] });
    expect(one.json()).toEqual({ unread: 1 });
    const unreadOnly = (await b.boss!.req('GET', '/api/v1/notifications?unread=true')).json();
    expect(unreadOnly.notifications).toHaveLength(1);
    expect(unreadOnly.notifications[0].id).not.toBe(first);
    // Someone else's ids are not theirs to mark.
    await b.bob!.req('POST', '/api/v1/notifications/read', { ids: [unreadOnly.notifications[0].id] });
    expect((await inbox('boss')).unread).toBe(1);
    expect((await b.boss!.req('POST', '/api/v1/notifications/read', { all: true })).json()).toEqual({ unread: 0 });
    expect((await b.boss!.req('POST', '/api/v1/notifications/read', {})).statusCode).toBe(400);

    const before = (await inbox('alice')).unread;
    expect((await b.boss!.req('DELETE', `/api/v1/devices/${sn}/bind`)).statusCode).toBe(204);
    const box = await inbox('alice');
    expect(box.unread).toBe(before + 1);
    expect(box.notifications[0]).toMatchObject({ kind: 'device.unbound', data: { sn, by_name: 'boss' } });
    expect((await b.boss!.req('GET', '/api/v1/notifications?limit=1')).json().next_before).toEqual(expect.any(Number));
  });

  it.skipIf(skip)('streams live over Server-Sent Events on a real listening server, and resumes with Last-Event-ID', async () => {
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
    const open = (who: string, headers: Record<string, string> = {}) =>
      fetch(`${base}/api/v1/notifications/stream`, { headers: { cookie: b[who]!.cookie, ...headers } });

    const res = await open('salesadmin');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const stream = sse(res);
    const first = await stream.next();
    expect(first.event).toBe('unread');
    const startUnread = (first.data as { unread: number }).unread;

    const sn = await newDevice();
    await b.bob!.req('POST', '/api/v1/bind', { sn, owner: { type: 'org', id: org.orgId } });
    const ev = await stream.next((e) => e.event === 'notification');
    expect(ev.data).toMatchObject({ kind: 'device.bound', link: `/devices/${sn}`, data: { sn, by_name: 'bob' } });
    expect(ev.id).toBe(String((ev.data as { id: number }).id));
    expect(await stream.next((e) => e.event === 'unread')).toMatchObject({ data: { unread: startUnread + 1 } });

    // Another tab marks all read: this stream learns the new count.
    await b.salesadmin!.req('POST', '/api/v1/notifications/read', { all: true });
    expect(await stream.next((e) => e.event === 'unread')).toMatchObject({ data: { unread: 0 } });
    await stream.close();

    // Missed while disconnected: replayed on reconnect.
    const sn2 = await newDevice();
    await b.alice!.req('POST', '/api/v1/bind', { sn: sn2, owner: { type: 'org', id: org.orgId } });
    const resumed = sse(await open('salesadmin', { 'last-event-id': ev.id! }));
    const missed = await resumed.next((e) => e.event === 'notification');
    expect(missed.data).toMatchObject({ data: { sn: sn2 } });
    await resumed.close();

    const anon = await fetch(`${base}/api/v1/notifications/stream`);
    expect(anon.status).toBe(401);
  });
});

describe.skipIf(!!skipReasonRedis())('notifications across processes (Redis bus)', () => {
  it.each(storageBackends().filter((x) => !x.skip))(
    'a bind on one process reaches a stream held by another ($backend.name)',
    async ({ backend }) => {
      const prefix = `bindery_t_ntf_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
      const h = await startHarness(backend, { bus: new RedisEventBus(redisUrl!, prefix) });
      // A second process: its own app, services and bus connection, the same database.
      const bus2 = new RedisEventBus(redisUrl!, prefix);
      const { app: app2 } = await buildApp({ ...h.deps, bus: bus2 });
      await app2.ready();
      try {
        const pkX = (await vendorWithModels(h, [{ name: 'Relay', productKey: 'pkX' }])).models.pkX!;
        await h.services.devices.register(SYSTEM_CLI, pkX, 'XP0001');
        const org = await acmeOrg(h, 'xp');
        await h.app.listen({ port: 0, host: '127.0.0.1' });
        const base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
        const boss = await login(h.app, 'boss.xp', PASSWORD);
        const stream = sse(await fetch(`${base}/api/v1/notifications/stream`, { headers: { cookie: boss.cookie } }));
        await stream.next((e) => e.event === 'unread');

        const salesAdminOn2 = await login(app2, 'salesadmin.xp', PASSWORD);
        const verif_code = await h.services.binding.verifCode(SYSTEM_CLI, 'XP0001');
        const r = await salesAdminOn2.req('POST', '/api/v1/bind', {
          sn: 'XP0001',
          verif_code,
          owner: { type: 'org', id: org.orgId },
        });
        expect(r.statusCode).toBe(201);
        const ev = await stream.next((e) => e.event === 'notification');
        expect(ev.data).toMatchObject({ kind: 'device.bound', data: { sn: 'XP0001', by_name: 'salesadmin' } });
        await stream.close();
      } finally {
        await app2.close();
        await bus2.close();
        await h.close();
      }
    },
  );
});
