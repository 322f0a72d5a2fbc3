import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canActForVendor, SYSTEM_CLI } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { bearer, type Harness, startHarness } from '../../testing/harness.js';
import { type Browser, login, PASSWORD } from '../people/people.fixture.js';

/** A vendor invites people with roles; they join by link, and what each may do follows the role. */
describe.each(storageBackends())('vendor people on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let vendorId: string;
  let otherVendor: string;
  let admin: Browser;

  /** Invites with `role` as `by` and accepts by signing up as `username`; returns their browser. */
  async function joinBySignup(by: Browser, role: string, username: string): Promise<Browser> {
    const inv = await by.req('POST', `/api/v1/vendors/${vendorId}/invites`, { role });
    expect(inv.statusCode).toBe(201);
    const { token, url } = inv.json() as { token: string; url: string };
    expect(token.startsWith('v.')).toBe(true);
    expect(url).toBe(`https://bindery.test/invite#${token}`);
    const acc = await h.app.inject({
      method: 'POST',
      url: '/api/v1/vendor-invites/accept',
      payload: { token, username, password: PASSWORD },
    });
    expect(acc.statusCode).toBe(201);
    expect(acc.json()).toMatchObject({ vendor_id: vendorId, role, created: true });
    return login(h.app, username, PASSWORD);
  }

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    vendorId = (await h.services.vendors.create(SYSTEM_CLI, { name: 'Lombo' })).id;
    otherVendor = (await h.services.vendors.create(SYSTEM_CLI, { name: 'Other' })).id;
    // The operator invites the first vendor admin, who joins with an existing account.
    await h.services.accounts.createUser(SYSTEM_CLI, { username: 'va.admin', password: PASSWORD });
    const { token } = await h.services.vendorPeople.createInvite(SYSTEM_CLI, vendorId, { role: 'vendor_admin' });
    const pre = await login(h.app, 'va.admin', PASSWORD);
    const acc = await pre.req('POST', '/api/v1/vendor-invites/accept', { token });
    expect(acc.statusCode).toBe(201);
    expect(acc.json()).toMatchObject({ role: 'vendor_admin', created: false });
    admin = pre;
  });
  afterAll(async () => {
    await h?.close();
  });

  it.skipIf(skip)('previews an invitation without sign-in and accepts it once', async () => {
    const inv = (await admin.req('POST', `/api/v1/vendors/${vendorId}/invites`, { role: 'engineer' })).json();
    const pre = await h.app.inject({ method: 'POST', url: '/api/v1/vendor-invites/preview', payload: { token: inv.token } });
    expect(pre.statusCode).toBe(200);
    expect(pre.json()).toMatchObject({ kind: 'vendor', vendor: { id: vendorId, name: 'Lombo' }, role: 'engineer' });
    expect(pre.json().invited_by).toEqual({ display_name: 'va.admin' });
    await h.app.inject({
      method: 'POST',
      url: '/api/v1/vendor-invites/accept',
      payload: { token: inv.token, username: 'va.once', password: PASSWORD },
    });
    const again = await h.app.inject({
      method: 'POST',
      url: '/api/v1/vendor-invites/accept',
      payload: { token: inv.token, username: 'va.twice', password: PASSWORD },
    });
    expect(again.statusCode).toBe(410);
    expect(again.json().error.code).toBe('INVITE_INVALID');
    // An organisation's token is not a vendor's, and only the hash is stored.
    const org = await h.app.inject({ method: 'POST', url: '/api/v1/vendor-invites/preview', payload: { token: 'abc' } });
    expect(org.json().error.code).toBe('INVITE_INVALID');
    const rows = await h.deps.db.kysely.selectFrom('vendor_invites').select('token_hash').execute();
    expect(rows.map((r) => r.token_hash)).not.toContain(inv.token);
  });

  it.skipIf(skip)('puts the vendors and roles in the session, and each role gets its capabilities', async () => {
    const eng = await joinBySignup(admin, 'engineer', 'va.eng');
    const prod = await joinBySignup(admin, 'production', 'va.prod');
    const s = (await eng.req('GET', '/api/v1/session')).json();
    expect(s.vendors).toEqual([{ id: vendorId, name: 'Lombo', role: 'engineer' }]);
    expect((await eng.req('GET', '/api/v1/vendors')).json().vendors.map((v: { id: string }) => v.id)).toEqual([vendorId]);
    expect((await eng.req('GET', `/api/v1/vendors/${otherVendor}`)).statusCode).toBe(403);

    // People are the admin's: the engineer and production worker may not list or invite.
    expect((await eng.req('GET', `/api/v1/vendors/${vendorId}/members`)).statusCode).toBe(403);
    expect((await prod.req('POST', `/api/v1/vendors/${vendorId}/invites`, { role: 'engineer' })).statusCode).toBe(403);
    // A model is the engineer's to create, not production's.
    const model = { name: 'Lamp', product_key: 'pk_vpl1', binding_mode: 'owner_only' };
    expect((await prod.req('POST', `/api/v1/vendors/${vendorId}/models`, model)).statusCode).toBe(403);
    expect((await eng.req('POST', `/api/v1/vendors/${vendorId}/models`, model)).statusCode).toBe(201);

    // The roles the principal carries, resolved from a session cookie and from a personal token.
    const token = (await eng.req('POST', '/api/v1/me/tokens', { name: 'script' })).json().token as string;
    const viaToken = await h.services.accounts.authenticate(token);
    expect(viaToken && canActForVendor(viaToken, vendorId, 'firmware')).toBe(true);
    expect(viaToken && canActForVendor(viaToken, vendorId, 'batches')).toBe(false);
    const models = await h.app.inject({ method: 'GET', url: `/api/v1/vendors/${vendorId}/models`, headers: bearer(token) });
    expect(models.statusCode).toBe(200);
  });

  it.skipIf(skip)('lists, changes and removes members, keeping one vendor admin', async () => {
    const list = (await admin.req('GET', `/api/v1/vendors/${vendorId}/members`)).json().members as Array<{
      username: string;
      user_id: string;
      role: string;
    }>;
    const byName = Object.fromEntries(list.map((m) => [m.username, m]));
    expect(byName['va.admin']?.role).toBe('vendor_admin');
    expect(byName['va.eng']?.role).toBe('engineer');

    const demoteSelf = await admin.req('PATCH', `/api/v1/vendors/${vendorId}/members/${admin.userId}`, { role: 'engineer' });
    expect(demoteSelf.statusCode).toBe(409);
    expect(demoteSelf.json().error.code).toBe('LAST_VENDOR_ADMIN');
    expect((await admin.req('DELETE', `/api/v1/vendors/${vendorId}/members/${admin.userId}`)).json().error.code).toBe(
      'LAST_VENDOR_ADMIN',
    );

    const prodId = byName['va.prod']!.user_id;
    const up = await admin.req('PATCH', `/api/v1/vendors/${vendorId}/members/${prodId}`, { role: 'engineer' });
    expect(up.json().member).toMatchObject({ user_id: prodId, role: 'engineer' });
    const bad = await admin.req('PATCH', `/api/v1/vendors/${vendorId}/members/${prodId}`, { role: 'super_admin' });
    expect(bad.statusCode).toBe(400);
    expect((await admin.req('DELETE', `/api/v1/vendors/${vendorId}/members/${prodId}`)).statusCode).toBe(204);
    expect((await admin.req('DELETE', `/api/v1/vendors/${vendorId}/members/${prodId}`)).json().error.code).toBe(
      'VENDOR_MEMBER_NOT_FOUND',
    );
    // Removed: the next request of theirs no longer acts for the vendor.
    const prod = await login(h.app, 'va.prod', PASSWORD);
    expect((await prod.req('GET', `/api/v1/vendors/${vendorId}`)).statusCode).toBe(403);
    const audit = await h.deps.db.kysely
      .selectFrom('audit_log')
      .select('action')
      .where('subject', '=', `vendor:${vendorId}`)
      .execute();
    expect(audit.map((a) => a.action)).toEqual(
      expect.arrayContaining(['vendor.invite.create', 'vendor.invite.accept', 'vendor.member.role', 'vendor.member.remove']),
    );
  });

  it.skipIf(skip)('revokes a pending invitation, which then opens nothing', async () => {
    const inv = (await admin.req('POST', `/api/v1/vendors/${vendorId}/invites`, { role: 'production' })).json();
    expect((await admin.req('DELETE', `/api/v1/vendors/${vendorId}/invites/${inv.invite.id}`)).statusCode).toBe(204);
    expect((await admin.req('DELETE', `/api/v1/vendors/${vendorId}/invites/${inv.invite.id}`)).statusCode).toBe(404);
    const pre = await h.app.inject({ method: 'POST', url: '/api/v1/vendor-invites/preview', payload: { token: inv.token } });
    expect(pre.json().error.code).toBe('INVITE_INVALID');
    const list = (await admin.req('GET', `/api/v1/vendors/${vendorId}/invites`)).json().invites as Array<{
      id: string;
      state: string;
    }>;
    expect(list.find((i) => i.id === inv.invite.id)?.state).toBe('revoked');
    expect(list.some((i) => i.state === 'accepted')).toBe(true);
  });
});
