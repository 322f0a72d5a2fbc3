import type { FastifyHelmetOptions } from '@fastify/helmet';

/**
 * The Content-Security-Policy every response gets unless its route sets a stricter one (the
 * console shell sets the same; the server-rendered landing pages set a per-response nonce policy).
 * Vite's build has no inline script or style; the scan page's camera frames stay in the page
 * (blob:/mediastream:). No upgrade-insecure-requests: plain-HTTP deployments must keep working.
 */
export const DEFAULT_CSP_DIRECTIVES = {
  defaultSrc: ["'self'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'", 'data:', 'blob:'],
  mediaSrc: ["'self'", 'blob:', 'mediastream:'],
  connectSrc: ["'self'"],
  objectSrc: ["'none'"],
  baseUri: ["'none'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
};

/**
 * /docs (swagger-ui): its index.html loads only its own files, no inline script. Its bundle adds
 * one fixed <style> element, allowed by hash (seen in Chromium with @fastify/swagger-ui 6.1); if an
 * upgrade changes it, that cosmetic style is blocked and the page still works.
 */
const SWAGGER_UI_STYLE_HASH = "'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='";
export const DOCS_CSP =
  `default-src 'self'; script-src 'self'; script-src-attr 'none'; style-src 'self' ${SWAGGER_UI_STYLE_HASH}; img-src 'self' data:; ` +
  "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/** One year, the usual preload-list minimum; only sent when this process terminates TLS itself. */
const HSTS_MAX_AGE_SEC = 365 * 24 * 3600;

/**
 * @fastify/helmet for every response: nosniff, no framing (DENY + frame-ancestors 'none'),
 * Referrer-Policy same-origin (stricter than strict-origin-when-cross-origin: nothing leaves the
 * site), the CSP above, and HSTS only when `tls` (a certificate is configured): over plain HTTP it
 * means nothing, and behind a proxy the proxy owns it.
 */
export function helmetOptions(tls: boolean): FastifyHelmetOptions {
  return {
    global: true,
    contentSecurityPolicy: { useDefaults: false, directives: DEFAULT_CSP_DIRECTIVES },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'same-origin' },
    hsts: tls ? { maxAge: HSTS_MAX_AGE_SEC, includeSubDomains: false } : false,
    // Firmware files and label images are fetched by devices and tools, not embedded cross-site.
    crossOriginResourcePolicy: { policy: 'same-origin' },
    crossOriginEmbedderPolicy: false,
  };
}
