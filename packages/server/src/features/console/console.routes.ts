import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { consoleIndexHtml } from '../landing/console-shell.js';

/** packages/console/dist, built by `npm run build:console` (npm start and npm test build it first). */
export const CONSOLE_DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../console/dist');

/**
 * The console's own paths. Everything else stays with the API, /docs, the gateway and the landing
 * routes (/login, /connect/hardware, the add-device links serve the same index.html themselves).
 */
export const CONSOLE_PATHS = [
  '/',
  '/devices',
  '/devices/:sn',
  '/scan',
  '/bind',
  '/notifications',
  '/orgs/:orgId',
  '/orgs/:orgId/members',
  '/orgs/:orgId/departments',
] as const;

// Vite's build has no inline script or style; the camera frames stay in the page (blob:/mediastream:).
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; " +
  "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const NOT_BUILT = `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>Bindery · console not built</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:10vh auto;padding:0 16px;color:#1d2129}code{background:#f2f3f5;padding:2px 6px;border-radius:4px}</style>
</head><body><h1>The console is not built</h1>
<p>Bindery is running, but the web console has not been built into <code>packages/console/dist</code>.</p>
<p>Build it with <code>npm run build:console</code> (or start with <code>npm start</code>, which builds it first), then reload this page.</p>
<p>控制台尚未构建：请运行 <code>npm run build:console</code> 后刷新本页。</p>
<p>The API works meanwhile: <a href="/docs">/docs</a>.</p></body></html>`;

export function consoleRoutes(opts: { dist?: string } = {}) {
  const dist = opts.dist ?? CONSOLE_DIST;
  return async function consolePlugin(app: FastifyInstance) {
    const assets = path.join(dist, 'assets');
    // Hashed file names: cache them for a year. Registered only when built (the plugin needs the folder).
    if (existsSync(assets)) {
      await app.register(fastifyStatic, {
        root: assets,
        prefix: '/assets/',
        wildcard: true,
        index: false,
        immutable: true,
        maxAge: 365 * 24 * 3600_000,
        schemaHide: true,
      });
    }

    const shell = async (_req: unknown, reply: FastifyReply) => {
      const html = consoleIndexHtml(path.join(dist, 'index.html'));
      reply.header('cache-control', 'no-store').header('content-type', 'text/html; charset=utf-8');
      if (html === null) return reply.status(503).send(NOT_BUILT);
      return reply.header('content-security-policy', CSP).header('x-frame-options', 'DENY').send(html);
    };
    for (const url of CONSOLE_PATHS) {
      app.get(
        url,
        { config: { access: 'public' }, schema: { hide: true, tags: ['console'], summary: 'The web console (single-page app)' } },
        shell,
      );
    }
  };
}
