import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { sendConsoleShell } from '../landing/console-shell.js';

/** packages/console/dist, built by `npm run build:console` (npm start and npm test build it first). */
export const CONSOLE_DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../console/dist');

/**
 * Every GET that no route answers and that a browser opens as a page is the console's: the app's 404
 * handler (app.ts) sends the single-page app, which shows its own "not found" page for a path it does not
 * know (issue 12: never raw JSON). The API, the wire surfaces (each with its own 404 shape, e.g. /v3) and
 * anything not asking for HTML keep their 404.
 */
const NOT_CONSOLE = /^\/(api|v3|cgi-bin|docs|assets|metrics|openapi\.json)(\/|$)/;

export function isConsolePath(url: string, accept: string | undefined): boolean {
  const path = url.split('?')[0] ?? '/';
  return !NOT_CONSOLE.test(path) && (accept ?? '').includes('text/html');
}

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
      if (sendConsoleShell(reply, path.join(dist, 'index.html'))) return reply;
      return reply
        .status(503)
        .header('cache-control', 'no-store')
        .header('content-type', 'text/html; charset=utf-8')
        .send(NOT_BUILT);
    };
    const hidden = { hide: true, tags: ['console'] };
    app.get('/', { config: { access: 'public' }, schema: { ...hidden, summary: 'The web console (single-page app)' } }, shell);
    // Browsers ask for /favicon.ico on every site, whatever the page says; the console ships one.
    for (const icon of ['favicon.ico', 'favicon.svg']) {
      app.get(
        `/${icon}`,
        { config: { access: 'public' }, schema: { ...hidden, summary: 'The console icon' } },
        async (_req, reply) => {
          const file = path.join(dist, icon);
          if (!existsSync(file)) return reply.callNotFound();
          return reply
            .header('content-type', icon.endsWith('.svg') ? 'image/svg+xml' : 'image/x-icon')
            .header('cache-control', 'public, max-age=86400')
            .send(readFileSync(file));
        },
      );
    }
  };
}
