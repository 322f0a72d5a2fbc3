import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OutboundPolicy } from '../../adapters/outbound/policy.js';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { bearer, type Harness, startHarness } from '../../testing/harness.js';
import { TEST_EVENT_LIMIT } from './callbacks.service.js';
import { VendorServer } from './vendor-server.testkit.js';
import { newEncodingAesKey } from './wecom-crypto.js';

const TOKEN = 'TestEventToken1';

/** A webhook receiver on 127.0.0.1 answering `status`, keeping raw bodies to check signatures. */
async function receiver(status = 204) {
  const got: Array<{ headers: Record<string, string>; raw: string }> = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers as Record<string, string>, raw: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    got,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

function signedBy(secret: string, headers: Record<string, string>, raw: string): boolean {
  const ts = headers['bindery-webhook-timestamp'] ?? '';
  const want = createHmac('sha256', secret).update(`${ts}.${raw}`).digest();
  const got = Buffer.from((headers['bindery-webhook-signature'] ?? '').replace(/^v1=/, ''), 'hex');
  return got.length === want.length && timingSafeEqual(got, want);
}

interface Delivery {
  id: string;
  event_type: string;
  status: string;
  attempts: number;
  target: { kind: string; id: string };
  last_http_status: number | null;
  last_error: string | null;
  attempt_log: Array<{ http_status: number | null; errcode: number | null; error: string | null }>;
}

/**
 * "Send test event" (issue 13 item 8): a test delivery to a webhook or a WeCom-style callback URL
 * goes through the outbox to a real local receiver, shows in the delivery log, is tried once, and
 * is refused before anything is queued when the outbound policy refuses the URL.
 */
describe.each(storageBackends())('test events on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let vendorId: string;
  let modelId: string;
  let vs: VendorServer;
  const key = newEncodingAesKey();
  const org = { type: 'org' as const, id: 'org_te' };

  const post = (url: string) => h.app.inject({ method: 'POST', url, headers: bearer(h.operatorToken) });
  const delivery = async (id: string): Promise<Delivery> => {
    const r = await h.app.inject({ method: 'GET', url: `/api/v1/deliveries/${id}`, headers: bearer(h.operatorToken) });
    expect(r.statusCode).toBe(200);
    return r.json().delivery as Delivery;
  };
  /** Sends a test event through `url` and runs the outbox once; the delivery as the log then shows it. */
  const test = async (url: string): Promise<Delivery> => {
    const r = await post(url);
    expect(r.statusCode, r.body).toBe(202);
    const queued = r.json().delivery as Delivery;
    expect(queued).toMatchObject({ status: 'pending', attempts: 0 });
    await h.services.callbacks.outbox.runOnce();
    return delivery(queued.id);
  };
  const addHook = async (url: string, events: string[] | null = null) => {
    const r = await h.app.inject({
      method: 'POST',
      url: `/api/v1/vendors/${vendorId}/webhooks`,
      headers: bearer(h.operatorToken),
      payload: { url, events },
    });
    expect(r.statusCode).toBe(201);
    return r.json() as { webhook: { id: string }; secret: string };
  };

  beforeAll(async () => {
    if (skip) return;
    // The receivers listen on 127.0.0.1, which the outbound policy refuses unless allowed.
    h = await startHarness(backend, { config: { BINDERY_OUTBOUND_ALLOW: '127.0.0.1/32' } });
    Object.assign(h.services.callbacks.deadlines, { callbackMs: 15_000, verifyMs: 15_000, webhookMs: 15_000 });
    vendorId = (await h.services.vendors.create(SYSTEM_CLI, { name: 'Test Event Vendor' })).id;
    modelId = (await h.services.models.create(SYSTEM_CLI, vendorId, { name: 'Test Lock' })).model.model_id;
    await h.deps.db.kysely
      .insertInto('organisations')
      .values({ id: org.id, name: 'Org TE', parent_id: null, mchid: null, merchant_shortname: null, created_at: 0 })
      .execute();
    vs = await new VendorServer(TOKEN, key).start();
    await h.services.callbacks.putModelCallback(SYSTEM_CLI, modelId, { url: vs.url, token: TOKEN, encoding_aes_key: key });
  });
  afterAll(async () => {
    await vs?.stop();
    await h?.close();
  });

  it.skipIf(skip)('a webhook test event reaches the receiver signed, whatever its events, and shows in the log', async () => {
    const rx = await receiver(204);
    try {
      // Subscribed to one device event only: the test event goes all the same.
      const { webhook, secret } = await addHook(rx.url, ['device.online']);
      const d = await test(`/api/v1/webhooks/${webhook.id}/test`);
      expect(d).toMatchObject({
        event_type: 'webhook.test',
        status: 'delivered',
        attempts: 1,
        target: { kind: 'webhook', id: webhook.id },
        last_http_status: 204,
      });
      expect(rx.got).toHaveLength(1);
      const body = JSON.parse(rx.got[0]!.raw) as { id: string; type: string; data: Record<string, unknown> };
      expect(body).toMatchObject({
        type: 'webhook.test',
        data: { webhook_id: webhook.id, owner_type: 'vendor', owner_id: vendorId },
      });
      expect(rx.got[0]!.headers['bindery-webhook-id']).toBe(body.id);
      expect(signedBy(secret, rx.got[0]!.headers, rx.got[0]!.raw)).toBe(true);
      // In the vendor's log, filterable by its type; audited as an integration action.
      const log = await h.app.inject({
        method: 'GET',
        url: `/api/v1/vendors/${vendorId}/deliveries?event_type=webhook.test`,
        headers: bearer(h.operatorToken),
      });
      expect((log.json().deliveries as Delivery[]).map((x) => x.id)).toEqual([d.id]);
      const audit = await h.deps.db.kysely
        .selectFrom('audit_log')
        .select(['subject', 'data'])
        .where('action', '=', 'webhook.test')
        .execute();
      expect(audit).toEqual([{ subject: `webhook:${webhook.id}`, data: expect.stringContaining(d.id) }]);
    } finally {
      await rx.close();
    }
  });

  it.skipIf(skip)('a failing test event is tried once and fails with its status', async () => {
    const rx = await receiver(500);
    try {
      const { webhook } = await addHook(rx.url);
      const d = await test(`/api/v1/webhooks/${webhook.id}/test`);
      expect(d).toMatchObject({ status: 'failed', attempts: 1, last_http_status: 500, last_error: 'HTTP 500' });
      // No retries later: the outbox leaves it alone.
      h.clock.advance(60 * 60_000);
      await h.services.callbacks.outbox.runOnce();
      expect(rx.got).toHaveLength(1);
      expect((await delivery(d.id)).attempts).toBe(1);
      // Redelivered by hand, it is tried once again.
      const again = await post(`/api/v1/deliveries/${d.id}/redeliver`);
      expect(again.statusCode).toBe(202);
      await h.services.callbacks.outbox.runOnce();
      h.clock.advance(60 * 60_000);
      await h.services.callbacks.outbox.runOnce();
      expect(await delivery(again.json().delivery.id)).toMatchObject({ status: 'failed', attempts: 1 });
      expect(rx.got).toHaveLength(2);
    } finally {
      await rx.close();
    }
  });

  it.skipIf(skip)('an organisation webhook is tested by the same route, into the organisation’s log', async () => {
    const rx = await receiver(200);
    try {
      const { webhook } = await h.services.callbacks.createWebhook(SYSTEM_CLI, org, { url: rx.url });
      const d = await test(`/api/v1/webhooks/${webhook.id}/test`);
      expect(d).toMatchObject({ status: 'delivered', event_type: 'webhook.test' });
      const log = await h.app.inject({
        method: 'GET',
        url: `/api/v1/organisations/${org.id}/deliveries`,
        headers: bearer(h.operatorToken),
      });
      expect((log.json().deliveries as Delivery[]).map((x) => x.id)).toContain(d.id);
      const audited = await h.deps.db.kysely
        .selectFrom('audit_log')
        .select('org_id')
        .where('action', '=', 'webhook.test')
        .where('subject', '=', `webhook:${webhook.id}`)
        .executeTakeFirstOrThrow();
      expect(audited.org_id).toBe(org.id);
    } finally {
      await rx.close();
    }
  });

  it.skipIf(skip)('a URL the outbound policy now refuses is OUTBOUND_URL_REFUSED and nothing is queued', async () => {
    const rx = await receiver(204);
    const allowed = h.services.callbacks.outbound;
    try {
      const { webhook } = await addHook(rx.url);
      // The operator took 127.0.0.1 off the allow-list since the URL was saved.
      h.services.callbacks.outbound = new OutboundPolicy({});
      for (const url of [`/api/v1/webhooks/${webhook.id}/test`, `/api/v1/models/${modelId}/callback/test`]) {
        const r = await post(url);
        expect(r.statusCode).toBe(400);
        expect(r.json().error).toMatchObject({
          code: 'OUTBOUND_URL_REFUSED',
          details: { reason: 'the host is a loopback address' },
        });
      }
      const queued = await h.deps.db.kysely
        .selectFrom('outbox')
        .select('id')
        .where('target_id', 'in', [webhook.id, `model:${modelId}`])
        .where('event_type', 'in', ['webhook.test', 'bindery_test'])
        .execute();
      expect(queued).toHaveLength(0);
      expect(rx.got).toHaveLength(0);
    } finally {
      h.services.callbacks.outbound = allowed;
      await rx.close();
    }
  });

  it.skipIf(skip)('a model callback URL gets a sealed bindery_test; replies are judged tolerantly', async () => {
    vs.behave = () => ({ kind: 'ok' });
    const d = await test(`/api/v1/models/${modelId}/callback/test`);
    expect(d).toMatchObject({
      event_type: 'bindery_test',
      status: 'delivered',
      target: { kind: 'model', id: `model:${modelId}` },
    });
    const got = vs.received.at(-1)!;
    expect(got).toMatchObject({ signatureOk: true, tousername: modelId, receiveId: modelId });
    expect(got.message).toEqual({
      msg_type: 'event',
      base_info: { req_id: d.id, createtime: expect.any(Number), model_id: modelId, service_corpid: vendorId },
      event: { event_type: 'bindery_test' },
    });

    // A vendor refusing an event type it does not know still proved its URL: delivered, errcode kept.
    vs.behave = () => ({ kind: 'plain-reply', reply: { errcode: 40014, errmsg: 'unknown event_type' } });
    const refusedType = await test(`/api/v1/models/${modelId}/callback/test`);
    expect(refusedType).toMatchObject({ status: 'delivered', attempts: 1 });
    expect(refusedType.attempt_log[0]).toMatchObject({ http_status: 200, errcode: 40014 });

    // An HTTP error is a failure, tried once.
    vs.behave = () => ({ kind: 'http-error', status: 503 });
    const down = await test(`/api/v1/models/${modelId}/callback/test`);
    expect(down).toMatchObject({ status: 'failed', attempts: 1, last_http_status: 503 });
    vs.behave = () => ({ kind: 'ok' });
  });

  it.skipIf(skip)('an encrypted reply under other keys fails the test (the vendor holds another Token)', async () => {
    const other = await new VendorServer('SomeOtherToken', key).start();
    const m2 = (await h.services.models.create(SYSTEM_CLI, vendorId, { name: 'Wrong Keys' })).model.model_id;
    try {
      await h.services.callbacks.putModelCallback(SYSTEM_CLI, m2, { url: other.url, token: TOKEN, encoding_aes_key: key });
      other.behave = () => ({ kind: 'encrypted-reply', reply: { errcode: 0 } });
      const d = await test(`/api/v1/models/${m2}/callback/test`);
      expect(d).toMatchObject({ status: 'failed', attempts: 1, last_error: 'the encrypted reply has a wrong msgsignature' });
    } finally {
      await other.stop();
    }
  });

  it.skipIf(skip)('the provider general URL gets bindery_test under the vendor id', async () => {
    const cb = await h.services.callbacks.putVendorCallback(SYSTEM_CLI, vendorId, { url: vs.url.replace('/callback', '/p') });
    const provider = await new VendorServer(cb.token, cb.encoding_aes_key).start();
    try {
      await h.services.callbacks.putVendorCallback(SYSTEM_CLI, vendorId, { url: provider.url });
      const d = await test(`/api/v1/vendors/${vendorId}/callback/test`);
      expect(d).toMatchObject({ status: 'delivered', target: { kind: 'vendor', id: `vendor:${vendorId}` } });
      const got = provider.received.at(-1)!;
      expect(got).toMatchObject({ signatureOk: true, tousername: vendorId, receiveId: vendorId });
      expect(got.message).toMatchObject({ base_info: { service_corpid: vendorId }, event: { event_type: 'bindery_test' } });
      expect((got.message.base_info as Record<string, unknown>).model_id).toBeUndefined();
      expect(
        await h.deps.db.kysely
          .selectFrom('audit_log')
          .select('subject')
          .where('action', '=', 'callback.test')
          .where('subject', '=', `vendor:${vendorId}`)
          .execute(),
      ).toHaveLength(1);
    } finally {
      await h.services.callbacks.deleteVendorCallback(SYSTEM_CLI, vendorId);
      await provider.stop();
    }
    // No URL, no test.
    const none = await post(`/api/v1/vendors/${vendorId}/callback/test`);
    expect(none.statusCode).toBe(404);
    expect(none.json().error.code).toBe('CALLBACK_NOT_SET');
  });

  it.skipIf(skip)('test events to one URL are limited per minute; a removed webhook has none', async () => {
    const rx = await receiver(204);
    try {
      const { webhook } = await addHook(rx.url);
      for (let i = 0; i < TEST_EVENT_LIMIT.points; i++)
        expect((await post(`/api/v1/webhooks/${webhook.id}/test`)).statusCode).toBe(202);
      const limited = await post(`/api/v1/webhooks/${webhook.id}/test`);
      expect(limited.statusCode).toBe(429);
      expect(limited.json().error.code).toBe('RATE_LIMITED');
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      // Another URL is not held up by this one.
      const { webhook: second } = await addHook(rx.url);
      expect((await post(`/api/v1/webhooks/${second.id}/test`)).statusCode).toBe(202);
      await h.services.callbacks.deleteWebhook(SYSTEM_CLI, second.id);
      const gone = await post(`/api/v1/webhooks/${second.id}/test`);
      expect(gone.statusCode).toBe(404);
      expect(gone.json().error.code).toBe('WEBHOOK_NOT_FOUND');
    } finally {
      await rx.close();
    }
  });
});
