import type { FastifyRequest } from 'fastify';
import { AppError } from '../errors.js';
import type { Principal } from '../shared/principal.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/** The caller, or 401. The gate (http/gate.ts) resolved the Bearer token or session cookie. */
export function principalOf(req: FastifyRequest): Principal {
  if (!req.principal) throw new AppError('UNAUTHENTICATED', 'Send Authorization: Bearer <token>');
  return req.principal;
}

export function bearerToken(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  if (!h) return null;
  const m = /^Bearer\s+(\S+)$/i.exec(h);
  return m ? m[1]! : null;
}
