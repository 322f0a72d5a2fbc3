import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consoleShell } from '../../src/features/landing/console-shell.js';
import { type Browser, login, PASSWORD, SITE_ORIGIN, vendorWithModels } from '../../src/features/people/people.fixture.js';
import { routeAccessTable } from '../../src/http/gate.js';
import { SYSTEM_CLI } from '../../src/shared/principal.js';
import { sqliteBackend, storageBackends } from '../../src/testing/backends.js';
import { bearer, type Harness, startHarness } from '../../src/testing/harness.js';
import { makeCert } from '../../src/testing/tls-cert.js';

/**
 * Issue 11, finding 1 (and the gate half of finding 6): one gate decides on the route Fastify
 * matched, so an encoded path meets the same CSRF rule as the plain one; cross-site requests and
 * login CSRF are refused; anonymous calls to /api get 401 before validation; security headers.
 */
describe.each(storageBackends())('request gate on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let boss: Browser;
  const SN = 'GATESN001';
  const reboot = `/api/v1/devices/${SN}/actions/reboot`;

  /** As the signed-in boss: the session cookie only; each test adds what it means to test. */
  const asBoss = (o: Omit<InjectOptions, 'headers'> & { headers?: Record<string, string> }) =>
    h.app.inject({ ...o, headers: { cookie: boss.cookie, ...o.headers } } as InjectOptions);
  const good = () => ({ origin: SITE_ORIGIN, 'x-csrf-token': boss.csrf });

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    const { models } = await vendorWithModels(h, [{ name: 'Gate', productKey: 'pkGate' }]);
    // Boss is the super admin of the organisation that owns the device; alice has no role.
    const bossId = (await h.services.accounts.createUser(SYSTEM_CLI, { username: 'boss.gt', password: PASSWORD })).id;
    await h.services.accounts.createUser(SYSTEM_CLI, { username: 'alice.gt', password: PASSWORD });
    const { organisation } = await h.services.organisations.create(SYSTEM_CLI, {
      name: 'Gate org',
      superAdmin: { userId: bossId },
    });
    await h.services.devices.register(SYSTEM_CLI, models.pkGate!, SN);
    await h.services.binding.bind(SYSTEM_CLI, SN, { type: 'org', id: organisation.id });
    boss = await login(h.app, 'boss.gt', PASSWORD);
  });
  afterAll(async () => {
    await h?.close();
  });

  it.skipIf(skip)('finding 1: an encoded path to a cookie action is refused without the CSRF token, like /api', async () => {
    const matching = [
      reboot,
      `/%61pi/v1/devices/${SN}/actions/reboot`,
      `/%61%70%69/v1/devices/${SN}/actions/reboot`,
      `/api/v1/devices/${SN}/actions/%72eboot`,
      `/api/v1/devices/${SN}/%61ctions/reboot?x=1`,
    ];
    for (const url of matching) {
      // The finding's request: cookie, text/plain body, no token.
      const r = await asBoss({ method: 'POST', url, payload: 'x', headers: { 'content-type': 'text/plain' } });
      expect(r.statusCode, `${url}: ${r.body}`).toBe(403);
      expect(r.json().error.code).toBe('CSRF_FAILED');
      // Same origin but still no token.
      const noToken = await asBoss({ method: 'POST', url, headers: { origin: SITE_ORIGIN } });
      expect(noToken.statusCode, url).toBe(403);
      // Done right, the very same path reaches the route: it really matched.
      expect((await asBoss({ method: 'POST', url, headers: good() })).statusCode, url).toBe(202);
    }
    // Paths Fastify does not match reach no route at all, with or without credentials.
    for (const url of [
      `/api%2Fv1/devices/${SN}/actions/reboot`,
      `/api/v1/devices/${SN}%2Factions%2Freboot`,
      `//api/v1/devices/${SN}/actions/reboot`,
      `/api//v1/devices/${SN}/actions/reboot`,
      `/API/v1/devices/${SN}/actions/reboot`,
      `/api/v1/devices/${SN}/actions/REBOOT`,
    ]) {
      const r = await asBoss({ method: 'POST', url, payload: 'x', headers: { 'content-type': 'text/plain' } });
      expect(r.statusCode, `${url}: ${r.body}`).toBe(404);
    }
  });

  it.skipIf(skip)('finding 1: a cross-site Origin or Sec-Fetch-Site is refused even with the right CSRF token', async () => {
    const refused: Array<Record<string, string>> = [
      { origin: 'https://evil.example' },
      { origin: 'null' },
      { origin: 'http://bindery.test' },
      { origin: SITE_ORIGIN, 'sec-fetch-site': 'cross-site' },
      { origin: SITE_ORIGIN, 'sec-fetch-site': 'same-site' },
      { referer: 'https://evil.example/page' },
      {},
    ];
    for (const headers of refused) {
      const r = await asBoss({ method: 'POST', url: reboot, headers: { 'x-csrf-token': boss.csrf, ...headers } });
      expect(r.statusCode, JSON.stringify(headers)).toBe(403);
      expect(r.json().error.code).toBe('CSRF_FAILED');
    }
    const accepted: Array<Record<string, string>> = [
      { origin: SITE_ORIGIN, 'sec-fetch-site': 'same-origin' },
      // No Origin (old browsers): the Referer names the site.
      { referer: `${SITE_ORIGIN}/devices/${SN}` },
      // The request's own scheme://host is this site too (a deployment reached by another name).
      { host: 'console.internal:8080', origin: 'http://console.internal:8080' },
    ];
    for (const headers of accepted) {
      const r = await asBoss({ method: 'POST', url: reboot, headers: { 'x-csrf-token': boss.csrf, ...headers } });
      expect(r.statusCode, `${JSON.stringify(headers)}: ${r.body}`).toBe(202);
    }
    // A wrong token with the right origin is still refused.
    const wrong = await asBoss({ method: 'POST', url: reboot, headers: { origin: SITE_ORIGIN, 'x-csrf-token': 'x'.repeat(43) } });
    expect(wrong.statusCode).toBe(403);
  });

  it.skipIf(skip)('finding 1: text/plain and form bodies are not accepted on cookie routes', async () => {
    for (const type of [
      'text/plain',
      'text/plain;charset=UTF-8',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
    ]) {
      const r = await asBoss({
        method: 'PATCH',
        url: '/api/v1/me',
        payload: '{"display_name":"Mallory"}',
        headers: { ...good(), 'content-type': type },
      });
      expect(r.statusCode, type).toBe(415);
      expect(r.json().error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    }
    const json = await asBoss({ method: 'PATCH', url: '/api/v1/me', payload: { display_name: 'Boss' }, headers: good() });
    expect(json.statusCode).toBe(200);
  });

  it.skipIf(skip)('finding 1 (login CSRF): logging in and accepting invitations refuse cross-site requests', async () => {
    const creds = { username: 'alice.gt', password: PASSWORD };
    const post = (url: string, headers: Record<string, string>, payload: unknown = creds) =>
      h.app.inject({ method: 'POST', url, payload: payload as InjectOptions['payload'], headers });
    const crossSite: Array<Record<string, string>> = [
      { origin: 'https://evil.example' },
      { origin: 'null' },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site', origin: SITE_ORIGIN },
    ];
    for (const headers of crossSite) {
      for (const url of ['/api/v1/session', '/%61pi/v1/session', '/api/v1/tokens']) {
        const r = await post(url, headers);
        expect(r.statusCode, `${url} ${JSON.stringify(headers)}`).toBe(403);
        expect(r.json().error.code).toBe('CSRF_FAILED');
        expect(r.headers['set-cookie']).toBeUndefined();
      }
      const accept = await post('/api/v1/invites/accept', headers, { token: 'x', username: 'mallory', password: PASSWORD });
      expect(accept.statusCode).toBe(403);
    }
    // A login form posted as text/plain or form data is refused too.
    const form = await post('/api/v1/session', { 'content-type': 'application/x-www-form-urlencoded' }, 'username=a&password=b');
    expect(form.statusCode).toBe(415);
    // The console (same origin) and scripts (no Origin, no Sec-Fetch-Site) log in.
    expect((await post('/api/v1/session', { origin: SITE_ORIGIN, 'sec-fetch-site': 'same-origin' })).statusCode).toBe(201);
    expect((await post('/api/v1/session', {})).statusCode).toBe(201);
  });

  it.skipIf(skip)('finding 6: anonymous requests to /api routes get 401 before their body is validated', async () => {
    const cases: Array<[string, string, unknown]> = [
      ['POST', '/api/v1/vendors', { name: 42, extra: true }],
      ['POST', '/%61pi/v1/vendors', 'not json at all'],
      ['POST', '/api/v1/operators', {}],
      ['PUT', `/api/v1/devices/${SN}/remark-name`, { nope: 1 }],
      ['POST', '/api/v1/bind', { sn: 12 }],
      ['PATCH', '/api/v1/me', { display_name: 7 }],
      ['GET', '/api/v1/orgs?limit=notanumber', undefined],
    ];
    for (const [method, url, payload] of cases) {
      for (const headers of [{}, { cookie: 'bindery_session=forged' }, bearer('bnd_forged')]) {
        const r = await h.app.inject({ method, url, headers, payload } as InjectOptions);
        expect(r.statusCode, `${method} ${url} ${JSON.stringify(headers)}: ${r.body}`).toBe(401);
        expect(r.json().error.code).toBe('UNAUTHENTICATED');
      }
    }
    // A signed-in caller's bad body is judged on its merits.
    const bad = await h.app.inject({ method: 'POST', url: '/api/v1/vendors', headers: bearer(h.operatorToken), payload: {} });
    expect(bad.statusCode).toBe(400);
  });

  it.skipIf(skip)('finding 1: the WeCom /cgi-bin and WeChat Pay /v3 surfaces keep their own auth', async () => {
    // A vendor's server sends neither cookies nor Origin; a stray cookie or Origin changes nothing.
    const r = await h.app.inject({
      method: 'POST',
      url: '/cgi-bin/openhw/get_model_token',
      headers: { cookie: boss.cookie, origin: 'https://evil.example' },
      payload: { model_id: 'nope', model_secret: 'x', model_ticket: 'y' },
    });
    expect(r.statusCode).toBe(200);
    expect(r.json().errcode).not.toBe(0);
    expect(r.json().errcode).not.toBe(48010);
    // 404s under an encoded /cgi-bin path keep the WeCom shape.
    const nf = await h.app.inject({ method: 'POST', url: '/cgi-bin/%6Fpenhw/nothing' });
    expect(nf.statusCode).toBe(200);
    expect(nf.json().errcode).toBe(46004);
    const v3 = await h.app.inject({ method: 'GET', url: '/v3/certificates', headers: { cookie: boss.cookie } });
    expect(v3.statusCode).toBe(401);
    expect(v3.json().error).toBeUndefined();

    const table = routeAccessTable(h.app);
    const external = table.filter((x) => x.url.startsWith('/cgi-bin/') || x.url.startsWith('/v3/'));
    expect(external.length).toBeGreaterThan(10);
    for (const x of external) expect(x, x.url).toMatchObject({ access: 'external', declared: true });
    // Anonymous access to /api is an explicit, short list.
    const publicApi = [
      ...new Set(table.filter((x) => x.url.startsWith('/api/') && x.access === 'public').map((x) => `${x.method} ${x.url}`)),
    ];
    expect(publicApi.sort()).toEqual(
      [
        'DELETE /api/v1/session',
        'GET /api/v1/firmware/:id/file',
        'GET /api/v1/relations/template.csv',
        'GET /api/v1/relations/template.xlsx',
        'HEAD /api/v1/firmware/:id/file',
        'HEAD /api/v1/relations/template.csv',
        'HEAD /api/v1/relations/template.xlsx',
        // Issue 12/13: what people need before they have an account (each rate-limited per address).
        'GET /api/v1/instance/public',
        'HEAD /api/v1/instance/public',
        'POST /api/v1/invites/accept',
        'POST /api/v1/invites/preview',
        'POST /api/v1/password-resets/complete',
        'POST /api/v1/password-resets/preview',
        'POST /api/v1/session',
        'POST /api/v1/signup',
        'POST /api/v1/tokens',
        'POST /api/v1/vendor-invites/accept',
        'POST /api/v1/vendor-invites/preview',
      ].sort(),
    );
  });

  it.skipIf(skip)('finding 1: security headers on API replies, refusals, console, landing pages and /docs', async () => {
    const base = (r: { headers: Record<string, unknown> }, what: string) => {
      expect(r.headers['x-content-type-options'], what).toBe('nosniff');
      expect(r.headers['referrer-policy'], what).toBe('same-origin');
      expect(r.headers['x-frame-options'], what).toBe('DENY');
      expect(String(r.headers['content-security-policy']), what).toMatch(/frame-ancestors 'none'/);
      expect(String(r.headers['content-security-policy']), what).toMatch(/default-src '(self|none)'/);
      expect(r.headers['strict-transport-security'], `${what}: no HSTS without TLS`).toBeUndefined();
    };
    base(await h.app.inject({ method: 'GET', url: '/healthz' }), '/healthz');
    base(await h.app.inject({ method: 'GET', url: '/api/v1/me' }), '401');
    base(await asBoss({ method: 'POST', url: reboot }), 'CSRF refusal');
    base(await asBoss({ method: 'GET', url: '/api/v1/me' }), '/api/v1/me');
    base(await h.app.inject({ method: 'GET', url: '/devices' }), 'console page');
    base(await h.app.inject({ method: 'GET', url: '/nowhere' }), '404');
    const saved = consoleShell.file;
    consoleShell.file = null;
    try {
      const page = await h.app.inject({ method: 'GET', url: '/login?next=/devices' });
      expect(page.statusCode).toBe(200);
      base(page, 'landing /login');
      // The landing page's own nonce policy wins over the default: its one inline script runs.
      const nonce = /script-src 'nonce-([^']+)'/.exec(String(page.headers['content-security-policy']))?.[1];
      expect(page.body).toContain(`<script nonce="${nonce}">`);
    } finally {
      consoleShell.file = saved;
    }
    const docs = await h.app.inject({ method: 'GET', url: '/docs/' });
    expect(docs.statusCode).toBe(200);
    base(docs, '/docs');
    expect(docs.headers['content-security-policy']).toMatch(/script-src 'self'/);
  });
});

