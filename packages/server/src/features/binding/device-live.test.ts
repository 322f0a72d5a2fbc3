import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { type Harness, startHarness } from '../../testing/harness.js';
import { acmeOrg, type Browser, login, type OrgFixture, PASSWORD, vendorWithModels } from '../people/people.fixture.js';

/**
 * Issue 12: a device page keeps itself current (the device's changes as Server-Sent Events, for those
 * who may see its page); a bound device scanned by someone who may see it leads to its page; the owner
 * of a shared personal device lists and removes the people sharing it.
 */
describe.each(storageBackends())('a device page kept current, and shares revoked, on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let org: OrgFixture;
  let models: Record<string, string>;
  let base: string;
  let boss: Browser;
  let carol: Browser;

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    ({ models } = await vendorWithModels(h, [
      { name: 'Lamp', productKey: 'pkLamp' },
      { name: 'Speaker', productKey: 'pkSpk', mode: 'shared' },
    ]));
    org = await acmeOrg(h, 'lv');
    await h.services.devices.register(SYSTEM_CLI, models.pkLamp!, 'LAMP001');
    await h.services.binding.bind(
      SYSTEM_CLI,
      'LAMP001',
      { type: 'org', id: org.orgId },
      { visibleTo: { departments: [org.dept.salesEast] } },
    );
    boss = await login(h.app, 'boss.lv', PASSWORD);
    carol = await login(h.app, 'carol.lv', PASSWORD);
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await h?.close();
  });

  /** Opens the device's event stream as `who` and collects its events until `until` sees what it waits for. */
  const stream = async (who: Browser, sn: string) => {
    const ac = new AbortController();
    const r = await fetch(`${base}/api/v1/devices/${sn}/events`, { headers: { cookie: who.cookie }, signal: ac.signal });
    const events: string[] = [];
    let text = '';
    const reader = r.body?.getReader();
    const pump = (async () => {
      if (!reader) return;
      const dec = new TextDecoder();
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          text += dec.decode(value, { stream: true });
          for (let i = text.indexOf('\n\n'); i >= 0; i = text.indexOf('\n\n')) {
            const block = text.slice(0, i);
            text = text.slice(i + 2);
            const ev = /^event: (.+)$/m.exec(block)?.[1];
            const data = /^data: (.+)$/m.exec(block)?.[1];
            if (ev) events.push(`${ev} ${data ?? ''}`);
          }
        }
      } catch {
        // aborted
      }
    })();
    const until = async (pred: (e: string[]) => boolean) => {
      const deadline = Date.now() + 10_000;
      while (!pred(events) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
      return events;
    };
    const close = async () => {
      ac.abort();
      await pump;
    };
    return { status: r.status, events, until, close };
  };

  it.skipIf(skip)('streams a device’s changes to someone who may see its page, and to nobody else', async () => {
    const s = await stream(boss, 'LAMP001');
    expect(s.status).toBe(200);
    await s.until((e) => e.some((x) => x.startsWith('ready')));
    // Presence and firmware changes anywhere in the cluster arrive as `changed` events with their kind.
    const at = Date.now();
    await h.services.events.emit({
      type: 'device.online',
      via: 'wss',
      sn: 'LAMP001',
      modelId: models.pkLamp!,
      vendorId: 'v',
      at,
    });
    await h.services.events.emit({
      type: 'device.firmware_result',
      sn: 'LAMP001',
      modelId: models.pkLamp!,
      vendorId: 'v',
      at,
      operId: null,
      errcode: 0,
      errmsg: 'ok',
      curVersion: '1.1.0',
    });
    // Another device's change is not this page's business.
    await h.services.events.emit({
      type: 'device.online',
      via: 'wss',
      sn: 'OTHER01',
      modelId: models.pkLamp!,
      vendorId: 'v',
      at,
    });
    const ev = await s.until((e) => e.filter((x) => x.startsWith('changed')).length >= 2);
    expect(ev.filter((x) => x.startsWith('changed'))).toEqual([
      `changed {"type":"device.online","at":${at}}`,
      `changed {"type":"device.firmware_result","at":${at}}`,
    ]);
    await s.close();
    // Carol (Engineering) is outside the lamp's range: no page, no stream.
    const c = await stream(carol, 'LAMP001');
    expect(c.status).toBe(404);
    await c.close();
  });

  it.skipIf(skip)('a bound device scanned by an admin of its organisation leads to its page', async () => {
    const hw = (
      await h.deps.db.kysely.selectFrom('devices').select('hw_code').where('sn', '=', 'LAMP001').executeTakeFirstOrThrow()
    ).hw_code;
    const r = await boss.req('POST', '/api/v1/scan/resolve', { content: `https://bindery.test/connect/hardware?hw_code=${hw}` });
    expect(r.json()).toMatchObject({ validity: 'bound', device_page: '/devices/LAMP001' });
    // Someone who may not see it still gets the plain refusal, with no page to open.
    const c = await carol.req('POST', '/api/v1/scan/resolve', { content: `https://bindery.test/connect/hardware?hw_code=${hw}` });
    expect(c.json().validity).toBe('bound');
    expect(c.json().device_page).toBeUndefined();
  });

  it.skipIf(skip)(
    'the owner of a shared personal device sees who shares it and removes them; they cannot remove the owner',
    async () => {
      const alice = await login(h.app, 'alice.lv', PASSWORD);
      const bob = await login(h.app, 'bob.lv', PASSWORD);
      await h.services.devices.register(SYSTEM_CLI, models.pkSpk!, 'SPK001');
      await h.services.binding.bind(SYSTEM_CLI, 'SPK001', { type: 'user', id: alice.userId });
      await h.deps.db.kysely
        .insertInto('device_users')
        .values({
          device_id: (
            await h.deps.db.kysely.selectFrom('devices').select('id').where('sn', '=', 'SPK001').executeTakeFirstOrThrow()
          ).id,
          user_id: bob.userId,
          added_at: Date.now(),
        })
        .execute();
      const page = (await alice.req('GET', '/api/v1/devices/SPK001/page')).json();
      expect(page.users.map((u: { user_id: string; role: string }) => [u.user_id, u.role])).toEqual([
        [alice.userId, 'owner'],
        [bob.userId, 'user'],
      ]);
      // Bob's card names the real owner, not him.
      const bobs = (await bob.req('GET', '/api/v1/me/devices')).json().devices.find((d: { sn: string }) => d.sn === 'SPK001');
      expect(bobs.owner).toMatchObject({ type: 'user', id: alice.userId });
      expect((await bob.req('DELETE', `/api/v1/devices/SPK001/users/${alice.userId}`)).statusCode).toBe(403);
      expect((await alice.req('DELETE', `/api/v1/devices/SPK001/users/${alice.userId}`)).statusCode).toBe(400);
      expect((await alice.req('DELETE', `/api/v1/devices/SPK001/users/${bob.userId}`)).statusCode).toBe(204);
      expect((await bob.req('GET', '/api/v1/devices/SPK001/page')).statusCode).toBe(404);
      expect((await alice.req('DELETE', `/api/v1/devices/SPK001/users/${bob.userId}`)).statusCode).toBe(404);
      const audit = await h.deps.db.kysely
        .selectFrom('audit_log')
        .select(['action', 'data'])
        .where('subject', '=', 'device:SPK001')
        .execute();
      expect(audit.map((a) => a.action)).toContain('device.unshare');
    },
  );
});
