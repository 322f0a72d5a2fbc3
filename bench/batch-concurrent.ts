/**
 * Two label downloads at once (issue 16): one real server process (SQLite), two clients each
 * streaming the default zip (manifests + PNG + SVG + both PDFs) of its own 100 000-device batch
 * over HTTP, while a prober asks `/healthz` every 100 ms and binds one device (operator,
 * `POST /api/v1/devices/:sn/bind`) every 250 ms. Reports both downloads' times and sizes, the
 * probes' latencies (how many over 200 ms) and the server's RSS (sampled every 100 ms, and its
 * VmHWM at the end: every thread, the render workers included).
 *
 *   npm run bench:batch-concurrent -- [count=100000]
 *   flock /tmp/bench.lock npm run bench:batch-concurrent
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { buildServices, closeDeps, composeDeps, loadConfig } from '@bindery/server';
import { MAX_BATCH } from '../packages/server/src/features/production/production.service.js';
import { provision } from './gateway/provision.js';
import { startServer } from './gateway/server.js';

const count = Math.min(MAX_BATCH, Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? MAX_BATCH));
const LIMIT_MS = 200;

const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

function status(pid: number, key: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`${key}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

function stats(ms: number[]): string {
  if (ms.length === 0) return 'none';
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!.toFixed(1);
  const over = s.filter((x) => x > LIMIT_MS).length;
  return `${s.length} probes, p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${s[s.length - 1]!.toFixed(1)} ms, ${over} over ${LIMIT_MS} ms`;
}

/** Streams one download, discarding the bytes; resolves with its size and time. */
function download(url: string, token: string): Promise<{ bytes: number; seconds: number; status: number }> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { authorization: `Bearer ${token}` }, agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
      });
      res.on('end', () => resolve({ bytes, seconds: Number(process.hrtime.bigint() - t0) / 1e9, status: res.statusCode ?? 0 }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

async function timed(f: () => Promise<Response>, expect: number[]): Promise<number> {
  const t0 = performance.now();
  const res = await f();
  await res.arrayBuffer();
  if (!expect.includes(res.status)) throw new Error(`probe answered ${res.status}`);
  return performance.now() - t0;
}

async function main(): Promise<void> {
  const cpus = os.cpus();
  console.log(
    `# bench:batch-concurrent — two downloads of ${count} labels at once\n` +
      `CPU: ${cpus[0]?.model ?? 'unknown'} × ${cpus.length}, RAM ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}, load ${load()}\n`,
  );
  const p = await provision({ backend: 'sqlite', bound: 0, unbound: 2000 });
  try {
    const deps = await composeDeps(loadConfig({ ...p.env, BINDERY_LOG_LEVEL: 'silent' }));
    const batches: string[] = [];
    try {
      const s = buildServices(deps);
      for (const prefix of ['CCA', 'CCB']) {
        const b = await s.production.createBatch({ kind: 'system', name: 'bench' }, p.modelId, {
          count,
          pattern: { kind: 'counter', prefix, width: 8, checkChar: true },
        });
        batches.push(b.id);
      }
    } finally {
      await closeDeps(deps);
    }
    console.log(`created 2 batches of ${count} devices  [load ${load()}]`);

    const server = await startServer('bindery', p.env);
    const pid = server.pids[0]!;
    try {
      const base = server.url.replace(/^ws/, 'http').replace(/\/$/, '');
      const rssIdle = status(pid, 'VmRSS');
      let rssMax = rssIdle;
      const health: number[] = [];
      const binds: number[] = [];
      let running = true;
      const sampler = setInterval(() => {
        rssMax = Math.max(rssMax, status(pid, 'VmRSS'));
      }, 100);
      const healthLoop = (async () => {
        while (running) {
          health.push(await timed(() => fetch(`${base}/healthz`), [200]));
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      const bindLoop = (async () => {
        for (let i = 0; running && i < p.unbound.length; i++) {
          const sn = p.unbound[i]!.sn;
          binds.push(
            await timed(
              () =>
                fetch(`${base}/api/v1/devices/${sn}/bind`, {
                  method: 'POST',
                  headers: { authorization: `Bearer ${p.operatorToken}`, 'content-type': 'application/json' },
                  body: JSON.stringify({ owner_type: 'org', owner_id: p.orgId }),
                }),
              [200, 201, 204],
            ),
          );
          await new Promise((r) => setTimeout(r, 250));
        }
      })();
      const t0 = process.hrtime.bigint();
      const results = await Promise.all(batches.map((id) => download(`${base}/api/v1/batches/${id}/download`, p.operatorToken)));
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      running = false;
      clearInterval(sampler);
      await Promise.all([healthLoop, bindLoop]);
      const hwm = status(pid, 'VmHWM');
      for (const [k, r] of results.entries()) {
        console.log(
          `download ${k + 1}: HTTP ${r.status}, ${(r.bytes / 2 ** 20).toFixed(1)} MB in ${r.seconds.toFixed(1)} s (${Math.round(count / r.seconds)} labels/s)`,
        );
      }
      console.log(`both done in ${wall.toFixed(1)} s  [load ${load()}]`);
      console.log(`/healthz during the downloads: ${stats(health)}`);
      console.log(`bind during the downloads: ${stats(binds)}`);
      console.log(
        `server RSS: ${Math.round(rssIdle)} MB idle, ${Math.round(rssMax)} MB sampled peak, VmHWM ${Math.round(hwm)} MB (target < 800 MB)`,
      );
    } finally {
      await server.close();
    }
  } finally {
    await p.cleanup();
    console.log(`\nload average at the end: ${load()}`);
  }
}

await main();
