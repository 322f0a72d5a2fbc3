import { checkChar, dynamicBindUrl, quectelPayload, signBindQr } from '@bindery/protocol';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlexibleRateLimiter } from '../../adapters/ratelimit/flexible-limiter.js';
import type { DomainEvent } from '../../shared/domain-events.js';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { redisUrl, skipReasonRedis, sqliteBackend, storageBackends } from '../../testing/backends.js';
import { bearer, type Harness, startHarness } from '../../testing/harness.js';
import { acmeOrg, type Browser, login, type OrgFixture, PASSWORD, vendorWithModels } from '../people/people.fixture.js';
import { verifCodeFor } from './scan.js';

describe.each(storageBackends())('binding methods on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let org: OrgFixture;
  let models: Record<string, string>;
  const secretNo = new Map<string, string>();
  const hwCode = new Map<string, string>();
  const events: DomainEvent[] = [];
  let boss: Browser;
  let alice: Browser;
  let bob: Browser;

  const register = async (pk: string, sn: string) => {
    const r = await h.services.devices.register(SYSTEM_CLI, models[pk]!, sn);
    secretNo.set(sn, r.secret_no);
    hwCode.set(sn, r.device.hw_code);
  };
  const row = (sn: string) =>
    h.deps.db.kysely.selectFrom('devices').selectAll().where('sn_key', '=', sn.toLowerCase()).executeTakeFirstOrThrow();
  const nowSec = () => Math.floor(h.clock.now() / 1000);
  /** The label's verification code: typed SNs need it by default (issue 11). */
  const vc = (sn: string) => verifCodeFor(secretNo.get(sn)!, sn);
  const label = (sn: string) => `https://bindery.test/connect/hardware?hw_code=${hwCode.get(sn)}`;
  const dynamicQr = (sn: string, ts: number, nonce: string, secret = secretNo.get(sn)!) =>
    dynamicBindUrl('https://bindery.test', {
      sn,
      timestamp: String(ts),
      nonce,
      signature: signBindQr({ sn, timestamp: String(ts), nonce }, secret),
    });
  const auditOf = (sn: string) =>
    h.deps.db.kysely
      .selectFrom('audit_log')
      .select(['action', 'data'])
      .where('subject', '=', `device:${sn}`)
      .orderBy('id')
      .execute();

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    ({ models } = await vendorWithModels(h, [
      { name: 'Door 1', productKey: 'pkA' },
      { name: 'Cell 2', productKey: 'pkQ' },
      { name: 'Check 3', productKey: 'pkC', checkChar: true },
      { name: 'Lamp 4', productKey: 'pkS', mode: 'shared' },
      { name: 'Lock 5', productKey: 'pkR', mode: 'rotating' },
    ]));
    for (const sn of ['A0001', 'A0002', 'A0003', 'A0004', 'A0005', 'A0006', 'A0007']) await register('pkA', sn);
    await register('pkQ', 'Q0001');
    await register('pkQ', 'Q0002');
    await register('pkC', `CC0001${checkChar('CC0001')}`);
    await register('pkS', 'S0001');
    await register('pkR', 'R0001');
    org = await acmeOrg(h, 'bm');
    boss = await login(h.app, 'boss.bm', PASSWORD, '10.1.0.1');
    alice = await login(h.app, 'alice.bm', PASSWORD, '10.1.0.2');
    bob = await login(h.app, 'bob.bm', PASSWORD, '10.1.0.3');
    for (const t of ['device.bound', 'device.unbound', 'device.shared', 'device.unshared'] as const) {
      h.services.events.on(t, (e) => {
        events.push(e);
      });
    }
  });
  afterAll(async () => {
    await h?.close();
  });

  const toOrg = () => ({ type: 'org', id: org.orgId });
  const toMe = (b: Browser) => ({ type: 'user', id: b.userId });

  it.skipIf(skip)(
    'typed SN: binds into the organisation, visible to the whole org by default, audited, event with the method',
    async () => {
      const r = await boss.req('POST', '/api/v1/bind', {
        sn: 'a0001',
        verif_code: vc('A0001'),
        owner: toOrg(),
        remark_name: 'Front door',
      });
      expect(r.statusCode).toBe(201);
      expect(r.json()).toMatchObject({
        result: 'bound',
        method: 'sn',
        device: { sn: 'A0001', remark_name: 'Front door', model_name: 'Door 1' },
      });
      expect(r.json().device.my_actions).toEqual(['view', 'rename', 'firmware_upgrade', 'unbind', 'reboot', 'fetch_log']);
      const d = await row('A0001');
      expect(d).toMatchObject({ owner_type: 'org', owner_id: org.orgId, bound_by: `user:${boss.userId}` });
      expect(h.deps.secrets.open(d.secret_enc!)).toMatch(/^[0-9a-f]{32}$/);
      const vis = await h.deps.db.kysely.selectFrom('device_visibility').selectAll().where('device_id', '=', d.id).execute();
      expect(vis).toEqual([expect.objectContaining({ department_id: org.dept.root, user_id: null })]);
      expect((await auditOf('A0001')).map((a) => a.action)).toEqual(['device.register', 'device.bind']);
      expect(events.at(-1)).toMatchObject({
        type: 'device.bound',
        sn: 'A0001',
        method: 'sn',
        byUserId: boss.userId,
        remarkName: 'Front door',
      });

      const again = await boss.req('POST', '/api/v1/bind', { sn: 'A0001', verif_code: vc('A0001'), owner: toOrg() });
      expect(again.statusCode).toBe(409);
      expect(again.json().error.code).toBe('DEVICE_BOUND');
      const typo = await boss.req('POST', '/api/v1/bind', { sn: 'A0O01', owner: toOrg() });
      expect(typo.statusCode).toBe(404);
      expect(typo.json().error.message).toMatch(/check it for typos/);
      const bad = await boss.req('POST', '/api/v1/bind', { sn: 'A-0001', owner: toOrg() });
      expect(bad.json().error.code).toBe('INVALID_SN');
    },
  );

  it.skipIf(skip)('typed SN with the product key: the check character catches a typo before any lookup', async () => {
    const good = `CC0001${checkChar('CC0001')}`;
    const typo = `CC0011${checkChar('CC0001')}`;
    const r = await alice.req('POST', '/api/v1/bind', { sn: typo, product_key: 'pkC', owner: toMe(alice) });
    expect(r.statusCode).toBe(400);
    expect(r.json().error.code).toBe('SN_CHECK_FAILED');
    const wrongModel = await alice.req('POST', '/api/v1/bind', { sn: 'A0002', product_key: 'pkC', owner: toMe(alice) });
    expect(wrongModel.json().error.code).toBe('SN_CHECK_FAILED');
    const ok = await alice.req('POST', '/api/v1/bind', {
      sn: good,
      product_key: 'pkC',
      verif_code: vc(good),
      owner: toMe(alice),
    });
    expect(ok.statusCode).toBe(201);
    expect((await row(good)).owner_id).toBe(alice.userId);
  });

  it.skipIf(skip)('a typed SN needs the verification code by default; the right one binds and reaches the event', async () => {
    const settings = await h.app.inject({
      method: 'GET',
      url: `/api/v1/models/${models.pkA}/bind-settings`,
      headers: bearer(h.operatorToken),
    });
    expect(settings.json()).toMatchObject({ typed_sn_mode: 'verif_code', require_verif_code: true });
    const none = await bob.req('POST', '/api/v1/bind', { sn: 'A0002', owner: toMe(bob) });
    expect(none.json().error.code).toBe('VERIF_CODE_REQUIRED');
    const code = (
      await h.app.inject({ method: 'GET', url: '/api/v1/devices/A0002/verif-code', headers: bearer(h.operatorToken) })
    ).json().verif_code as string;
    expect(code).toMatch(/^\d{6}$/);
    expect(code).toBe(vc('A0002'));
    const wrong = await bob.req('POST', '/api/v1/bind', {
      sn: 'A0002',
      verif_code: code === '000000' ? '000001' : '000000',
      owner: toMe(bob),
    });
    expect(wrong.json().error.code).toBe('VERIF_CODE_WRONG');
    expect((await row('A0002')).owner_id).toBeNull();
    const ok = await bob.req('POST', '/api/v1/bind', { sn: 'A0002', verif_code: code, owner: toMe(bob) });
    expect(ok.statusCode).toBe(201);
    expect(events.at(-1)).toMatchObject({ type: 'device.bound', sn: 'A0002', verifCode: code });
    // Scanning the label proves presence; no code is asked for.
    const scan = await bob.req('POST', '/api/v1/bind', { content: label('A0003'), owner: toMe(bob) });
    expect(scan.statusCode).toBe(201);
    // Turning the code off must be said in so many words.
    const off = await h.app.inject({
      method: 'PUT',
      url: `/api/v1/models/${models.pkA}/bind-settings`,
      headers: bearer(h.operatorToken),
      payload: { require_verif_code: false },
    });
    expect(off.json().error.code).toBe('VALIDATION_FAILED');
  });

  it.skipIf(skip)('a Quectel label proves no more than a typed SN: the verification code is asked for there too', async () => {
    const content = quectelPayload('pkQ', 'Q0002');
    const resolved = await bob.req('POST', '/api/v1/scan/resolve', { content });
    expect(resolved.json().device).toMatchObject({ sn: 'Q0002', requires_verif_code: true });
    expect((await bob.req('POST', '/api/v1/bind', { content, owner: toMe(bob) })).json().error.code).toBe('VERIF_CODE_REQUIRED');
    const code = await h.services.binding.verifCode(SYSTEM_CLI, 'Q0002');
    const ok = await bob.req('POST', '/api/v1/bind', { content, verif_code: code, owner: toMe(bob) });
    expect(ok.json()).toMatchObject({ result: 'bound', method: 'quectel' });
  });

  it.skipIf(skip)('static label and Quectel label: scanned content binds; unknown codes are refused', async () => {
    const label = await alice.req('POST', '/api/v1/bind', {
      content: `https://other.host/connect/hardware?hw_code=${hwCode.get('A0004')}`,
      owner: toMe(alice),
    });
    expect(label.statusCode).toBe(201);
    expect(label.json()).toMatchObject({ method: 'static_qr', device: { sn: 'A0004' } });
    const unknown = await alice.req('POST', '/api/v1/bind', {
      content: 'https://bindery.test/connect/hardware?hw_code=nope',
      owner: toMe(alice),
    });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error.code).toBe('QR_UNKNOWN');
    const q = await alice.req('POST', '/api/v1/bind', {
      content: quectelPayload('pkQ', 'Q0001'),
      verif_code: vc('Q0001'),
      owner: toMe(alice),
    });
    expect(q.json()).toMatchObject({ result: 'bound', method: 'quectel' });
    const qWrongPk = await alice.req('POST', '/api/v1/bind', { content: quectelPayload('pkA', 'Q0001'), owner: toMe(alice) });
    expect(qWrongPk.json().error.code).toBe('QR_UNKNOWN');
    const login = await alice.req('POST', '/api/v1/bind', {
      content: 'https://bindery.test/connect/hardware?type=static_login&login_code=x&state=s',
      owner: toMe(alice),
    });
    expect(login.json().error.code).toBe('QR_UNKNOWN');
    const junk = await alice.req('POST', '/api/v1/bind', { content: 'hello', owner: toMe(alice) });
    expect(junk.statusCode).toBe(400);
    expect(junk.json().error.message).toMatch(/not a device code/);
  });

  it.skipIf(skip)(
    'dynamic QR: signed and fresh binds; forged, 1 801 s old and replayed-after-unbind codes are refused',
    async () => {
      const ts = nowSec();
      const forged = dynamicQr('A0005', ts, '42', '0'.repeat(32));
      const f = await boss.req('POST', '/api/v1/bind', { content: forged, owner: toOrg() });
      expect(f.statusCode).toBe(400);
      expect(f.json().error.code).toBe('QR_FORGED');
      const old = await boss.req('POST', '/api/v1/bind', { content: dynamicQr('A0005', ts - 1801, '42'), owner: toOrg() });
      expect(old.statusCode).toBe(400);
      expect(old.json().error.code).toBe('QR_EXPIRED');
      expect((await row('A0005')).owner_id).toBeNull();

      const code = dynamicQr('A0005', ts - 1800, '18446744073709551615');
      const ok = await boss.req('POST', '/api/v1/bind', { content: code, owner: toOrg() });
      expect(ok.statusCode).toBe(201);
      expect(ok.json().method).toBe('dynamic_qr');
      const whileBound = await boss.req('POST', '/api/v1/bind', { content: code, owner: toOrg() });
      expect(whileBound.json().error.code).toBe('QR_USED');
      const unbind = await boss.req('DELETE', '/api/v1/devices/A0005/bind');
      expect(unbind.statusCode).toBe(204);
      const replay = await boss.req('POST', '/api/v1/bind', { content: code, owner: toOrg() });
      expect(replay.statusCode).toBe(409);
      expect(replay.json().error.code).toBe('QR_USED');
      expect((await row('A0005')).owner_id).toBeNull();
      // The device shows a fresh code: that one binds.
      const fresh = await boss.req('POST', '/api/v1/bind', { content: dynamicQr('A0005', ts + 5, '7'), owner: toOrg() });
      expect(fresh.statusCode).toBe(201);
    },
  );

  it.skipIf(skip)('personal spaces follow the model: owner-only refuses, shared adds users, rotating takes over', async () => {
    const only = await bob.req('POST', '/api/v1/bind', {
      content: `https://bindery.test/connect/hardware?hw_code=${hwCode.get('A0004')}`,
      owner: toMe(bob),
    });
    expect(only.statusCode).toBe(409);
    expect(only.json().error.code).toBe('OWNER_ONLY');

    expect(
      (await alice.req('POST', '/api/v1/bind', { sn: 'S0001', verif_code: vc('S0001'), owner: toMe(alice) })).statusCode,
    ).toBe(201);
    // Joining or taking over someone's device needs its label (issue 11; test/security/binding.test.ts).
    const share = await bob.req('POST', '/api/v1/bind', { content: label('S0001'), owner: toMe(bob) });
    expect(share.json()).toMatchObject({ result: 'shared', device: { sn: 'S0001', my_actions: ['view', 'unbind'] } });
    expect((await row('S0001')).owner_id).toBe(alice.userId);
    expect(events.at(-1)).toMatchObject({ type: 'device.shared', ownerId: alice.userId, userId: bob.userId });
    const bobs = (await bob.req('GET', '/api/v1/me/devices?q=S0001')).json().devices;
    expect(bobs).toEqual([
      expect.objectContaining({
        sn: 'S0001',
        owner: { type: 'user', id: alice.userId, name: 'alice' },
        my_actions: ['view', 'unbind'],
      }),
    ]);
    const alices = (await alice.req('GET', '/api/v1/me/devices?q=S0001')).json().devices;
    expect(alices[0].my_actions).toEqual(['view', 'rename', 'firmware_upgrade', 'unbind', 'reboot', 'fetch_log']);
    const twice = await bob.req('POST', '/api/v1/bind', { content: label('S0001'), owner: toMe(bob) });
    expect(twice.json().error.code).toBe('DEVICE_BOUND');
    const leave = await bob.req('DELETE', '/api/v1/devices/S0001/bind');
    expect(leave.statusCode).toBe(204);
    expect((await row('S0001')).owner_id).toBe(alice.userId);
    expect(events.at(-1)).toMatchObject({ type: 'device.unshared', userId: bob.userId });

    expect(
      (await alice.req('POST', '/api/v1/bind', { sn: 'R0001', verif_code: vc('R0001'), owner: toMe(alice) })).statusCode,
    ).toBe(201);
    const aliceSecret = (await row('R0001')).secret_enc!;
    const n = events.length;
    const take = await bob.req('POST', '/api/v1/bind', { content: label('R0001'), owner: toMe(bob) });
    expect(take.json()).toMatchObject({ result: 'transferred', method: 'rotating' });
    const d = await row('R0001');
    expect(d.owner_id).toBe(bob.userId);
    expect(h.deps.secrets.open(d.secret_enc!)).not.toBe(h.deps.secrets.open(aliceSecret));
    expect(events.slice(n).map((e) => [e.type, 'ownerId' in e ? e.ownerId : null])).toEqual([
      ['device.unbound', alice.userId],
      ['device.bound', bob.userId],
    ]);
    expect((await auditOf('R0001')).map((a) => a.action)).toEqual(['device.register', 'device.bind', 'device.transfer']);
  });

  it.skipIf(skip)('a transfer is an unbind plus a bind, recorded as one', async () => {
    expect((await boss.req('POST', '/api/v1/bind', { sn: 'A0006', verif_code: vc('A0006'), owner: toOrg() })).statusCode).toBe(
      201,
    );
    const n = events.length;
    const t = await boss.req('POST', '/api/v1/devices/A0006/transfer', { owner: toMe(boss) });
    expect(t.statusCode).toBe(200);
    expect(t.json()).toMatchObject({ result: 'transferred', owner: toMe(boss) });
    expect((await row('A0006')).owner_id).toBe(boss.userId);
    const audits = (await auditOf('A0006')).map((a) => a.action);
    expect(audits).toEqual(['device.register', 'device.bind', 'device.transfer']);
    expect(events.slice(n).map((e) => [e.type, 'transfer' in e ? e.transfer : undefined])).toEqual([
      ['device.unbound', true],
      ['device.bound', true],
    ]);
    const vis = await h.deps.db.kysely
      .selectFrom('device_visibility')
      .select('id')
      .where('device_id', '=', (await row('A0006')).id)
      .execute();
    expect(vis).toHaveLength(0);
    // A member may not move a device they cannot unbind.
    const steal = await alice.req('POST', '/api/v1/devices/A0006/transfer', { owner: toMe(alice) });
    expect(steal.statusCode).toBe(404);
  });

  it.skipIf(skip)('concurrent binds of one device by two people: exactly one wins', async () => {
    const rs = await Promise.all([
      alice.req('POST', '/api/v1/bind', { sn: 'A0007', verif_code: vc('A0007'), owner: toMe(alice) }),
      bob.req('POST', '/api/v1/bind', { sn: 'A0007', verif_code: vc('A0007'), owner: toMe(bob) }),
      boss.req('POST', '/api/v1/bind', { sn: 'A0007', verif_code: vc('A0007'), owner: toOrg() }),
    ]);
    expect(rs.map((r) => r.statusCode).sort()).toEqual([201, 409, 409]);
  });

  it.skipIf(skip)(
    'ten wrong SNs lock the account out, even for a right SN; an address only after a hundred of its own failures',
    async () => {
      await register('pkA', 'LOCK0001');
      await h.services.accounts.createUser(SYSTEM_CLI, { username: 'guess1.bm', password: PASSWORD });
      const g = await login(h.app, 'guess1.bm', PASSWORD, '10.9.0.1');
      for (let i = 0; i < 9; i++) {
        const r = await g.req('POST', '/api/v1/bind', { sn: `WRONG${i}`, owner: toMe(g) });
        expect(r.json().error.code).toBe('DEVICE_NOT_FOUND');
      }
      const tenth = await g.req('POST', '/api/v1/bind', { sn: 'WRONG9', owner: toMe(g) });
      expect(tenth.statusCode).toBe(429);
      expect(tenth.json().error.code).toBe('LOCKED_OUT');
      expect(tenth.json().error.message).toMatch(/Too many wrong SNs or codes.*Try again in about 15 minutes/);
      const right = await g.req('POST', '/api/v1/bind', { sn: 'LOCK0001', verif_code: vc('LOCK0001'), owner: toMe(g) });
      expect(right.statusCode).toBe(429);
      const scan = await g.req('POST', '/api/v1/scan/resolve', { content: label('LOCK0001') });
      expect(scan.statusCode).toBe(429);
      expect((await row('LOCK0001')).owner_id).toBeNull();

      // Per address: a hundred guesses from one address (ten accounts, each locked at its tenth) lock it.
      const at = await guessers(h, 'addr', 11, '10.9.0.2');
      for (const [k, a] of at.slice(0, 10).entries()) {
        for (let i = 0; i < 10; i++) {
          await a.req('POST', '/api/v1/bind', {
            content: `https://bindery.test/connect/hardware?hw_code=guess${k}x${i}`,
            owner: toMe(a),
          });
        }
      }
      const fresh = at[10]!;
      const last = await fresh.req('POST', '/api/v1/bind', { sn: 'LOCK0001', verif_code: vc('LOCK0001'), owner: toMe(fresh) });
      expect(last.json().error.code).toBe('LOCKED_OUT');
      // Someone else, elsewhere, binds normally.
      const ok = await alice.req('POST', '/api/v1/bind', { sn: 'LOCK0001', verif_code: vc('LOCK0001'), owner: toMe(alice) });
      expect(ok.statusCode).toBe(201);
    },
  );
});

