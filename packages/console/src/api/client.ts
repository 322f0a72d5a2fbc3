import createClient, { type Middleware } from 'openapi-fetch';
import type { paths } from './schema.js';

/**
 * The console's one door to the server: openapi-fetch typed by the paths generated from /openapi.json,
 * same-origin with the session cookie; writes carry the CSRF token (docs/security.md, finding 1).
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

const CSRF_COOKIE = 'bindery_csrf';

export function csrfToken(): string {
  const c = document.cookie.split('; ').find((x) => x.startsWith(`${CSRF_COOKIE}=`));
  return c ? decodeURIComponent(c.slice(CSRF_COOKIE.length + 1)) : '';
}

const csrf: Middleware = {
  onRequest({ request }) {
    request.headers.set('accept', 'application/json');
    if (request.method !== 'GET' && request.method !== 'HEAD') request.headers.set('x-csrf-token', csrfToken());
    return request;
  },
};

export const api = createClient<paths>({ baseUrl: '', credentials: 'same-origin' });
api.use(csrf);

type ErrorBody = { error?: { code?: string; message?: string; details?: unknown } } | undefined;

/** The data of an openapi-fetch answer, or an ApiError carrying the server's code and message. */
export async function unwrap<T>(p: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  let r: { data?: T; error?: unknown; response: Response };
  try {
    r = await p;
  } catch {
    throw new ApiError(0, 'NETWORK', 'The server cannot be reached; check your connection');
  }
  if (!r.response.ok) {
    const e = (r.error as ErrorBody)?.error;
    throw new ApiError(
      r.response.status,
      e?.code ?? `HTTP_${r.response.status}`,
      e?.message ?? `HTTP ${r.response.status}`,
      e?.details,
    );
  }
  return r.data as T;
}
