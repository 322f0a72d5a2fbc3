import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { serverOpenApi } from '../scripts/api-types.js';

/**
 * Issue 12: no action the API offers an organisation admin, an operator (or, with issue 13, a vendor) is
 * missing from the console. This lists the OpenAPI operations of the console's tags and the calls the
 * console's source makes (typed client paths, the phone pages' URL strings, download links), and fails on
 * an operation no page calls that is not in the exclusion table of docs/console.md (each with its reason).
 */
const HERE = path.dirname(fileURLToPath(import.meta.url));
const SRC = path.resolve(HERE, '../src');
const DOC = path.resolve(HERE, '../../../docs/console.md');

/** The tags whose operations people run from the console; the wire surfaces (WeCom, v3, ops) are not. */
const CONSOLE_TAGS = [
  'accounts',
  'audit',
  'batches',
  'binding',
  'callbacks',
  'campaigns',
  'devices',
  'firmware',
  'gateway',
  'inspections',
  'instance',
  'merchants',
  'models',
  'notifications',
  'organisations',
  'people',
  'relations',
  'vendors',
];

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    if (statSync(p).isDirectory()) return files(p);
    return /\.(ts|tsx)$/.test(f) && !f.endsWith('.d.ts') ? [p] : [];
  });
}

/** Every `/api/v1/...` path the console's source names, with `${...}` parts as parameters. */
function consoleCalls(): Array<{ method: string | null; path: string }> {
  const out: Array<{ method: string | null; path: string }> = [];
  for (const f of files(SRC)) {
    const src = readFileSync(f, 'utf8');
    // Typed client: api.GET('/api/v1/orgs/{orgId}', …) — the method is known.
    for (const m of src.matchAll(/\bapi\.(GET|POST|PUT|PATCH|DELETE)\(\s*['"`](\/api\/v1\/[^'"`]+)['"`]/g)) {
      out.push({ method: m[1]!, path: m[2]! });
    }
    // Anything else: string and template literals naming an API path (the phone pages' calls, downloads, SSE).
    const literal = (s: string) => s.replace(/\$\{[^}]*\}/g, '{x}');
    for (const m of src.matchAll(/['"`](\/api\/v1\/[^'"`?\s]*)/g)) out.push({ method: null, path: literal(m[1]!) });
    // A base kept in a variable and extended later: const base = `/api/v1/devices/${sn}`; … `${base}/page`.
    for (const b of src.matchAll(/const (\w+) = `(\/api\/v1\/[^`]*)`/g)) {
      for (const m of src.matchAll(new RegExp(`\\$\\{${b[1]}\\}(/[^\`'"?\\s]*)`, 'g'))) {
        out.push({ method: null, path: literal(b[2]! + m[1]!) });
      }
    }
  }
  return out;
}

function matches(template: string, called: string): boolean {
  const re = new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`);
  if (re.test(called.replace(/\{[^}]+\}/g, 'X'))) return true;
  // A segment the page picks at run time (`${base}/actions/${action}`) stands for any value there.
  const calledRe = new RegExp(`^${called.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`);
  return calledRe.test(template.replace(/\{[^}]+\}/g, 'X'));
}

/** The exclusion table in docs/console.md: rows `| \`METHOD /path\` | reason |` under "Not in the console". */
function exclusions(): Map<string, string> {
  const doc = readFileSync(DOC, 'utf8');
  const section = doc.split(/^## Not in the console/m)[1]?.split(/^## /m)[0] ?? '';
  const out = new Map<string, string>();
  for (const m of section.matchAll(/^\|\s*`(GET|POST|PUT|PATCH|DELETE) ([^`]+)`\s*\|\s*([^|]+)\|/gm))
    out.set(`${m[1]} ${m[2]}`, m[3]!.trim());
  return out;
}

describe('the console covers the API', () => {
  let ops: Array<{ key: string; method: string; path: string; tag: string }>;
  beforeAll(async () => {
    const doc = (await serverOpenApi()) as { paths: Record<string, Record<string, { tags?: string[] }>> };
    ops = Object.entries(doc.paths).flatMap(([p, item]) =>
      Object.entries(item)
        .filter(([, op]) => (op.tags ?? []).some((t) => CONSOLE_TAGS.includes(t)))
        .map(([m, op]) => ({ key: `${m.toUpperCase()} ${p}`, method: m.toUpperCase(), path: p, tag: op.tags![0]! })),
    );
  }, 60_000);

  it('every operation of the console’s tags is called by a page or excluded with a reason', () => {
    const calls = consoleCalls();
    const excluded = exclusions();
    const uncovered = ops
      .filter((o) => !excluded.has(o.key))
      .filter((o) => !calls.some((c) => (c.method === null || c.method === o.method) && matches(o.path, c.path)))
      .map((o) => `${o.tag}: ${o.key}`);
    expect(uncovered).toEqual([]);
  });

  it('the exclusion table names only operations that exist and are not called after all', () => {
    const calls = consoleCalls();
    const keys = new Set(ops.map((o) => o.key));
    const stale = [...exclusions().keys()].filter((k) => {
      const [method, p] = k.split(' ') as [string, string];
      return !keys.has(k) || calls.some((c) => c.method === method && matches(p, c.path));
    });
    expect(stale).toEqual([]);
  });

  it('sees the console’s calls (the scan is not empty)', () => {
    const calls = consoleCalls();
    expect(calls.some((c) => c.path === '/api/v1/bind')).toBe(true);
    expect(calls.length).toBeGreaterThan(20);
  });
});
