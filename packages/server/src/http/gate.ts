/**
 * The one request gate (issue 11, finding 1). Every request passes it in onRequest, before the
 * body is read or validated, and every decision is made on the route Fastify MATCHED
 * (req.routeOptions), never on the raw URL: `/%61pi/…` matches the same route as `/api/…`, so it
 * meets the same rule.
 *
 * Route access is declared in the route's config:  `config: { access: 'public' }`
 *
 *   'authenticated'  a principal is required; without one the answer is 401 UNAUTHENTICATED before
 *                    schema validation runs, so an outsider learns nothing from 400s. The DEFAULT
 *                    for every route under /api/.
 *   'public'         anyone may call it (login, invitation preview/accept, public downloads, the
 *                    console's and landing pages, /healthz, /docs). A credential, if sent, is still
 *                    resolved (req.principal may be set) and checked like anywhere else. The default
 *                    outside /api/ (plugin routes such as /docs and /assets cannot declare it).
 *   'external'       the route authenticates itself and the gate stays out: the WeCom /cgi-bin
 *                    surface (access tokens in the query), the WeChat Pay /v3 surface (signed
 *                    requests). No credential is resolved and no browser rule applies.
 *
 * Credentials: `Authorization: Bearer` → accounts.authenticate; otherwise the console session cookie
 * → people.resolveSession. (The device WebSocket is an HTTP upgrade on the raw server and never
 * reaches Fastify's routes.)
 *
 * Browser rules, for state-changing methods (anything but GET/HEAD/OPTIONS) on non-external routes
 * that are not Bearer-authenticated (a cross-site page cannot attach a Bearer token, it can make the
 * browser attach cookies):
 *   - Sec-Fetch-Site, when sent, must be `same-origin` or `none`;  Origin, when sent, must be
 *     same-origin with BINDERY_PUBLIC_URL or with the request's own scheme://host. This also stops
 *     login CSRF on anonymous forms. Requests with neither header (curl, scripts) pass: browsers
 *     always send Origin on these methods.
 *   - a body may not come as text/plain, form-encoded or multipart (what a cross-site page can send
 *     without a CORS preflight): 415.
 *   - cookie-authenticated requests must also name their origin (Origin, or Referer when Origin is
 *     absent) and carry the session's CSRF token in x-csrf-token: 403 CSRF_FAILED otherwise.
 *
 * routeAccessTable(app) lists every registered route with its effective access, for tests that
 * walk the whole surface (test/security/authz-matrix.test.ts).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '../errors.js';
import { CSRF_HEADER } from '../features/people/cookies.js';
import type { PeopleService } from '../features/people/people.service.js';
import { resolveSessionCookie } from '../features/people/session-auth.js';
import type { Principal } from '../shared/principal.js';
import { runInRequest } from '../shared/request-context.js';
import { bearerToken } from './auth.js';

export type RouteAccess = 'authenticated' | 'public' | 'external';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call this route; see packages/server/src/http/gate.ts. */
    access?: RouteAccess;
  }
}

export interface GatedRoute {
  method: string;
  url: string;
  access: RouteAccess;
  /** False when the access is the default of its path rather than declared by the route. */
  declared: boolean;
}

