import type { AddressInfo } from 'node:net';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeAccessTable } from '../../src/http/gate.js';
import { buildWorld, WHO, type Who, type World } from './authz-matrix.fixture.js';
import { type Req, ROWS, type Row } from './authz-matrix.rows.js';
import { ACCOUNTS_ROWS } from './authz-matrix.rows-accounts.js';
import { BLUETOOTH_ROWS } from './authz-matrix.rows-bluetooth.js';
import { CAMPAIGN_ROWS } from './authz-matrix.rows-campaigns.js';
import { FLEET_STATS_ROWS } from './authz-matrix.rows-fleet-stats.js';
import { LABELS_ROWS } from './authz-matrix.rows-labels.js';
import { OPERATOR_ROWS } from './authz-matrix.rows-operator.js';
import { ORG_DEVICES_ROWS } from './authz-matrix.rows-org-devices.js';
import { PAIRING_ROWS } from './authz-matrix.rows-pairing.js';
import { PEOPLE_ROWS } from './authz-matrix.rows-people.js';
import { VENDOR_FLEET_ROWS } from './authz-matrix.rows-vendor-fleet.js';
import { VENDOR_GAPS_ROWS } from './authz-matrix.rows-vendor-gaps.js';
import { VENDOR_ROLE_ROWS, withVendorRoles } from './authz-matrix.rows-vendor-roles.js';

/**
 * Issue 11: every route, as every principal. The table (authz-matrix.rows*.ts) states who is
 * allowed; this suite fails for any operation of /openapi.json or any hidden route that has no row,
 * for any row whose operation no longer exists, and for any principal that gets past (or is stopped
 * at) authorisation against the table.
 */
const TABLE: Row[] = withVendorRoles([
  ...ROWS,
  ...PEOPLE_ROWS,
  ...ACCOUNTS_ROWS,
  ...ORG_DEVICES_ROWS,
  ...OPERATOR_ROWS,
  ...PAIRING_ROWS,
  ...BLUETOOTH_ROWS,
  ...LABELS_ROWS,
  ...VENDOR_FLEET_ROWS,
  ...CAMPAIGN_ROWS,
  ...FLEET_STATS_ROWS,
  ...VENDOR_GAPS_ROWS,
  ...VENDOR_ROLE_ROWS,
]);
const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);

let w: World;
let base: string;

