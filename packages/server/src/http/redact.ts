/**
 * What logs must never print (finding 10). Redaction goes by the NAME of a query parameter or
 * object key, not by a fixed list, so a credential added later is covered without anyone
 * remembering this file: every name matching SENSITIVE_KEY is censored.
 */
export const SENSITIVE_KEY = /secret|token|key|signature|password|auth_code|active_code|login_code|hw_code|cookie|authorization/i;

const CENSOR = '[redacted]';

/** True when a parameter or key of this name carries a credential. */
export function isSensitiveKey(name: string): boolean {
  return SENSITIVE_KEY.test(name);
}

/** The URL with the value of every sensitive query parameter, and any fragment, replaced by [redacted]. */
export function redactUrl(url: string): string {
  // A fragment never reaches the server: a logged URL with one is a link Bindery made (an
  // invitation, a password reset), and its fragment is the token.
  const frag = url.indexOf('#');
  if (frag >= 0) return `${redactUrl(url.slice(0, frag))}#${CENSOR}`;
  const q = url.indexOf('?');
  if (q < 0) return url;
  const query = url.slice(q + 1);
  const parts = query.split('&').map((part) => {
    const eq = part.indexOf('=');
    if (eq < 0) return part;
    let name = part.slice(0, eq);
    try {
      name = decodeURIComponent(name.replace(/\+/g, ' '));
    } catch {
      // a malformed escape: judge the raw name
    }
    return isSensitiveKey(name) ? `${part.slice(0, eq + 1)}${CENSOR}` : part;
  });
  return `${url.slice(0, q + 1)}${parts.join('&')}`;
}

/**
 * A copy of `value` where every property whose name is sensitive holds [redacted] instead of a
 * string or structure (numbers, booleans and null stay: counts such as `tokens_revoked` are no
 * secret). Returns `value` itself when nothing needed censoring, so most log lines cost a walk
 * and no copy. Depth-bounded; class instances (errors, buffers, dates) are left to serializers.
 */
export function redactObject<T>(value: T, depth = 6): T {
  if (depth < 0 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    let out: unknown[] | null = null;
    value.forEach((v, i) => {
      const r = redactObject(v, depth - 1);
      if (r !== v) {
        out ??= [...value];
        out[i] = r;
      }
    });
    return (out ?? value) as T;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  let out: Record<string, unknown> | null = null;
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    let r: unknown = v;
    if (isSensitiveKey(k)) {
      if (v !== null && typeof v !== 'number' && typeof v !== 'boolean' && v !== undefined) r = CENSOR;
    } else if (k === 'url' && typeof v === 'string') r = redactUrl(v);
    else r = redactObject(v, depth - 1);
    if (r !== v) {
      out ??= { ...(value as Record<string, unknown>) };
      out[k] = r;
    }
  }
  return (out ?? value) as T;
}

/** Body and header paths pino must never print (kept: they also cover keys below the walk's depth). */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  '*.secret_no',
  '*.secret',
  '*.model_secret',
  '*.password',
  '*.device_secret',
  '*.seed_secret_no',
];
