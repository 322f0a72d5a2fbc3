import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_CLI } from '../../shared/principal.js';
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
});
