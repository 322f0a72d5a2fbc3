/**
 * bench:login — console sign-in over real HTTP on 127.0.0.1 (SQLite): `POST /api/v1/session` with
 * the right password for USERS different people, CONCURRENCY at a time, then the same with a wrong
 * password for unknown usernames (the path that must cost the same work as a known one). Prints
 * the latencies and the machine; issue 11 asks that login be no slower than before the security
 * work, so run it on both trees in one sitting and compare.
 *
 *   npm run bench:login                 # BENCH_LOGINS=400 by default
 */
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { SYSTEM_CLI } from '../packages/server/src/shared/principal.js';
import { sqliteBackend } from '../packages/server/src/testing/backends.js';
import { startHarness } from '../packages/server/src/testing/harness.js';
import { pool } from './pool.js';

const LOGINS = Number(process.env.BENCH_LOGINS ?? 400);
const USERS = 50;
const CONCURRENCY = 4;
const UNKNOWN = 10;
const PASSWORD = 'a long bench password';

function stats(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!.toFixed(1);
  return `p50 ${q(0.5)} ms, p99 ${q(0.99)} ms`;
}

async function main(): Promise<void> {
  const cpus = os.cpus();
  console.log(`CPU: ${cpus[0]?.model ?? 'unknown'} × ${cpus.length} cores, Node ${process.version}`);
  console.log(
    `load average at start: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  const h = await startHarness(sqliteBackend, { realClock: true });
  try {
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}/api/v1/session`;
    for (let i = 0; i < USERS; i++)
      await h.services.accounts.createUser(SYSTEM_CLI, { username: `bench-user-${i}`, password: PASSWORD });
    const post = async (username: string, password: string, want: number) => {
      const r = await fetch(base, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username, password }),
      });
      await r.arrayBuffer();
      if (r.status !== want) throw new Error(`login ${username}: ${r.status}, expected ${want}`);
    };
    await pool(20, CONCURRENCY, (i) => post(`bench-user-${i % USERS}`, PASSWORD, 201)); // warm-up
    const ok = await pool(LOGINS, CONCURRENCY, (i) => post(`bench-user-${i % USERS}`, PASSWORD, 201));
    console.log(
      `login, right password (${LOGINS}, ${CONCURRENCY} at a time): ${(LOGINS / ok.wallS).toFixed(1)}/s, ${stats(ok.lat)}`,
    );
    // Unknown usernames, each tried once and fewer than any address lock allows: must not answer faster.
    const unknown = await pool(UNKNOWN, 1, (i) => post(`nobody${i}`, 'wrong', 401));
    console.log(`login, unknown user (${UNKNOWN}, one at a time): ${stats(unknown.lat)}`);
  } finally {
    await h.close();
  }
  console.log(
    `load average at end: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
}

await main();
