import type { FastifyReply, FastifyRequest } from 'fastify';
import { CSRF_COOKIE, readCookie, SESSION_COOKIE, serializeCookie } from './cookies.js';
import { type PeopleService, SESSION_MAX_MS, type SessionInfo } from './people.service.js';

const sessions = new WeakMap<FastifyRequest, SessionInfo>();

/** The console session that authenticated this request, if a cookie did. */
export function sessionOf(req: FastifyRequest): SessionInfo | null {
  return sessions.get(req) ?? null;
}

/**
 * Resolves the session cookie into the request's principal. Only the gate (http/gate.ts) calls
 * this, when no Bearer token was sent; the gate also decides CSRF, on the route that matched.
 */
export async function resolveSessionCookie(people: PeopleService, req: FastifyRequest): Promise<SessionInfo | null> {
  const token = readCookie(req.headers.cookie, SESSION_COOKIE);
  if (!token) return null;
  const s = await people.resolveSession(token);
  if (!s) return null;
  req.principal = s.principal;
  sessions.set(req, s);
  return s;
}

/**
 * Secure when the public URL is https (the caller's `secure`) or this request came over TLS (our
 * own certificate, or a trusted proxy's x-forwarded-proto): never sent back over plain HTTP then.
 */
function secureFor(reply: FastifyReply, secure: boolean): boolean {
  return secure || reply.request.protocol === 'https';
}

/**
 * Sets the session cookie (HttpOnly) and the CSRF cookie (readable by the console), both
 * SameSite=Lax. The cookies live as long as a session can at most; the server decides when the
 * session really ends.
 */
export function setSessionCookies(reply: FastifyReply, token: string, s: SessionInfo, httpsPublicUrl: boolean): void {
  const maxAgeSec = Math.floor(SESSION_MAX_MS / 1000);
  const secure = secureFor(reply, httpsPublicUrl);
  reply.header('set-cookie', [
    serializeCookie(SESSION_COOKIE, token, { maxAgeSec, httpOnly: true, secure, sameSite: 'Lax' }),
    serializeCookie(CSRF_COOKIE, s.csrfToken, { maxAgeSec, httpOnly: false, secure, sameSite: 'Lax' }),
  ]);
}

export function clearSessionCookies(reply: FastifyReply, httpsPublicUrl: boolean): void {
  const secure = secureFor(reply, httpsPublicUrl);
  reply.header('set-cookie', [
    serializeCookie(SESSION_COOKIE, '', { maxAgeSec: 0, httpOnly: true, secure }),
    serializeCookie(CSRF_COOKIE, '', { maxAgeSec: 0, httpOnly: false, secure }),
  ]);
}
