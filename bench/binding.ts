/**
 * bench:binding — the people side of binding (issue 4) over real HTTP on 127.0.0.1, on SQLite and
 * (when DATABASE_URL is set) PostgreSQL:
 *
 *   1. binds by typed SN through POST /api/v1/bind (session cookie + CSRF, rules, audit, events,
 *      notifications), 8 at a time — against the baseline of the bare binding core called in-process;
 *   2. resolving a fresh dynamic QR (POST /api/v1/scan/resolve: parse, SecretNo unseal, §A4 signature,
 *      replay lookup, owner options);
 *   3. an organisation's device list, one page of 50, for a device admin (scope filter over the
 *      visibility table) against a super admin (no filter), with every device bound;
 *   4. the time from sending a bind to its "device bound" notification arriving on an open
 *      Server-Sent Events stream.
 *
 *   npm run bench:binding                      # BENCH_DEVICES=2000 by default
 *   flock /tmp/bench.lock npm run bench:binding
 */
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { dynamicBindUrl, signBindQr } from '@bindery/protocol';
import { CLAIM_BUDGET, ClaimBudget } from '../packages/server/src/features/binding/bind-proof.js';
import { verifCodeFor } from '../packages/server/src/features/binding/scan.js';
import type { NewDevice } from '../packages/server/src/features/devices/devices.repo.js';
import { login, PASSWORD } from '../packages/server/src/features/people/people.fixture.js';
import { SYSTEM_CLI } from '../packages/server/src/shared/principal.js';
import { postgresBackend, postgresUrl, sqliteBackend, type TestBackend } from '../packages/server/src/testing/backends.js';
import { startHarness } from '../packages/server/src/testing/harness.js';
import { now, pool } from './pool.js';

const DEVICES = Number(process.env.BENCH_DEVICES ?? 2000);
const CONCURRENCY = 8;
const DEPARTMENTS = 10;

function machine(): string {
  const cpus = os.cpus();
  return [
    `CPU: ${cpus[0]?.model ?? 'unknown'} × ${cpus.length} cores`,
    `RAM: ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `Node: ${process.version}`,
    `load average: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  ].join('\n');
}

function stats(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!.toFixed(1);
  return `p50 ${q(0.5)} ms, p95 ${q(0.95)} ms, p99 ${q(0.99)} ms`;
}

