import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageBackends } from '../../testing/backends.js';
import { type Harness, startHarness } from '../../testing/harness.js';
import { consoleRoutes } from './console.routes.js';

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

  it('answers every console path with index.html under a CSP, and assets with a year of caching', async () => {
    const app = Fastify();
    await app.register(consoleRoutes({ dist }));
    for (const url of [
      '/',
      '/devices',
      '/devices/SN1',
      '/scan',
      '/bind?code=x',
      '/notifications',
      '/orgs/o1',
      '/orgs/o1/members',
    ]) {
      const r = await app.inject({ url });
      expect(r.statusCode, url).toBe(200);
      expect(r.body).toContain('<div id="root">');
      expect(r.headers['content-security-policy']).toContain("frame-ancestors 'none'");
      expect(r.headers['cache-control']).toBe('no-store');
    }
    const a = await app.inject({ url: '/assets/app-1.js' });
    expect(a.statusCode).toBe(200);
    expect(a.headers['cache-control']).toContain('immutable');
    expect((await app.inject({ url: '/assets/missing.js' })).statusCode).toBe(404);
    expect((await app.inject({ url: '/orgs/o1/unknown' })).statusCode).toBe(404);
    await app.close();
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
});