/** `n` fresh accounts signed in from `ip`. */
async function guessers(h: Harness, tag: string, n: number, ip: string): Promise<Browser[]> {
  const out: Browser[] = [];
  for (let i = 0; i < n; i++) {
    await h.services.accounts.createUser(SYSTEM_CLI, { username: `${tag}${i}.g`, password: PASSWORD });
    out.push(await login(h.app, `${tag}${i}.g`, PASSWORD, ip));
  }
  return out;
}

describe.skipIf(!!skipReasonRedis())('bind lockout across processes (Redis limiter)', () => {
  it('failures counted on one process lock the address out on another', async () => {
    const prefix = `bindery_t_lock_${Date.now().toString(36)}`;
    const mk = () => startHarness(sqliteBackend, { limiter: FlexibleRateLimiter.redis(new Redis(redisUrl!), prefix, true) });
    const [p1, p2] = [await mk(), await mk()];
    try {
      // Ten accounts on one process, ten failures each (the tenth locks the account): the address's hundredth.
      const guessing = await guessers(p1, 'p', 10, '192.0.2.7');
      for (const u of guessing) {
        for (let i = 0; i < 9; i++) {
          const r = await u.req('POST', '/api/v1/bind', { sn: `X${i}`, owner: { type: 'user', id: u.userId } });
          expect(r.json().error.code).toBe('DEVICE_NOT_FOUND');
        }
        const tenth = await u.req('POST', '/api/v1/bind', { sn: 'X9', owner: { type: 'user', id: u.userId } });
        expect(tenth.json().error.code).toBe('LOCKED_OUT');
      }
      const [other] = await guessers(p2, 'q', 1, '192.0.2.7');
      const r = await other!.req('POST', '/api/v1/bind', { sn: 'X19', owner: { type: 'user', id: other!.userId } });
      expect(r.statusCode).toBe(429);
      expect(r.json().error.code).toBe('LOCKED_OUT');
    } finally {
      await p1.close();
      await p2.close();
      const r = new Redis(redisUrl!);
      const keys = await r.keys(`${prefix}:*`);
      if (keys.length) await r.del(...keys);
      await r.quit();
    }
  });
});
