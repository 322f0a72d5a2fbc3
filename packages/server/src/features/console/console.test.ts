import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageBackends } from '../../testing/backends.js';
import { type Harness, startHarness } from '../../testing/harness.js';
import { CONSOLE_DIST, consoleRoutes, isConsolePath } from './console.routes.js';

/** Serving the console: its paths answer index.html, assets are cached, API and docs routes win, an unbuilt console says so. */
describe('console routes (plugin alone)', () => {
  let dist: string;
  beforeAll(() => {
    dist = mkdtempSync(path.join(tmpdir(), 'bindery-console-dist-'));
    mkdirSync(path.join(dist, 'assets'));
    writeFileSync(
      path.join(dist, 'index.html'),
      '<!doctype html><div id="root"></div><script type="module" src="/assets/app-1.js"></script>',
    );
    writeFileSync(path.join(dist, 'assets', 'app-1.js'), 'console.log(1)');
  });
  afterAll(() => rmSync(dist, { recursive: true, force: true }));

  it('answers / with index.html under a CSP with a fresh style nonce, and assets with a year of caching', async () => {
    const app = Fastify();
    await app.register(consoleRoutes({ dist }));
    const nonces = new Set<string>();
    for (let i = 0; i < 2; i++) {
      const r = await app.inject({ url: '/' });
      expect(r.statusCode).toBe(200);
      expect(r.body).toContain('<div id="root">');
      const csp = String(r.headers['content-security-policy']);
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain('unsafe-inline');
      const nonce = /'nonce-([^']+)'/.exec(csp)?.[1];
      // The page hands the same nonce to the app (antd's styles), a new one each time.
      expect(r.body).toContain(`<meta name="csp-nonce" content="${nonce}" />`);
      nonces.add(nonce!);
      expect(r.headers['cache-control']).toBe('no-store');
    }
    expect(nonces.size).toBe(2);
    const a = await app.inject({ url: '/assets/app-1.js' });
    expect(a.statusCode).toBe(200);
    expect(a.headers['cache-control']).toContain('immutable');
    expect((await app.inject({ url: '/assets/missing.js' })).statusCode).toBe(404);
    await app.close();
  });

  it('tells console page paths from the API and the wire surfaces', () => {
    const html = 'text/html,application/xhtml+xml';
    for (const url of ['/devices', '/orgs/o1/members?x=1', '/no/such/page', '/vendors/v1/pairing']) {
      expect(isConsolePath(url, html), url).toBe(true);
    }
    for (const url of ['/api/v1/nope', '/v3/iotmanage/x', '/cgi-bin/openhw/x', '/docs/x', '/assets/x.js', '/metrics']) {
      expect(isConsolePath(url, html), url).toBe(false);
    }
    // A script or a fetch asking for JSON gets the JSON 404, whatever the path.
    expect(isConsolePath('/devices', 'application/json')).toBe(false);
    expect(isConsolePath('/devices', undefined)).toBe(false);
  });

  it('says how to build the console when dist is missing', async () => {
    const app = Fastify();
    await app.register(consoleRoutes({ dist: path.join(dist, 'nope') }));
    const r = await app.inject({ url: '/' });
    expect(r.statusCode).toBe(503);
    expect(r.headers['content-type']).toMatch(/text\/html/);
    expect(r.body).toContain('npm run build:console');
    await app.close();
  });
});

describe.each(storageBackends())('console in the app on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  beforeAll(async () => {
    if (!skip) h = await startHarness(backend);
  });
  afterAll(async () => {
    await h?.close();
  });

  it.skipIf(skip)('registers last: the API, /docs and /healthz keep their own answers', async () => {
    expect((await h.app.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' });
    expect((await h.app.inject({ url: '/api/v1/me' })).statusCode).toBe(401);
    expect((await h.app.inject({ url: '/openapi.json' })).statusCode).toBe(200);
    const root = await h.app.inject({ url: '/' });
    // Built or not, / is the console's: index.html (200) or the page saying to build it (503).
    expect([200, 503]).toContain(root.statusCode);
    expect(root.headers['content-type']).toMatch(/text\/html/);
    const spec = (await h.app.inject({ url: '/openapi.json' })).json() as { paths: Record<string, unknown> };
    expect(Object.keys(spec.paths)).not.toContain('/devices');
  });

  it.skipIf(skip)(
    'answers any page path a browser opens with the console, never raw JSON; the API keeps its JSON 404',
    async () => {
      const html = { accept: 'text/html,application/xhtml+xml' };
      const page = await h.app.inject({ url: '/orgs/o1/no-such-page', headers: html });
      // `npm test` builds the console first; a direct run without a build gets the JSON 404 (nothing to serve).
      if (existsSync(path.join(CONSOLE_DIST, 'index.html'))) {
        expect(page.statusCode).toBe(200);
        expect(page.headers['content-type']).toMatch(/text\/html/);
        expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'");
      }
      const api = await h.app.inject({ url: '/api/v1/no-such-thing', headers: html });
      expect([api.statusCode, api.json().error.code]).toEqual([404, 'NOT_FOUND']);
      const json = await h.app.inject({ url: '/orgs/o1/no-such-page', headers: { accept: 'application/json' } });
      expect([json.statusCode, json.json().error.code]).toEqual([404, 'NOT_FOUND']);
      // The WeChat Pay surface keeps its own 404 shape.
      const v3 = await h.app.inject({ url: '/v3/no-such-thing', headers: html });
      expect(v3.statusCode).toBe(404);
      expect(v3.json()).toHaveProperty('code');
    },
  );
});