beforeAll(async () => {
  w = await buildWorld();
  await w.h.app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(w.h.app.server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await w?.close();
});

/** `:param` → `{param}`, as OpenAPI writes a path. */
const openApiPath = (p: string) => p.replace(/:(\w+)/g, '{$1}');

/**
 * Every operation: what /openapi.json documents, and every route Fastify registered, hidden ones
 * included, as the gate's onRoute hook recorded them (HEAD is implied by GET).
 */
async function operations(): Promise<{ documented: Set<string>; routed: Set<string> }> {
  const r = await w.h.app.inject({ method: 'GET', url: '/openapi.json' });
  expect(r.statusCode).toBe(200);
  const doc = r.json() as { paths: Record<string, Record<string, unknown>> };
  const documented = new Set<string>();
  for (const [p, item] of Object.entries(doc.paths)) {
    for (const m of Object.keys(item)) if (METHODS.has(m.toUpperCase())) documented.add(`${m.toUpperCase()} ${p}`);
  }
  const routed = new Set<string>();
  for (const g of routeAccessTable(w.h.app)) if (METHODS.has(g.method)) routed.add(`${g.method} ${openApiPath(g.url)}`);
  return { documented, routed };
}

/**
 * A second, independent net: Fastify's own route tree (printRoutes), for a route registered where
 * the gate's onRoute hook did not see it. The printed radix tree can merge a wildcard into the
 * wrong branch, so only paths Fastify confirms (hasRoute) count.
 */
function routeTree(): Set<string> {
  const out = new Set<string>();
  const stack: string[] = [];
  for (const line of w.h.app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^((?:│ {3}| {4})*)[├└]── (\S+)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    const url = (depth > 0 ? stack[depth - 1]! : '') + m[2]!;
    stack[depth] = url;
    stack.length = depth + 1;
    for (const method of (m[3] ?? '').split(', ')) {
      if (!METHODS.has(method) || !w.h.app.hasRoute({ method: method as 'GET', url })) continue;
      // A plugin's '/' route is registered twice ('/docs' and '/docs/'), one route with one config.
      out.add(`${method} ${openApiPath(url.length > 1 ? url.replace(/\/$/, '') : url)}`);
    }
  }
  return out;
}

const allowedSet = (row: Row): Set<Who> =>
  new Set(row.allow === 'public' ? WHO : row.allow === 'signature' ? [] : (row.allow as readonly Who[]));

interface Answer {
  status: number;
  body: string;
}

let addr = 0;
async function send(row: Row, who: Who, req: Req): Promise<Answer> {
  const method = row.op.split(' ')[0] as InjectOptions['method'];
  const headers: Record<string, string> = { ...req.headers };
  if (who !== 'anonymous') headers.authorization = `Bearer ${w.tokens[who]}`;
  if (row.stream) {
    // An allowed stream never ends: read the status line, then hang up.
    const ac = new AbortController();
    const res = await fetch(base + req.url, { method, headers, signal: ac.signal });
    const body = res.ok ? '' : await res.text();
    ac.abort();
    return { status: res.status, body };
  }
  // Each request from its own address: per-address limits must not decide a row.
  addr++;
  const opts: InjectOptions = { method, url: req.url, headers, remoteAddress: `10.77.${(addr >> 8) & 255}.${addr & 255}` };
  if (req.payload !== undefined) {
    opts.payload = req.payload as InjectOptions['payload'];
    if (!headers['content-type'] && !Buffer.isBuffer(req.payload) && typeof req.payload !== 'string')
      headers['content-type'] = 'application/json';
  }
  const r: LightMyRequestResponse = await w.h.app.inject(opts);
  return { status: r.statusCode, body: r.body };
}

const needsPrincipal = (row: Row) => row.allow !== 'signature' && !allowedSet(row).has('anonymous');

/** What is wrong with one answer, or null. */
function judge(row: Row, who: Who, a: Answer): string | null {
  const path = row.op.split(' ')[1]!;
  const short = `${a.status} ${a.body.slice(0, 160)}`;
  if (row.allow === 'signature') {
    if (path.startsWith('/cgi-bin/')) {
      const errcode = (JSON.parse(a.body) as { errcode?: number }).errcode;
      const ok = a.status === 200 && typeof errcode === 'number' && errcode !== 0 && (row.wecomErrcode ?? errcode) === errcode;
      return ok ? null : `expected WeCom errcode ${row.wecomErrcode ?? '≠ 0'}, got ${short}`;
    }
    return a.status === 401 ? null : `expected 401 (no merchant signature), got ${short}`;
  }
  if (row.either?.includes(who)) {
    return a.status < 500 || row.alsoOk?.includes(a.status) ? null : `expected an answer, got ${short}`;
  }
  if (allowedSet(row).has(who)) {
    if (a.status >= 500 && !row.alsoOk?.includes(a.status)) return `allowed, but ${short}`;
    if (a.status === 401 || a.status === 403) return `allowed, but refused: ${short}`;
    if (a.status === 404 && !row.allow404) return `allowed, but 404: ${short}`;
    for (const secret of row.hidden?.(w, who) ?? []) if (a.body.includes(secret)) return `sees ${secret} it must not`;
    return null;
  }
  if (who === 'anonymous') return a.status === 401 ? null : `anonymous must get 401, got ${short}`;
  const refuse = row.refuse?.(who) ?? [403, 404];
  return refuse.includes(a.status) ? null : `must be refused (${refuse.join('/')}), got ${short}`;
}

describe('authorisation matrix', () => {
  it('places every routed operation (OpenAPI and hidden) in the table, and only those', async () => {
    const { documented, routed } = await operations();
    const table = new Set(TABLE.map((r) => r.op));
    const duplicates = TABLE.map((r) => r.op).filter((op, i, all) => all.indexOf(op) !== i);
    const all = new Set([...documented, ...routed]);
    const missing = [...all].filter((op) => !table.has(op)).sort();
    const stale = TABLE.filter((r) => !r.optional && !all.has(r.op)).map((r) => r.op);
    expect({ missing, stale, duplicates }).toEqual({ missing: [], stale: [], duplicates: [] });
    // The onRoute record must hold the documented ones and Fastify's own tree (a route registered
    // before the gate would escape it); the tree must not come out empty.
    const tree = routeTree();
    expect(tree.size).toBeGreaterThan(100);
    expect([...documented, ...tree].filter((op) => !routed.has(op))).toEqual([]);
  });

  it("agrees with each route's declared gate access (public / authenticated / external)", () => {
    const rows = new Map(TABLE.map((r) => [r.op, r]));
    const wrong: string[] = [];
    const seen = new Set<string>();
    for (const g of routeAccessTable(w.h.app)) {
      const op = `${g.method} ${openApiPath(g.url)}`;
      const row = rows.get(op);
      if (!row || g.method === 'HEAD') continue;
      seen.add(op);
      // Anonymous callers allowed ⇔ public; own signatures ⇔ external; everything else needs a principal.
      const want = row.allow === 'signature' ? 'external' : allowedSet(row).has('anonymous') ? 'public' : 'authenticated';
      if (g.access !== want) wrong.push(`${op}: gate says ${g.access}, the matrix ${want}`);
    }
    expect(wrong).toEqual([]);
    // The gate saw every route of the table (else this check would pass on an empty list).
    expect(TABLE.filter((r) => !r.optional && !seen.has(r.op)).map((r) => r.op)).toEqual([]);
  });

  it('answers 401 to a malformed body from nobody on every state-changing /api route (finding: validation before authentication)', async () => {
    const problems: string[] = [];
    for (const row of TABLE) {
      if (!needsPrincipal(row) || !/^(POST|PUT|PATCH) \/api\//.test(row.op)) continue;
      const url = (await row.req({ w, who: 'anonymous', state: {} })).url;
      const a = await send(row, 'anonymous', { url, payload: '{"broken":', headers: { 'content-type': 'application/json' } });
      if (a.status !== 401) problems.push(`${row.op}: ${a.status} ${a.body.slice(0, 120)}`);
    }
    expect(problems).toEqual([]);
  });

  const ordered = [...TABLE.filter((r) => !r.last), ...TABLE.filter((r) => r.last)];
  for (const row of ordered) {
    it(row.finding ? `${row.op} (finding: ${row.finding})` : row.op, async () => {
      const problems: string[] = [];
      for (const who of WHO) {
        const c = { w, who, state: {} };
        const a = await send(row, who, await row.req(c));
        const p = judge(row, who, a) ?? (await row.effect?.(c)) ?? null;
        await row.after?.(c);
        if (p) problems.push(`${who}: ${p}`);
      }
      expect(problems).toEqual([]);
    });
  }
});
