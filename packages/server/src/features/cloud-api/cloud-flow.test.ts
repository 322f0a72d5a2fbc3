import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { bearer, type Harness, startHarness } from '../../testing/harness.js';
import { VendorServer } from '../callbacks/vendor-server.testkit.js';
import { newEncodingAesKey } from '../callbacks/wecom-crypto.js';
import { acmeOrg, type Browser, login, PASSWORD } from '../people/people.fixture.js';

// biome-ignore lint/suspicious/noExplicitAny: answers are JSON, checked by the assertions
type Json = Record<string, any>;

/**
 * Issue 5's whole cloud flow in one case, with a vendor server on 127.0.0.1 that opens every
 * callback with @wecom/crypto: model_ticket → model token → register_sn → a person binds → the
 * vendor gets `bind` with an auth_code → device secret and token → a dynamic login QR → the person
 * scans it → the vendor gets `user_scan` with the state.
 */
describe.each(storageBackends())('the vendor cloud flow end to end on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let vs: VendorServer;
  let boss: Browser;
  let orgId: string;
  let modelId: string;
  let modelSecret: string;

  const cgi = async (path: string, q: Record<string, string>, body: object): Promise<Json> => {
    const r = await h.app.inject({ method: 'POST', url: `/cgi-bin/openhw/${path}?${new URLSearchParams(q)}`, payload: body });
    expect(r.statusCode).toBe(200);
    return r.json();
  };
  const events = (type: string) => vs.messages((m) => (m.event as Json | undefined)?.event_type === type);
  const commands = (type: string) => vs.messages((m) => (m.command as Json | undefined)?.command_type === type);

  beforeAll(async () => {
    if (skip) return;
    // The vendor's server listens on 127.0.0.1, which the outbound policy refuses unless allowed.
    h = await startHarness(backend, { config: { BINDERY_OUTBOUND_ALLOW: '127.0.0.1/32' } });
    const vendor = await h.services.vendors.create(SYSTEM_CLI, { name: 'Flow Vendor' });
    const created = await h.services.models.create(SYSTEM_CLI, vendor.id, { name: 'Flow Lock' });
    modelId = created.model.model_id;
    modelSecret = created.model_secret;
    vs = await new VendorServer('FlowToken', newEncodingAesKey()).start();
    const put = await h.app.inject({
      method: 'PUT',
      url: `/api/v1/models/${modelId}/callback`,
      headers: bearer(h.operatorToken),
      payload: { url: vs.url, token: vs.token, encoding_aes_key: vs.encodingAesKey },
    });
    expect(put.statusCode).toBe(200);
    orgId = (await acmeOrg(h, 'flow')).orgId;
    boss = await login(h.app, 'boss.flow', PASSWORD);
  });
  afterAll(async () => {
    await vs?.stop();
    await h?.close();
  });

  it.skipIf(skip)('register → bind → auth_code → device token → dynamic login QR → scan → user_scan with the state', async () => {
    // The renewal pushes the model_ticket; the vendor uses what it received.
    await h.services.ticketRenewal.runOnce();
    await h.services.callbacks.outbox.runOnce();
    const ticket = events('model_ticket').at(-1)?.event as Json;
    expect(ticket?.model_ticket).toEqual(expect.any(String));
    const mt = await cgi(
      'get_model_token',
      {},
      { model_id: modelId, model_secret: modelSecret, model_ticket: ticket.model_ticket },
    );
    const modelToken = mt.model_access_token as string;
    expect(modelToken).toEqual(expect.any(String));

    const reg = await cgi('model/register_sn', { model_access_token: modelToken }, { device_sn: 'FLOW0001' });
    expect(reg.errcode).toBe(0);

    // The person binds; the bind callback is synchronous and carries the auth_code.
    const verif_code = await h.services.binding.verifCode(SYSTEM_CLI, 'FLOW0001');
    const bound = await boss.req('POST', '/api/v1/bind', { sn: 'FLOW0001', verif_code, owner: { type: 'org', id: orgId } });
    expect(bound.statusCode).toBe(201);
    const bind = events('bind').at(-1)!;
    expect(bind.base_info).toMatchObject({ device_sn: 'FLOW0001', model_id: modelId });
    const authCode = (bind.event as Json).auth_code as string;
    expect(authCode.length).toBeGreaterThanOrEqual(64);

    const secret = await cgi('get_device_secret', { model_access_token: modelToken }, { auth_code: authCode });
    expect(secret).toMatchObject({ errcode: 0, expires_in: 7200 });
    const token = secret.device_access_token as string;
    expect((await cgi('device/report_device_status', { device_access_token: token }, { online_status: 1 })).errcode).toBe(0);

    const qr = await cgi('device/gen_login_qrcode', { device_access_token: token }, { state: 'open-menu', type: 1 });
    expect(qr).toMatchObject({ errcode: 0, expires_in: 300 });
    const scanned = await boss.req('POST', '/api/v1/scan/login', { content: qr.qrcode_content });
    expect(scanned.statusCode).toBe(200);

    await h.services.callbacks.outbox.runOnce();
    const scan = commands('user_scan').at(-1);
    expect(scan?.base_info).toMatchObject({ device_sn: 'FLOW0001', model_id: modelId });
    expect(scan?.command).toMatchObject({ state: 'open-menu', oper_id: scanned.json().oper_id, user_type: 1 });
    expect(vs.received.every((r) => r.signatureOk && r.receiveId === modelId)).toBe(true);
  });
});
