import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Principal, SYSTEM_CLI, type VendorRole } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { bearer, type Harness, startHarness } from '../../testing/harness.js';

/** A vendor's keys as the operator's vendor page lists them: names and dates, never the values. */
describe.each(storageBackends())("a vendor's keys on $backend.name", ({ backend, skip }) => {
  let h: Harness;
  let vendorId: string;
  let otherKey: string;
  let userToken: string;

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    vendorId = (await h.services.vendors.create(SYSTEM_CLI, { name: 'Acme' })).id;
    const other = await h.services.vendors.create(SYSTEM_CLI, { name: 'Other' });
    otherKey = (await h.services.accounts.createVendorKey(SYSTEM_CLI, other.id, 'theirs')).token;
    const u = await h.services.accounts.createUser(SYSTEM_CLI, { username: 'some.person', password: 'a long password here' });
    userToken = (await h.services.people.createToken({ kind: 'user', userId: u.id, isOperator: false }, 't')).token;
  });
  afterAll(async () => {
    await h?.close();
  });

  const req = (method: 'GET' | 'POST' | 'DELETE', url: string, token: string, payload?: object) =>
    h.app.inject({ method, url, headers: bearer(token), ...(payload ? { payload } : {}) });

  it.skipIf(skip)('lists them newest first without their values; a revoked one stays, marked', async () => {
    const first = await req('POST', `/api/v1/vendors/${vendorId}/keys`, h.operatorToken, { name: 'factory' });
    h.clock.advance(1000);
    const second = await req('POST', `/api/v1/vendors/${vendorId}/keys`, h.operatorToken, { name: 'cloud' });
    const [a, b] = [first.json() as { id: string; token: string }, second.json() as { id: string; token: string }];
    h.clock.advance(1000);
    // The key itself, used once: its last use shows.
    expect((await req('GET', `/api/v1/vendors/${vendorId}`, b.token)).statusCode).toBe(200);
    expect((await req('DELETE', `/api/v1/tokens/${a.id}`, h.operatorToken)).statusCode).toBe(204);

    const r = await req('GET', `/api/v1/vendors/${vendorId}/keys`, h.operatorToken);
    expect(r.statusCode).toBe(200);
    expect(r.body).not.toContain(a.token);
    expect(r.body).not.toContain(b.token);
    const keys = r.json().keys as Array<{ id: string; name: string; last_used_at: string | null; revoked_at: string | null }>;
    expect(keys.map((k) => [k.name, k.revoked_at !== null, k.last_used_at !== null])).toEqual([
      ['cloud', false, true],
      ['factory', true, false],
    ]);
    // The vendor sees its own keys too.
    expect((await req('GET', `/api/v1/vendors/${vendorId}/keys`, b.token)).json().keys).toHaveLength(2);
  });

  it.skipIf(skip)('refuses another vendor and people who are not its admins', async () => {
    for (const token of [otherKey, userToken]) {
      expect((await req('GET', `/api/v1/vendors/${vendorId}/keys`, token)).json().error.code).toBe('FORBIDDEN');
    }
    expect((await req('GET', '/api/v1/vendors/ven_nowhere/keys', h.operatorToken)).json().error.code).toBe('VENDOR_NOT_FOUND');
  });

  /** A person of `vendor` with `role`, joined by invitation; their personal token carries the role. */
  const vendorPerson = async (vendor: string, role: VendorRole) => {
    const s = h.services;
    const u = await s.accounts.createUser(SYSTEM_CLI, {
      username: `${role}.${vendor.slice(-6)}`,
      password: 'a long password here',
    });
    const me: Principal = { kind: 'user', userId: u.id, isOperator: false };
    await s.vendorPeople.acceptInvite((await s.vendorPeople.createInvite(SYSTEM_CLI, vendor, { role })).token, me);
    return (await s.people.createToken(me, 't')).token;
  };
  const auditOf = (action: string) =>
    h.deps.db.kysely
      .selectFrom('audit_log')
      .select(['actor', 'subject', 'data'])
      .where('action', '=', action)
      .orderBy('id')
      .execute();

  it.skipIf(skip)(
    "lets the vendor's admins list, create and revoke its keys, audited; engineers and production not",
    async () => {
      const admin = await vendorPerson(vendorId, 'vendor_admin');
      const made = await req('POST', `/api/v1/vendors/${vendorId}/keys`, admin, { name: 'line pc' });
      expect(made.statusCode).toBe(201);
      const key = made.json() as { id: string; token: string };
      expect(key.token).toMatch(/^bnd_/);
      const listed = await req('GET', `/api/v1/vendors/${vendorId}/keys`, admin);
      expect(listed.statusCode).toBe(200);
      expect(listed.body).not.toContain(key.token);
      expect((listed.json().keys as Array<{ id: string }>).map((k) => k.id)).toContain(key.id);

      for (const role of ['engineer', 'production'] as const) {
        const token = await vendorPerson(vendorId, role);
        expect((await req('GET', `/api/v1/vendors/${vendorId}/keys`, token)).statusCode).toBe(403);
        expect((await req('POST', `/api/v1/vendors/${vendorId}/keys`, token, { name: 'x' })).statusCode).toBe(403);
        expect((await req('DELETE', `/api/v1/tokens/${key.id}`, token)).statusCode).toBe(403);
      }
      // Another vendor's admin may not revoke it either.
      const other = (await h.services.vendors.create(SYSTEM_CLI, { name: 'Third' })).id;
      expect((await req('DELETE', `/api/v1/tokens/${key.id}`, await vendorPerson(other, 'vendor_admin'))).statusCode).toBe(403);
      // Still working: nothing above revoked it.
      expect((await req('GET', `/api/v1/vendors/${vendorId}`, key.token)).statusCode).toBe(200);

      expect((await req('DELETE', `/api/v1/tokens/${key.id}`, admin)).statusCode).toBe(204);
      expect((await req('GET', `/api/v1/vendors/${vendorId}`, key.token)).statusCode).toBe(401);
      // A second revocation changes nothing and records nothing.
      expect((await req('DELETE', `/api/v1/tokens/${key.id}`, admin)).statusCode).toBe(204);

      const created = (await auditOf('vendor_key.create')).filter((a) => JSON.parse(a.data ?? '{}').key === key.id);
      const revoked = (await auditOf('vendor_key.revoke')).filter((a) => JSON.parse(a.data ?? '{}').key === key.id);
      expect(created).toHaveLength(1);
      expect(revoked).toHaveLength(1);
      expect(revoked[0]).toMatchObject({ subject: vendorId, actor: expect.stringMatching(/^user:/) });
      expect(JSON.parse(revoked[0]!.data!)).toEqual({ key: key.id, name: 'line pc' });
    },
  );
});
