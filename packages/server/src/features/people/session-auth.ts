import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.js';
import { CSRF_COOKIE, CSRF_HEADER, readCookie, SESSION_COOKIE, serializeCookie } from './cookies.js';
import { type PeopleService, SESSION_MAX_MS, type SessionInfo } from './people.service.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Logging in replaces whatever session the browser had; it needs no CSRF token. */
const CSRF_EXEMPT = new Set(['POST /api/v1/session']);

const sessions = new WeakMap<FastifyRequest, SessionInfo>();

/** The console session that authenticated this request, if a cookie did. */
export function sessionOf(req: FastifyRequest): SessionInfo | null {
  return sessions.get(req) ?? null;
}

/**
 * Resolves the session cookie into the request's principal (app.ts calls this when no Bearer
 * token was sent). A state-changing /api request authenticated by the cookie must carry the
 * session's CSRF token in x-csrf-token: a cross-site page can make the browser send the cookie,
 * but cannot read the token. Bearer requests need none — browsers never attach those on their own.
 */
export async function authenticateSession(people: PeopleService, req: FastifyRequest): Promise<void> {
  const token = readCookie(req.headers.cookie, SESSION_COOKIE);
  if (!token) return;
  const s = await people.resolveSession(token);
  if (!s) return;
  req.principal = s.principal;
  sessions.set(req, s);
  const path = req.url.split('?')[0] ?? '';
  if (!path.startsWith('/api/') || SAFE_METHODS.has(req.method) || CSRF_EXEMPT.has(`${req.method} ${path}`)) return;
  if (!people.csrfMatches(s, req.headers[CSRF_HEADER])) throw new AppError('CSRF_FAILED');
}

/**
 * Sets the session cookie (HttpOnly) and the CSRF cookie (readable by the console). The cookies
 * live as long as a session can at most; the server decides when the session really ends.
 */
export function setSessionCookies(reply: FastifyReply, token: string, s: SessionInfo, secure: boolean): void {
  const maxAgeSec = Math.floor(SESSION_MAX_MS / 1000);
  reply.header('set-cookie', [
    serializeCookie(SESSION_COOKIE, token, { maxAgeSec, httpOnly: true, secure, sameSite: 'Lax' }),
    serializeCookie(CSRF_COOKIE, s.csrfToken, { maxAgeSec, httpOnly: false, secure, sameSite: 'Lax' }),
  ]);
}

export function clearSessionCookies(reply: FastifyReply, secure: boolean): void {
  reply.header('set-cookie', [
    serializeCookie(SESSION_COOKIE, '', { maxAgeSec: 0, httpOnly: true, secure }),
    serializeCookie(CSRF_COOKIE, '', { maxAgeSec: 0, httpOnly: false, secure }),
  ]);
}
