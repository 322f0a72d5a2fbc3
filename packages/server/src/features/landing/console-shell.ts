import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

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
