import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageBackends } from '../../testing/backends.js';
import { type Harness, startHarness } from '../../testing/harness.js';
import { acmeOrg, type Browser, login, type OrgFixture, PASSWORD } from '../people/people.fixture.js';
import { parseOrigin } from './third-party.service.js';

/** Issue 15, item 3: an application's return origins, and the check before the console sends someone back. */
describe.each(storageBackends())('third-party entry on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let org: OrgFixture;
  let other: OrgFixture;
  let boss: Browser;
  let alice: Browser;
  let salesAdmin: Browser;
  let outsider: Browser;
  let appId: string;

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    org = await acmeOrg(h, 'tp');
    other = await acmeOrg(h, 'tq');
    boss = await login(h.app, 'boss.tp', PASSWORD);
    alice = await login(h.app, 'alice.tp', PASSWORD);
    salesAdmin = await login(h.app, 'salesadmin.tp', PASSWORD);
    outsider = await login(h.app, 'alice.tq', PASSWORD);
    const r = await boss.req('POST', `/api/v1/orgs/${org.orgId}/applications`, { app_key: 'crm.visits', name: 'Visitor CRM' });
    expect(r.statusCode).toBe(201);
    appId = r.json().application?.id ?? r.json().id;
    // The other organisation has an application with the same key and another origin.
    const bossQ = await login(h.app, 'boss.tq', PASSWORD);
    const q = await bossQ.req('POST', `/api/v1/orgs/${other.orgId}/applications`, { app_key: 'crm.visits', name: 'Other CRM' });
    const qId = q.json().application?.id ?? q.json().id;
    expect(
      (await bossQ.req('PUT', `/api/v1/orgs/${other.orgId}/applications/${qId}/origins`, { origins: ['https://evil.example'] }))
        .statusCode,
    ).toBe(200);
  });
  afterAll(async () => {
    await h?.close();
  });

  const origins = (who: Browser, list: string[]) =>
    who.req('PUT', `/api/v1/orgs/${org.orgId}/applications/${appId}/origins`, { origins: list });
  const back = (who: Browser, redirect: string, app = 'crm.visits') =>
    who.req('POST', '/api/v1/third-party/return', { app, redirect_uri: redirect });

  it.skipIf(skip)('super admins register exact origins; others may not; junk is refused', async () => {
    const r = await origins(boss, [
      'https://crm.acme.example/some/path?x=1',
      'https://crm.acme.example',
      'http://localhost:5173',
    ]);
    expect(r.statusCode).toBe(200);
    expect(r.json().origins).toEqual(['http://localhost:5173', 'https://crm.acme.example']);
    expect((await origins(salesAdmin, ['https://x.example'])).statusCode).toBe(403);
    expect((await origins(boss, ['javascript:alert(1)'])).statusCode).toBe(400);
    expect((await origins(boss, ['ftp://files.example'])).statusCode).toBe(400);
    expect((await alice.req('GET', `/api/v1/orgs/${org.orgId}/applications/${appId}/origins`)).json().origins).toEqual([
      'http://localhost:5173',
      'https://crm.acme.example',
    ]);
  });

  it.skipIf(skip)('sends a member back only to a registered origin of an application of their organisation', async () => {
    const ok = await back(alice, 'https://crm.acme.example/after-bind?visit=42');
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ redirect_uri: 'https://crm.acme.example/after-bind?visit=42', app_name: 'Visitor CRM' });
    // Unregistered origin, look-alike host, other scheme or port: refused, coded.
    for (const bad of [
      'https://crm.acme.example.evil.example/',
      'https://evil.example/',
      'http://crm.acme.example/',
      'https://crm.acme.example:8443/',
      'javascript:alert(1)',
      '//crm.acme.example/x',
    ]) {
      const r = await back(alice, bad);
      expect([r.statusCode, r.json().error.code], bad).toEqual([403, 'REDIRECT_NOT_ALLOWED']);
    }
    // The other organisation's registration does not open its origin to Acme's members, and vice versa.
    expect((await back(alice, 'https://evil.example/')).statusCode).toBe(403);
    expect((await back(outsider, 'https://crm.acme.example/')).statusCode).toBe(403);
    expect((await back(outsider, 'https://evil.example/')).statusCode).toBe(200);
    expect((await back(alice, 'https://crm.acme.example/', 'no.such.app')).statusCode).toBe(403);
  });

  it.skipIf(skip)('serves the client script anyone may include', async () => {
    const r = await h.app.inject({ method: 'GET', url: '/sdk/bindery-client.js' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/text\/javascript/);
    expect(r.headers['cross-origin-resource-policy']).toBe('cross-origin');
    expect(r.body).toContain('addDevice');
    expect(r.body).toContain('parseReturn');
  });
});

describe('parseOrigin', () => {
  it('keeps scheme, host and port only, and refuses what is no http(s) origin', () => {
    expect(parseOrigin(' https://A.example:443/x ')).toBe('https://a.example');
    expect(parseOrigin('http://127.0.0.1:8080/')).toBe('http://127.0.0.1:8080');
    expect(() => parseOrigin('data:text/html,hi')).toThrow();
    expect(() => parseOrigin('https://user:pw@a.example')).toThrow();
    expect(() => parseOrigin('not a url')).toThrow();
  });
});