describe('request gate under TLS', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'bindery-gate-tls-'));
  const pair = makeCert(dir);
  let h: Harness;
  let base = '';
  beforeAll(async () => {
    if (!pair) return;
    // A public URL that says http: only the TLS connection itself can make the cookie Secure.
    h = await startHarness(sqliteBackend, {
      config: { BINDERY_TLS_CERT: pair.cert, BINDERY_TLS_KEY: pair.key, BINDERY_PUBLIC_URL: 'http://bindery.test' },
    });
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    base = `https://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** One HTTPS request to the listening app, trusting its self-signed certificate. */
  const call = (method: string, url: string, body?: unknown) =>
    new Promise<{ status: number; headers: Record<string, string | string[] | undefined> }>((resolve, reject) => {
      const req = httpsRequest(
        `${base}${url}`,
        { method, rejectUnauthorized: false, headers: body ? { 'content-type': 'application/json' } : {} },
        (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
        },
      );
      req.on('error', reject);
      req.end(body ? JSON.stringify(body) : undefined);
    });

  it.skipIf(!pair)('finding 1: HSTS and Secure session cookies when this process terminates TLS', async () => {
    const health = await call('GET', '/healthz');
    expect(health.status).toBe(200);
    expect(health.headers['strict-transport-security']).toBe('max-age=31536000');
    expect(health.headers['x-content-type-options']).toBe('nosniff');

    await h.services.accounts.createUser(SYSTEM_CLI, { username: 'tls.user', password: PASSWORD });
    const r = await call('POST', '/api/v1/session', { username: 'tls.user', password: PASSWORD });
    expect(r.status).toBe(201);
    const cookies = ([] as string[]).concat(r.headers['set-cookie'] ?? []);
    const session = cookies.find((c) => c.startsWith('bindery_session='));
    expect(session).toMatch(/; HttpOnly/);
    expect(session).toMatch(/; SameSite=Lax/);
    expect(session).toMatch(/; Secure/);
    expect(cookies.find((c) => c.startsWith('bindery_csrf='))).toMatch(/; Secure/);
  });
});
