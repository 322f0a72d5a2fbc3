import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyReply } from 'fastify';

/**
 * The built console's index.html (packages/console/dist), when there is one. The landing paths
 * (/connect/hardware, the add-device links, /login) serve it so the console's own pages take over;
 * until the console is built they answer with small server-rendered pages instead.
 */
const DEFAULT_INDEX = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../console/dist/index.html');

/** Where the built console is; null serves the server-rendered pages (tests of those pages set it). */
export const consoleShell: { file: string | null } = { file: DEFAULT_INDEX };

let cached: { file: string; mtimeMs: number; html: string } | null = null;

export function consoleIndexHtml(file = consoleShell.file): string | null {
  if (file === null) return null;
  let st: { mtimeMs: number };
  try {
    st = statSync(file);
  } catch {
    return null;
  }
  if (cached && cached.file === file && cached.mtimeMs === st.mtimeMs) return cached.html;
  const html = readFileSync(file, 'utf8');
  cached = { file, mtimeMs: st.mtimeMs, html };
  return html;
}

/**
 * The console's policy: Vite's build has no inline script; the camera frames stay in the page (blob:,
 * mediastream:). Ant Design writes its styles at run time (CSS-in-JS), so style elements carry a fresh
 * per-response nonce, handed to the app in a meta tag (shell/admin-layout.tsx gives it to antd); no
 * 'unsafe-inline'.
 */
export function consoleCsp(nonce: string): string {
  return (
    `default-src 'self'; script-src 'self'; style-src 'self' 'nonce-${nonce}'; img-src 'self' data: blob:; ` +
    "media-src 'self' blob: mediastream:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; " +
    "frame-ancestors 'none'"
  );
}

/** Sends the built console with its policy and a fresh style nonce; false while it is not built. */
export function sendConsoleShell(reply: FastifyReply, file = consoleShell.file): boolean {
  const html = consoleIndexHtml(file);
  if (html === null) return false;
  const nonce = randomBytes(16).toString('base64');
  reply
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('content-security-policy', consoleCsp(nonce))
    .header('x-frame-options', 'DENY')
    .send(withNonceMeta(html, `<meta name="csp-nonce" content="${nonce}" />`));
  return true;
}

/** Puts the meta tag first in <head>, or right after the doctype of a page that has none. */
function withNonceMeta(html: string, meta: string): string {
  if (/<head[^>]*>/i.test(html)) return html.replace(/<head[^>]*>/i, (h) => `${h}\n    ${meta}`);
  return html.replace(/^(<!doctype html>)?/i, (d) => `${d}${meta}`);
}
