import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { type Harness, startHarness } from '../../testing/harness.js';
import { acmeOrg, login, type OrgFixture, PASSWORD, vendorWithModels } from '../people/people.fixture.js';

/**
 * What the organisation's webhooks page does, as its super admin over a session: add a webhook
 * (the secret once), read the delivery log by status with its attempts, redeliver, remove. Device
 * admins and members are refused.
 */
describe.each(storageBackends())('organisation webhooks on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let org: OrgFixture;
  let modelId: string;
  let server: Server;
  let url: string;
  let answer = 204;

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend, { config: { BINDERY_OUTBOUND_ALLOW: '127.0.0.1/32' } });
    org = await acmeOrg(h, 'whk');
    modelId = (await vendorWithModels(h, [{ name: 'Bell', productKey: 'pkWHK' }])).models.pkWHK!;
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(answer).end());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    await h?.close();
  });

  it.skipIf(skip)('add, log by status with attempts, redeliver, remove; super admins only', async () => {
    const boss = await login(h.app, 'boss.whk', PASSWORD);
    const base = `/api/v1/organisations/${org.orgId}`;
    const sa = await login(h.app, 'salesadmin.whk', PASSWORD);
    expect((await sa.req('GET', `${base}/webhooks`)).statusCode).toBe(403);
    expect((await sa.req('POST', `${base}/webhooks`, { url })).statusCode).toBe(403);

    const created = await boss.req('POST', `${base}/webhooks`, { url, events: ['device.bound'] });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json().secret).toMatch(/^whsec_/);
    const hook = created.json().webhook;
    expect(hook).toMatchObject({ owner_type: 'org', owner_id: org.orgId, url, events: ['device.bound'], disabled_at: null });
    const listed = (await boss.req('GET', `${base}/webhooks`)).json().webhooks;
    expect(listed).toEqual([hook]);
    expect(JSON.stringify(listed)).not.toContain('whsec_');

    await h.services.devices.register(SYSTEM_CLI, modelId, 'WHK1');
    answer = 500;
    await h.services.binding.bind(SYSTEM_CLI, 'WHK1', { type: 'org', id: org.orgId });
    await h.services.callbacks.outbox.runOnce();
    const pending = (await boss.req('GET', `${base}/deliveries?status=pending`)).json().deliveries as Array<{
      id: string;
      attempts: number;
      attempt_log: Array<{ http_status: number | null }>;
      last_http_status: number | null;
    }>;
    expect(pending).toHaveLength(1);
    expect(pending[0]).toMatchObject({ attempts: 1, last_http_status: 500, attempt_log: [{ http_status: 500 }] });
    // Still being attempted: not yet something to send again.
    expect((await boss.req('POST', `/api/v1/deliveries/${pending[0]!.id}/redeliver`)).statusCode).toBe(400);

    answer = 204;
    h.clock.advance(3600_000);
    await h.services.callbacks.outbox.runOnce();
    const delivered = (await boss.req('GET', `${base}/deliveries?status=delivered`)).json().deliveries as Array<{ id: string }>;
    expect(delivered.map((d) => d.id)).toEqual([pending[0]!.id]);
    expect((await boss.req('GET', `${base}/deliveries?status=failed`)).json().deliveries).toEqual([]);

    expect((await sa.req('POST', `/api/v1/deliveries/${pending[0]!.id}/redeliver`)).statusCode).toBe(404);
    const again = await boss.req('POST', `/api/v1/deliveries/${pending[0]!.id}/redeliver`);
    expect(again.statusCode, again.body).toBe(202);
    expect(again.json().delivery).toMatchObject({ redelivery_of: pending[0]!.id, status: 'pending', event_type: 'device.bound' });
    await h.services.callbacks.outbox.runOnce();
    const all = (await boss.req('GET', `${base}/deliveries`)).json().deliveries as Array<{ status: string }>;
    expect(all.map((d) => d.status)).toEqual(['delivered', 'delivered']);

    expect((await boss.req('DELETE', `/api/v1/webhooks/${hook.id}`)).statusCode).toBe(204);
    expect((await boss.req('GET', `${base}/webhooks`)).json().webhooks).toEqual([]);
  });
});
