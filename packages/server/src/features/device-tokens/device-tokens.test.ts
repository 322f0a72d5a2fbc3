import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServices } from '../../services.js';
import type { DomainEvent } from '../../shared/domain-events.js';
import { sha256Hex } from '../../shared/ids.js';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { type Harness, startHarness } from '../../testing/harness.js';
import { vendorWithModels } from '../people/people.fixture.js';

// biome-ignore lint/suspicious/noExplicitAny: answers are JSON, checked by the assertions
type Json = Record<string, any>;

/** §B1: bind auth codes → device secrets and tokens, their lifetimes and their end with the binding; model_ticket renewal. */
describe.each(storageBackends())('device tokens and model tickets on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let models: Record<string, string>;
  const secrets: Record<string, string> = {};
  const orgId = 'org_devtok';

  const cgi = async (path: string, q: Record<string, string>, body: object): Promise<Json> => {
    const r = await h.app.inject({ method: 'POST', url: `/cgi-bin/openhw/${path}?${new URLSearchParams(q)}`, payload: body });
    expect(r.statusCode).toBe(200);
    return r.json();
  };
  async function modelToken(pk: string, ticket?: string): Promise<Json> {
    const model_ticket = ticket ?? (await h.services.models.currentTicket(SYSTEM_CLI, models[pk]!)).model_ticket;
    return cgi('get_model_token', {}, { model_id: models[pk], model_secret: secrets[pk], model_ticket });
  }
  const secretFor = async (pk: string, code: string) =>
    cgi('get_device_secret', { model_access_token: (await modelToken(pk)).model_access_token }, { auth_code: code });
  const report = (token: string) => cgi('device/report_device_status', { device_access_token: token }, { online_status: 1 });
  const register = (pk: string, sn: string) => h.services.devices.register(SYSTEM_CLI, models[pk]!, sn);
  const bind = (sn: string) => h.services.binding.bind(SYSTEM_CLI, sn, { type: 'org', id: orgId });

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    ({ models } = await vendorWithModels(h, [
      { name: 'Lock', productKey: 'pkT' },
      { name: 'Other', productKey: 'pkU' },
    ]));
    for (const pk of ['pkT', 'pkU']) secrets[pk] = (await h.services.models.rotateSecret(SYSTEM_CLI, models[pk]!)).model_secret;
    await h.deps.db.kysely
      .insertInto('organisations')
      .values({ id: orgId, name: 'Tokens Org', parent_id: null, mchid: null, merchant_shortname: null, created_at: 0 })
      .execute();
  });
  afterAll(async () => {
    await h?.close();
  });

  it.skipIf(skip)('get_device_secret: single use, for its own model, within 10 minutes, for a bound device', async () => {
    await register('pkT', 'TOK0001');
    await bind('TOK0001');
    const code = await h.services.deviceTokens.issueAuthCode({ sn: 'TOK0001', modelId: models.pkT! });
    expect(Buffer.from(code, 'base64url').length).toBeGreaterThanOrEqual(64);
    // Stored hashed only.
    const rows = await h.deps.db.kysely.selectFrom('device_auth_codes').selectAll().execute();
    expect(rows.map((r) => r.code_hash)).toContain(sha256Hex(code));
    expect(JSON.stringify(rows)).not.toContain(code);

    // Another model's token neither works nor spends the code.
    expect((await secretFor('pkU', code)).errcode).toBe(40450);
    const first = await secretFor('pkT', code);
    expect(first).toMatchObject({ errcode: 0, errmsg: 'ok', expires_in: 7200 });
    expect(first.device_secret).toEqual(expect.any(String));
    expect(first.device_access_token).toEqual(expect.any(String));
    expect((await report(first.device_access_token)).errcode).toBe(0);
    expect((await secretFor('pkT', code)).errcode).toBe(40450);
    const stored = await h.deps.db.kysely.selectFrom('device_secrets').selectAll().execute();
    expect(stored.map((s) => s.secret_hash)).toEqual([sha256Hex(first.device_secret)]);

    // Expired after 10 minutes.
    const late = await h.services.deviceTokens.issueAuthCode({ sn: 'TOK0001', modelId: models.pkT! });
    h.clock.advance(10 * 60_000 + 1000);
    expect((await secretFor('pkT', late)).errcode).toBe(40450);

    // Revoked (a bind that failed after its callback).
    const revoked = await h.services.deviceTokens.issueAuthCode({ sn: 'TOK0001', modelId: models.pkT! });
    await h.services.deviceTokens.revokeAuthCode(revoked);
    expect((await secretFor('pkT', revoked)).errcode).toBe(40450);

    // Issued before the bind committed: refused while unbound, and not spent by the refusal.
    await register('pkT', 'TOK0002');
    const early = await h.services.deviceTokens.issueAuthCode({ sn: 'TOK0002', modelId: models.pkT! });
    expect((await secretFor('pkT', early)).errcode).toBe(40407);
    await bind('TOK0002');
    expect((await secretFor('pkT', early)).errcode).toBe(0);

    for (const bad of [{}, { auth_code: 5 }, { auth_code: 'x'.repeat(513) }]) {
      const tok = (await modelToken('pkT')).model_access_token;
      expect((await cgi('get_device_secret', { model_access_token: tok }, bad)).errcode).toBe(40058);
    }
    expect((await cgi('get_device_secret', { model_access_token: 'nope' }, { auth_code: code })).errcode).toBe(40014);
  });

  it.skipIf(skip)('two concurrent exchanges of one code: exactly one gets a secret', async () => {
    await register('pkT', 'TOK0003');
    await bind('TOK0003');
    const tok = (await modelToken('pkT')).model_access_token;
    for (let round = 0; round < 3; round++) {
      const code = await h.services.deviceTokens.issueAuthCode({ sn: 'TOK0003', modelId: models.pkT! });
      const results = await Promise.all(
        Array.from({ length: 4 }, () => cgi('get_device_secret', { model_access_token: tok }, { auth_code: code })),
      );
      expect(results.filter((r) => r.errcode === 0)).toHaveLength(1);
      expect(results.filter((r) => r.errcode !== 0).map((r) => r.errcode)).toEqual([40450, 40450, 40450]);
    }
  });

  it.skipIf(skip)('get_device_token: SN + secret → a fresh token; tokens expire; the secret dies with the binding', async () => {
    await register('pkT', 'TOK0004');
    await bind('TOK0004');
    const code = await h.services.deviceTokens.issueAuthCode({ sn: 'TOK0004', modelId: models.pkT! });
    const { device_secret, device_access_token } = await secretFor('pkT', code);
    const tokT = (await modelToken('pkT')).model_access_token;
    const fresh = await cgi('get_device_token', { model_access_token: tokT }, { device_sn: 'tok0004', device_secret });
    expect(fresh).toMatchObject({ errcode: 0, expires_in: 7200 });
    expect(fresh.device_access_token).not.toBe(device_access_token);
    expect((await report(fresh.device_access_token)).errcode).toBe(0);
    expect((await report(device_access_token)).errcode).toBe(0);

    const tokU = (await modelToken('pkU')).model_access_token;
    expect((await cgi('get_device_token', { model_access_token: tokU }, { device_sn: 'TOK0004', device_secret })).errcode).toBe(
      40451,
    );
    expect(
      (await cgi('get_device_token', { model_access_token: tokT }, { device_sn: 'TOK0004', device_secret: `${device_secret}x` }))
        .errcode,
    ).toBe(40451);
    expect((await cgi('get_device_token', { model_access_token: tokT }, { device_sn: 'TOK0004' })).errcode).toBe(40058);

    // 7 200 s later the token has expired; a new one from the secret works.
    h.clock.advance(7200_000);
    expect((await report(fresh.device_access_token)).errcode).toBe(42001);
    const tokT2 = (await modelToken('pkT')).model_access_token;
    const renewed = await cgi('get_device_token', { model_access_token: tokT2 }, { device_sn: 'TOK0004', device_secret });
    expect((await report(renewed.device_access_token)).errcode).toBe(0);

    // Unbind: the token and the secret are refused at once, and bound again they stay dead.
    await h.services.binding.unbind(SYSTEM_CLI, 'TOK0004');
    expect((await report(renewed.device_access_token)).errcode).toBe(40014);
    expect((await cgi('get_device_token', { model_access_token: tokT2 }, { device_sn: 'TOK0004', device_secret })).errcode).toBe(
      40451,
    );
    expect(await h.deps.db.kysely.selectFrom('device_secrets').selectAll().execute()).not.toContainEqual(
      expect.objectContaining({ secret_hash: sha256Hex(device_secret) }),
    );
    await bind('TOK0004');
    expect((await cgi('get_device_token', { model_access_token: tokT2 }, { device_sn: 'TOK0004', device_secret })).errcode).toBe(
      40451,
    );
    expect((await report(renewed.device_access_token)).errcode).toBe(40014);
  });

  it.skipIf(skip)('a secret of an earlier binding is refused even if the unbind listener never ran (transfer)', async () => {
    await register('pkT', 'TOK0005');
    await bind('TOK0005');
    const { device_secret, device_access_token } = await secretFor(
      'pkT',
      await h.services.deviceTokens.issueAuthCode({ sn: 'TOK0005', modelId: models.pkT! }),
    );
    // A new binding written straight to the row, as a transfer does in one step.
    h.clock.advance(1000);
    await h.deps.db.kysely.updateTable('devices').set({ bound_at: h.clock.now() }).where('sn', '=', 'TOK0005').execute();
    expect((await report(device_access_token)).errcode).toBe(40014);
    const tok = (await modelToken('pkT')).model_access_token;
    expect((await cgi('get_device_token', { model_access_token: tok }, { device_sn: 'TOK0005', device_secret })).errcode).toBe(
      40451,
    );
  });

  it.skipIf(skip)(
    'model_ticket: renewed once per 10 minutes (valid 30), on however many processes; old tickets work until expiry',
    async () => {
      const renewedEvents: DomainEvent[] = [];
      h.services.events.on('model.ticket_renewed', (e) => {
        renewedEvents.push(e);
      });
      // Start of a period, so the steps below stay inside the periods they name.
      h.clock.set(Math.ceil(h.clock.now() / 600_000) * 600_000 + 1000);
      const ofT = () => renewedEvents.filter((e) => e.type === 'model.ticket_renewed' && e.modelId === models.pkT);
      expect(await h.services.ticketRenewal.runOnce()).toBeGreaterThanOrEqual(2);
      // A second process in the same period renews nothing.
      // Its own services and event bus over the same database.
      const other = buildServices(h.deps);
      other.events.on('model.ticket_renewed', (e) => {
        renewedEvents.push(e);
      });
      expect(await other.ticketRenewal.runOnce()).toBe(0);
      expect(await h.services.ticketRenewal.runOnce()).toBe(0);
      expect(ofT()).toHaveLength(1);
      const t1 = ofT()[0]! as Extract<DomainEvent, { type: 'model.ticket_renewed' }>;
      expect(t1.expiresAt - t1.at).toBe(30 * 60_000);
      // The current ticket (API/CLI) is the newest.
      expect((await h.services.models.currentTicket(SYSTEM_CLI, models.pkT!)).model_ticket).toBe(t1.ticket);
      expect((await modelToken('pkT', t1.ticket)).model_access_token).toEqual(expect.any(String));

      const tickets = [t1.ticket];
      for (let i = 2; i <= 4; i++) {
        h.clock.advance(10 * 60_000);
        await Promise.all([h.services.ticketRenewal.runOnce(), other.ticketRenewal.runOnce()]);
        expect(ofT()).toHaveLength(i);
        const newest = (ofT().at(-1) as Extract<DomainEvent, { type: 'model.ticket_renewed' }>).ticket;
        tickets.push(newest);
        expect((await h.services.models.currentTicket(SYSTEM_CLI, models.pkT!)).model_ticket).toBe(newest);
        expect((await modelToken('pkT', newest)).model_access_token).toEqual(expect.any(String));
      }
      // Now 30 min + 1 s after t1 was issued: t1 has expired, t2 (20 min old) and t3 still work.
      expect((await modelToken('pkT', tickets[0])).errcode).toBe(40082);
      expect((await modelToken('pkT', tickets[1])).model_access_token).toEqual(expect.any(String));
      expect((await modelToken('pkT', tickets[2])).model_access_token).toEqual(expect.any(String));
      h.clock.advance(10 * 60_000);
      expect((await modelToken('pkT', tickets[1])).errcode).toBe(40082);
      expect(new Set(tickets).size).toBe(4);
    },
  );
});
