import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { bearer, type Harness, startHarness } from '../../testing/harness.js';
import { acmeOrg, asUser, login, type OrgFixture, PASSWORD } from './people.fixture.js';
import { SESSION_IDLE_MS } from './people.service.js';

describe.each(storageBackends())('people on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let org: OrgFixture;

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    org = await acmeOrg(h, 'ppl');
  });
  afterAll(async () => {
    await h?.close();
  });

  it.skipIf(skip)(
    'logs in with an HttpOnly SameSite cookie and a readable CSRF cookie; wrong passwords say nothing more',
    async () => {
      const r = await h.app.inject({
        method: 'POST',
        url: '/api/v1/session',
        payload: { username: 'alice.ppl', password: PASSWORD },
      });
      expect(r.statusCode).toBe(201);
      const cookies = ([] as string[]).concat(r.headers['set-cookie'] ?? []);
      const session = cookies.find((c) => c.startsWith('bindery_session='))!;
      const csrf = cookies.find((c) => c.startsWith('bindery_csrf='))!;
      expect(session).toMatch(/HttpOnly/);
      expect(session).toMatch(/SameSite=Lax/);
      expect(session).toMatch(/Secure/); // the harness's public URL is https
      expect(csrf).not.toMatch(/HttpOnly/);
      expect(r.json()).toMatchObject({ user: { username: 'alice.ppl' }, personal_space: { type: 'user' } });
      expect(r.json().organisations).toEqual([expect.objectContaining({ id: org.orgId, role: 'member' })]);
      // Only the SHA-256 of the cookie value is stored.
      const token = session.split(';')[0]!.split('=')[1]!;
      const rows = await h.deps.db.kysely.selectFrom('sessions').select('id').execute();
      expect(rows.map((x) => x.id)).not.toContain(token);

      const bad = await h.app.inject({
        method: 'POST',
        url: '/api/v1/session',
        payload: { username: 'alice.ppl', password: 'wrong one!!' },
      });
      expect(bad.statusCode).toBe(401);
      expect(bad.json().error.code).toBe('INVALID_CREDENTIALS');
      const nobody = await h.app.inject({
        method: 'POST',
        url: '/api/v1/session',
        payload: { username: 'nobody', password: 'wrong one!!' },
      });
      expect(nobody.json().error).toEqual(bad.json().error);
    },
  );

  it.skipIf(skip)('requires the CSRF token on state-changing cookie requests, not on reads or Bearer requests', async () => {
    const b = await login(h.app, 'bob.ppl', PASSWORD);
    const read = await h.app.inject({ method: 'GET', url: '/api/v1/session', headers: { cookie: b.cookie } });
    expect(read.statusCode).toBe(200);
    expect(read.json().csrf_token).toBe(b.csrf);

    const noHeader = await h.app.inject({ method: 'POST', url: '/api/v1/me/tokens', headers: { cookie: b.cookie }, payload: {} });
    expect(noHeader.statusCode).toBe(403);
    expect(noHeader.json().error.code).toBe('CSRF_FAILED');
    const wrong = await h.app.inject({
      method: 'POST',
      url: '/api/v1/me/tokens',
      headers: { cookie: b.cookie, 'x-csrf-token': `${b.csrf.slice(0, -1)}${b.csrf.endsWith('x') ? 'y' : 'x'}` },
      payload: {},
    });
    expect(wrong.statusCode).toBe(403);
    expect(await h.deps.db.kysely.selectFrom('api_tokens').select('id').where('user_id', '=', b.userId).execute()).toHaveLength(
      0,
    );

    const ok = await b.req('POST', '/api/v1/me/tokens', { name: 'script' });
    expect(ok.statusCode).toBe(201);
    const { token, id } = ok.json();
    // A personal token acts as the person, without cookies and without CSRF.
    const viaToken = await h.app.inject({
      method: 'POST',
      url: '/api/v1/me/tokens',
      headers: bearer(token),
      payload: { name: 'second' },
    });
    expect(viaToken.statusCode).toBe(201);
    const list = await h.app.inject({ method: 'GET', url: '/api/v1/me/tokens', headers: bearer(token) });
    expect(
      list
        .json()
        .tokens.map((t: { name: string }) => t.name)
        .sort(),
    ).toEqual(['script', 'second']);
    expect(JSON.stringify(list.json())).not.toContain(token);
    const revoke = await b.req('DELETE', `/api/v1/me/tokens/${id}`);
    expect(revoke.statusCode).toBe(204);
    const dead = await h.app.inject({ method: 'GET', url: '/api/v1/me', headers: bearer(token) });
    expect(dead.statusCode).toBe(401);
  });

  it.skipIf(skip)('ends sessions on logout, after a week unused, and on a password change elsewhere', async () => {
    const a = await login(h.app, 'carol.ppl', PASSWORD);
    const out = await a.req('DELETE', '/api/v1/session');
    expect(out.statusCode).toBe(204);
    expect(([] as string[]).concat(out.headers['set-cookie'] ?? []).join()).toMatch(/bindery_session=;.*Max-Age=0/);
    expect((await a.req('GET', '/api/v1/me')).statusCode).toBe(401);

    const b = await login(h.app, 'carol.ppl', PASSWORD);
    h.clock.advance(SESSION_IDLE_MS - 60_000);
    expect((await b.req('GET', '/api/v1/me')).statusCode).toBe(200); // use slides the expiry
    h.clock.advance(SESSION_IDLE_MS - 60_000);
    expect((await b.req('GET', '/api/v1/me')).statusCode).toBe(200);
    h.clock.advance(SESSION_IDLE_MS + 1);
    expect((await b.req('GET', '/api/v1/me')).statusCode).toBe(401);

    const c1 = await login(h.app, 'carol.ppl', PASSWORD);
    const c2 = await login(h.app, 'carol.ppl', PASSWORD);
    const bad = await c1.req('POST', '/api/v1/me/password', {
      current_password: 'not it at all',
      new_password: 'another long one',
    });
    expect(bad.statusCode).toBe(401);
    const ch = await c1.req('POST', '/api/v1/me/password', { current_password: PASSWORD, new_password: 'another long one' });
    expect(ch.statusCode).toBe(204);
    expect((await c1.req('GET', '/api/v1/me')).statusCode).toBe(200);
    expect((await c2.req('GET', '/api/v1/me')).statusCode).toBe(401);
    await login(h.app, 'carol.ppl', 'another long one');
  });

  it.skipIf(skip)('locks a username out after ten wrong passwords, even for the right one', async () => {
    await h.services.accounts.createUser(SYSTEM_CLI, { username: 'victim.ppl', password: PASSWORD });
    for (let i = 0; i < 9; i++) {
      const r = await h.app.inject({
        method: 'POST',
        url: '/api/v1/session',
        payload: { username: 'victim.ppl', password: `guess number ${i}` },
        remoteAddress: `10.0.0.${i + 1}`,
      });
      expect(r.json().error.code).toBe('INVALID_CREDENTIALS');
    }
    const tenth = await h.app.inject({
      method: 'POST',
      url: '/api/v1/session',
      payload: { username: 'victim.ppl', password: 'guess number 10' },
      remoteAddress: '10.0.0.99',
    });
    expect(tenth.statusCode).toBe(429);
    expect(tenth.json().error.code).toBe('LOCKED_OUT');
    expect(tenth.json().error.message).toMatch(/Too many wrong passwords.*Try again in about 15 minutes/);
    const right = await h.app.inject({
      method: 'POST',
      url: '/api/v1/session',
      payload: { username: 'victim.ppl', password: PASSWORD },
    });
    expect(right.statusCode).toBe(429);
  });

  it.skipIf(skip)('invites: an admin invites, the link works once, signing up starts a session', async () => {
    const boss = await login(h.app, 'boss.ppl', PASSWORD);
    const inv = await boss.req('POST', `/api/v1/orgs/${org.orgId}/invites`, { role: 'member', department_id: org.dept.eng });
    expect(inv.statusCode).toBe(201);
    const { token, url } = inv.json();
    expect(url).toBe(`https://bindery.test/invite#${token}`);

    const preview = await h.app.inject({ method: 'POST', url: '/api/v1/invites/preview', payload: { token } });
    expect(preview.json()).toMatchObject({
      organisation: { id: org.orgId },
      role: 'member',
      department: { name: 'Engineering' },
    });

    const weak = await h.app.inject({
      method: 'POST',
      url: '/api/v1/invites/accept',
      payload: { token, username: 'dave.ppl', password: 'short' },
    });
    expect(weak.statusCode).toBe(400);
    expect(await h.deps.db.kysely.selectFrom('users').select('id').where('username', '=', 'dave.ppl').execute()).toHaveLength(0);

    const acc = await h.app.inject({
      method: 'POST',
      url: '/api/v1/invites/accept',
      payload: { token, username: 'dave.ppl', password: PASSWORD },
    });
    expect(acc.statusCode).toBe(201);
    expect(acc.json()).toMatchObject({ org_id: org.orgId, role: 'member', created: true });
    const cookie = ([] as string[])
      .concat(acc.headers['set-cookie'] ?? [])
      .find((c) => c.startsWith('bindery_session='))!
      .split(';')[0]!;
    const me = await h.app.inject({ method: 'GET', url: '/api/v1/me', headers: { cookie } });
    expect(me.json().organisations).toEqual([expect.objectContaining({ id: org.orgId, role: 'member' })]);

    const again = await h.app.inject({
      method: 'POST',
      url: '/api/v1/invites/accept',
      payload: { token, username: 'eve.ppl', password: PASSWORD },
    });
    expect(again.statusCode).toBe(410);
    expect(again.json().error.code).toBe('INVITE_INVALID');
    expect(await h.deps.db.kysely.selectFrom('users').select('id').where('username', '=', 'eve.ppl').execute()).toHaveLength(0);

    // An existing user accepts while signed in; an expired link is refused.
    const inv2 = (await boss.req('POST', `/api/v1/orgs/${org.orgId}/invites`, { role: 'member' })).json();
    const inv3 = (await boss.req('POST', `/api/v1/orgs/${org.orgId}/invites`, { role: 'member' })).json();
    const out = await login(h.app, 'outsider.ppl', PASSWORD);
    const accepted = await out.req('POST', '/api/v1/invites/accept', { token: inv2.token });
    expect(accepted.statusCode).toBe(201);
    expect(accepted.json()).toMatchObject({ created: false, user: { id: org.users.outsider } });
    h.clock.advance(8 * 24 * 3600_000);
    const late = await h.app.inject({
      method: 'POST',
      url: '/api/v1/invites/accept',
      payload: { token: inv3.token, username: 'late.ppl', password: PASSWORD },
    });
    expect(late.json().error.code).toBe('INVITE_INVALID');
    await h.services.organisations.removeMember(asUser(org.users.boss), org.orgId, org.users.outsider);
  });

  it.skipIf(skip)('invitation links are limited per network address, organisation and vendor links together', async () => {
    const { token } = await h.services.people.createInvite(SYSTEM_CLI, org.orgId, { role: 'member', departmentId: org.dept.eng });
    const vendorId = (await h.services.vendors.create(SYSTEM_CLI, { name: 'Throttled' })).id;
    const vendorInvite = await h.services.vendorPeople.createInvite(SYSTEM_CLI, vendorId, { role: 'engineer' });
    const from = (url: string, t: string, ip: string) =>
      h.app.inject({ method: 'POST', url, payload: { token: t }, remoteAddress: ip });
    const codes: number[] = [];
    for (let i = 0; i < 15; i++) codes.push((await from('/api/v1/invites/preview', token, '10.31.0.1')).statusCode);
    for (let i = 0; i < 15; i++)
      codes.push((await from('/api/v1/vendor-invites/preview', vendorInvite.token, '10.31.0.1')).statusCode);
    expect(codes.every((c) => c === 200)).toBe(true);
    // The 31st in 15 minutes, whichever kind: preview or accept, organisation or vendor.
    const limited = await from('/api/v1/invites/accept', token, '10.31.0.1');
    expect(limited.statusCode).toBe(429);
    expect(limited.json().error.code).toBe('RATE_LIMITED');
    expect((await from('/api/v1/vendor-invites/preview', vendorInvite.token, '10.31.0.1')).statusCode).toBe(429);
    // Another address is not held back, and the invitation was not used up by the refusals.
    expect((await from('/api/v1/invites/preview', token, '10.31.0.2')).statusCode).toBe(200);
  });

  it.skipIf(skip)('a device admin invites only members, only into their scope; members invite nobody', async () => {
    const sa = await login(h.app, 'salesadmin.ppl', PASSWORD);
    expect(
      (await sa.req('POST', `/api/v1/orgs/${org.orgId}/invites`, { role: 'member', department_id: org.dept.salesEast }))
        .statusCode,
    ).toBe(201);
    const outside = await sa.req('POST', `/api/v1/orgs/${org.orgId}/invites`, { role: 'member', department_id: org.dept.eng });
    expect(outside.statusCode).toBe(403);
    expect(outside.json().error.code).toBe('OUTSIDE_SCOPE');
    const admin = await sa.req('POST', `/api/v1/orgs/${org.orgId}/invites`, {
      role: 'device_admin',
      department_id: org.dept.sales,
    });
    expect(admin.statusCode).toBe(403);
    const alice = await login(h.app, 'alice.ppl', PASSWORD);
    expect((await alice.req('POST', `/api/v1/orgs/${org.orgId}/invites`, { role: 'member' })).statusCode).toBe(403);
    expect((await alice.req('GET', `/api/v1/orgs/${org.orgId}/invites`)).statusCode).toBe(403);
  });
});
