/**
 * Just enough RFC 6265 for two cookies. Written here rather than taken from @fastify/cookie, whose
 * `cookie` dependency now needs Node 22 (Bindery supports Node 20).
 */
export const SESSION_COOKIE = 'bindery_session';
/** Readable by the console's scripts: it echoes the value in x-csrf-token (double submit). */
export const CSRF_COOKIE = 'bindery_csrf';
export const CSRF_HEADER = 'x-csrf-token';

/** The value of cookie `name` in a Cookie header, or null. */
export function readCookie(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    let v = part.slice(eq + 1).trim();
    if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1);
    try {
      return decodeURIComponent(v);
    } catch {
      return null;
    }
  }
  return null;
}

export interface CookieOptions {
  maxAgeSec: number;
  httpOnly: boolean;
  secure: boolean;
  sameSite?: 'Lax' | 'Strict';
  path?: string;
}

/** A Set-Cookie value. A maxAgeSec of 0 deletes the cookie. */
export function serializeCookie(name: string, value: string, o: CookieOptions): string {
  const parts = [
    `${name}=${encodeURIComponent(value)}`,
    `Path=${o.path ?? '/'}`,
    `Max-Age=${Math.max(0, Math.floor(o.maxAgeSec))}`,
  ];
  if (o.maxAgeSec <= 0) parts.push('Expires=Thu, 01 Jan 1970 00:00:00 GMT');
  parts.push(`SameSite=${o.sameSite ?? 'Lax'}`);
  if (o.httpOnly) parts.push('HttpOnly');
  if (o.secure) parts.push('Secure');
  return parts.join('; ');
}