async function runOn(backend: TestBackend): Promise<string[]> {
  const h = await startHarness(backend, { realClock: true });
  const out: string[] = [];
  try {
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
    const s = h.services;
    // One bench account binds thousands by typed SN (with each label's code); people get 20 such
    // claims an hour (docs/binding.md), so the bench lifts its budget to measure the path, not the limit.
    Object.assign(s.binding, { claims: new ClaimBudget(h.deps.limiter, { ...CLAIM_BUDGET, points: 1_000_000 }) });
    const vendor = await s.vendors.create(SYSTEM_CLI, { name: 'Bench' });
    const { model } = await s.models.create(SYSTEM_CLI, vendor.id, { name: 'Bench Model' });
    const secrets = new Map<string, string>();
    const register = async (prefix: string, n: number) => {
      const rows: NewDevice[] = [];
      for (let i = 0; i < n; i++) {
        const sn = `${prefix}${String(i).padStart(6, '0')}`;
        const row = s.devices.newDeviceRow(model, sn, Date.now());
        secrets.set(sn, h.deps.secrets.open(row.secret_no_enc));
        rows.push(row);
      }
      await h.deps.db.kysely.transaction().execute(async (trx) => s.devices.repo.with(trx).insertMany(rows));
    };
    await register('HB', DEVICES);
    await register('CB', DEVICES);
    await register('QR', 500);

    const boss = await s.accounts.createUser(SYSTEM_CLI, { username: 'boss', password: PASSWORD });
    const admin = await s.accounts.createUser(SYSTEM_CLI, { username: 'scoped', password: PASSWORD });
    const { organisation } = await s.organisations.create(SYSTEM_CLI, { name: 'Bench Org', superAdmin: { userId: boss.id } });
    const bossP = { kind: 'user' as const, userId: boss.id, isOperator: false };
    const depts: string[] = [];
    for (let i = 0; i < DEPARTMENTS; i++)
      depts.push((await s.organisations.createDepartment(bossP, organisation.id, { name: `D${i}` })).id);
    await s.organisations.addMember(SYSTEM_CLI, organisation.id, {
      userId: admin.id,
      role: 'device_admin',
      departmentId: depts[0],
      scope: [depts[0]!],
    });

    const cookieOf = async (username: string) => {
      const b = await login(h.app, username, PASSWORD);
      return { cookie: b.cookie, csrf: b.csrf };
    };
    const bossC = await cookieOf('boss');
    const adminC = await cookieOf('scoped');
    const post = (c: { cookie: string; csrf: string }, path: string, body: unknown) =>
      fetch(`${base}${path}`, {
        method: 'POST',
        // A browser names its origin on state-changing requests; the gate requires it with a cookie.
        headers: { cookie: c.cookie, 'x-csrf-token': c.csrf, origin: base, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });

    // 1. HTTP binds vs the bare core.
    const http = await pool(DEVICES, CONCURRENCY, async (i) => {
      const sn = `HB${String(i).padStart(6, '0')}`;
      const r = await post(bossC, '/api/v1/bind', {
        sn,
        verif_code: verifCodeFor(secrets.get(sn)!, sn),
        owner: { type: 'org', id: organisation.id },
        visible_to: { departments: [depts[i % DEPARTMENTS]] },
      });
      if (r.status !== 201) throw new Error(`bind ${i}: ${r.status} ${await r.text()}`);
      await r.arrayBuffer();
    });
    const core = await pool(DEVICES, CONCURRENCY, async (i) => {
      await s.binding.bind(SYSTEM_CLI, `CB${String(i).padStart(6, '0')}`, { type: 'org', id: organisation.id });
    });
    out.push(
      `bind by SN over HTTP (${DEVICES}, ${CONCURRENCY} at a time): ${(DEVICES / http.wallS).toFixed(0)} binds/s, ${stats(http.lat)}`,
      `  baseline, binding core in-process: ${(DEVICES / core.wallS).toFixed(0)} binds/s, ${stats(core.lat)}`,
    );

    // 2. Resolving fresh dynamic QR codes.
    const qrs = [...secrets.keys()]
      .filter((k) => k.startsWith('QR'))
      .map((sn, i) => {
        const f = { sn, timestamp: String(Math.floor(Date.now() / 1000)), nonce: String(1000 + i) };
        return dynamicBindUrl(h.deps.config.publicUrl, { ...f, signature: signBindQr(f, secrets.get(sn)!) });
      });
    const resolve = await pool(qrs.length, CONCURRENCY, async (i) => {
      const r = await post(bossC, '/api/v1/scan/resolve', { content: qrs[i] });
      const j = (await r.json()) as { validity: string };
      if (j.validity !== 'ok') throw new Error(`resolve ${i}: ${JSON.stringify(j)}`);
    });
    out.push(
      `resolve a dynamic QR (${qrs.length}, ${CONCURRENCY} at a time): ${(qrs.length / resolve.wallS).toFixed(0)} req/s, ${stats(resolve.lat)}`,
    );

    // 3. Organisation device lists.
    const list = async (c: { cookie: string }, n: number) =>
      pool(n, 1, async (i) => {
        const r = await fetch(`${base}/api/v1/orgs/${organisation.id}/devices?limit=50${i % 2 ? '&q=hb00' : ''}`, {
          headers: { cookie: c.cookie },
        });
        const j = (await r.json()) as { devices: unknown[] };
        if (!Array.isArray(j.devices) || j.devices.length === 0) throw new Error('empty list');
      });
    const scoped = await list(adminC, 200);
    const all = await list(bossC, 200);
    out.push(
      `org device list, page of 50 of ${2 * DEVICES} bound devices, device admin (scope = 1 of ${DEPARTMENTS} departments): ${stats(scoped.lat)}`,
      `  baseline, super admin (no scope filter): ${stats(all.lat)}`,
    );

    // 4. Bind → notification on an open SSE stream.
    const ac = new AbortController();
    const res = await fetch(`${base}/api/v1/notifications/stream`, { headers: { cookie: bossC.cookie }, signal: ac.signal });
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    const waiting = new Map<string, (t: number) => void>();
    let buf = '';
    const pump = (async () => {
      for (;;) {
        const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
        if (done) return;
        buf += dec.decode(value, { stream: true });
        for (let k = buf.indexOf('\n\n'); k >= 0; k = buf.indexOf('\n\n')) {
          const block = buf.slice(0, k);
          buf = buf.slice(k + 2);
          const m = /event: notification\ndata: (.*)/.exec(block);
          if (m) waiting.get((JSON.parse(m[1]!) as { data: { sn: string } }).data.sn)?.(now());
        }
      }
    })();
    await register('NT', 200);
    const notif: number[] = [];
    for (let i = 0; i < 200; i++) {
      const sn = `NT${String(i).padStart(6, '0')}`;
      const arrived = new Promise<number>((r) => waiting.set(sn, r));
      const t0 = now();
      const r = await post(bossC, '/api/v1/bind', {
        sn,
        verif_code: verifCodeFor(secrets.get(sn)!, sn),
        owner: { type: 'org', id: organisation.id },
      });
      await r.arrayBuffer();
      notif.push((await arrived) - t0);
    }
    ac.abort();
    await pump;
    out.push(`bind sent → "device bound" on the SSE stream (200, one at a time): ${stats(notif)}`);
  } finally {
    await h.close();
  }
  return out;
}

const results: Array<[string, string[]]> = [['sqlite', await runOn(sqliteBackend)]];
if (postgresUrl) results.push(['postgres', await runOn(postgresBackend)]);
console.log(machine());
for (const [name, lines] of results) {
  console.log(`\n== ${name} ==`);
  for (const l of lines) console.log(l);
}