export interface GateOptions {
  publicUrl: string;
  authenticateToken(token: string): Promise<Principal | null>;
  people: PeopleService;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** The body types a cross-site page may send without a CORS preflight. */
const SIMPLE_BODY_TYPES = new Set(['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data']);
const ALLOWED_FETCH_SITES = new Set(['same-origin', 'none']);

const tables = new WeakMap<FastifyInstance, GatedRoute[]>();

/** The access a route gets: what it declares, else authenticated under /api/ and public elsewhere. */
export function effectiveAccess(url: string, declared: RouteAccess | undefined): RouteAccess {
  return declared ?? (url.startsWith('/api/') ? 'authenticated' : 'public');
}

/** Every route registered after registerGate, with its effective access. */
export function routeAccessTable(app: FastifyInstance): readonly GatedRoute[] {
  return tables.get(app) ?? [];
}

/**
 * Installs the gate on the root instance. Call it before any route is registered: the onRoute hook
 * writes each route's effective access into its config, so the onRequest hook only reads it.
 */
export function registerGate(app: FastifyInstance, o: GateOptions): void {
  const table: GatedRoute[] = [];
  tables.set(app, table);
  const publicOrigin = new URL(o.publicUrl).origin;

  app.addHook('onRoute', (route) => {
    const declared = route.config?.access;
    const access = effectiveAccess(route.url, declared);
    route.config = { ...route.config, access };
    for (const method of ([] as string[]).concat(route.method)) {
      table.push({ method, url: route.url, access, declared: declared !== undefined });
    }
  });

  // The request context (the caller's address, for audit records) is entered once, for everything
  // after this hook; Fastify's body parsing keeps it (content-type-parser.js binds an AsyncResource).
  app.addHook('onRequest', (req, _reply, done) => {
    runInRequest({ ip: req.ip ?? null }, done);
  });

  app.addHook('onRequest', async (req) => {
    // Undefined when nothing matched: the 404 handler answers and nothing acts on a principal.
    const access = req.routeOptions.url === undefined ? undefined : req.routeOptions.config.access;
    if (access === undefined || access === 'external') return;

    let via: 'bearer' | 'cookie' | null = null;
    let session: Awaited<ReturnType<typeof resolveSessionCookie>> = null;
    const token = bearerToken(req);
    if (token) {
      req.principal = await o.authenticateToken(token);
      if (req.principal) via = 'bearer';
    } else {
      session = await resolveSessionCookie(o.people, req);
      if (session) via = 'cookie';
    }

    if (access === 'authenticated' && !req.principal) {
      throw new AppError('UNAUTHENTICATED', 'Sign in, or send Authorization: Bearer <token>');
    }
    if (SAFE_METHODS.has(req.method) || via === 'bearer') return;

    checkBrowserRequest(req, publicOrigin, via === 'cookie');
    if (session && !o.people.csrfMatches(session, req.headers[CSRF_HEADER])) throw new AppError('CSRF_FAILED');
  });
}

/** Cross-site refusals for a state-changing request that a browser may have sent on its own. */
function checkBrowserRequest(req: FastifyRequest, publicOrigin: string, cookieAuthenticated: boolean): void {
  const site = header(req, 'sec-fetch-site');
  if (site !== undefined && !ALLOWED_FETCH_SITES.has(site.toLowerCase())) {
    throw new AppError('CSRF_FAILED', `Cross-site requests are refused (Sec-Fetch-Site: ${site})`);
  }
  const origin = header(req, 'origin');
  if (origin !== undefined && !sameOrigin(req, origin, publicOrigin)) {
    throw new AppError('CSRF_FAILED', 'Cross-origin requests are refused');
  }
  if (cookieAuthenticated && origin === undefined) {
    // Browsers send Origin on every state-changing request; the Referer is a fallback for old ones.
    const referer = header(req, 'referer');
    if (referer === undefined || !sameOrigin(req, referer, publicOrigin)) {
      throw new AppError('CSRF_FAILED', 'A signed-in request must come from this site (Origin header)');
    }
  }
  const type = header(req, 'content-type');
  if (type !== undefined && SIMPLE_BODY_TYPES.has(type.split(';')[0]!.trim().toLowerCase())) {
    throw new AppError('UNSUPPORTED_MEDIA_TYPE', `Send application/json here, not ${type.split(';')[0]!.trim()}`);
  }
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Whether an Origin or Referer value is this site: the public URL's origin or the request's own. */
export function sameOrigin(req: FastifyRequest, value: string, publicOrigin: string): boolean {
  const origin = originOf(value);
  if (origin === null) return false;
  return origin === publicOrigin || origin === originOf(`${req.protocol}://${req.host}`);
}

function originOf(value: string): string | null {
  try {
    const o = new URL(value).origin;
    return o === 'null' ? null : o;
  } catch {
    return null;
  }
}

/**
 * Whether the error or 404 reply takes the WeCom shape ({errcode, errmsg}, HTTP 200): the matched
 * route is under /cgi-bin/, or, when nothing matched, the decoded path is. Only the reply's shape
 * depends on this; no access decision does.
 */
export function wecomShaped(req: FastifyRequest): boolean {
  const url = req.routeOptions.url;
  if (url !== undefined) return url.startsWith('/cgi-bin/');
  const path = req.url.split('?')[0] ?? '';
  try {
    return decodeURIComponent(path).startsWith('/cgi-bin/');
  } catch {
    return false;
  }
}
