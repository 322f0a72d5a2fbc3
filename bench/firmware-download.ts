/**
 * bench:firmware-download — issue 14's download target: a 16 MiB image, 200 concurrent
 * range-resumable downloads on loopback, from Bindery (GET /api/v1/firmware/:id/file with a device's
 * signed link, its own process on SQLite) and from Debian's nginx serving the same stored file
 * (started here on a free port with a temporary config, stopped by its PID), in the same run,
 * alternating rounds. Each download fetches a first part (Range: bytes=0-k), is "cut", then resumes
 * with Range: bytes=(k+1)- and If-Range: <ETag>, as a device on a flaky link would.
 * Target: Bindery's throughput ≥ 0.8 × nginx's.
 *
 *   npm run bench:firmware-download
 *   BENCH_ROUNDS=3 BENCH_CONCURRENCY=200 BENCH_MIB=16 npm run bench:firmware-download
 *   BENCH_PROF=/tmp/prof npm run bench:firmware-download   (a CPU profile of the Bindery process)
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { machine, sleep } from './gateway/machine.js';
import { freePort } from './gateway/server.js';
import { now } from './pool.js';

const MIB = Number(process.env.BENCH_MIB ?? 16);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 200);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const TARGET = 0.8;
const NGINX_WORKERS = process.env.BENCH_NGINX_WORKERS ?? '1';
const SIZE = MIB * 2 ** 20;

interface Target {
  name: string;
  port: number;
  path: string;
}

/** One request; resolves with the status, the ETag and the bytes received (hashed when asked). */
function get(
  agent: http.Agent,
  t: Target,
  headers: Record<string, string>,
  hash?: ReturnType<typeof createHash>,
): Promise<{ status: number; etag: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: t.port, path: t.path, agent, headers }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        hash?.update(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, etag: String(res.headers.etag ?? ''), bytes }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** CONCURRENCY downloads at once, each cut at a different point and resumed. */
async function round(t: Target, md5: string): Promise<{ seconds: number; bytes: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  let bytes = 0;
  const t0 = now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, i) => {
      // The cut falls anywhere in the file; the first download of a round is checked by MD5.
      const cut = Math.floor((((i * 7919) % 997) / 997) * (SIZE - 2)) + 1;
      const hash = i === 0 ? createHash('md5') : undefined;
      const a = await get(agent, t, { range: `bytes=0-${cut - 1}` }, hash);
      if (a.status !== 206 || a.bytes !== cut) throw new Error(`${t.name}: first part ${a.status} ${a.bytes}/${cut}`);
      const b = await get(agent, t, { range: `bytes=${cut}-`, 'if-range': a.etag }, hash);
      if (b.status !== 206 || b.bytes !== SIZE - cut) throw new Error(`${t.name}: resume ${b.status} ${b.bytes}/${SIZE - cut}`);
      if (hash && hash.digest('hex') !== md5) throw new Error(`${t.name}: MD5 of a resumed download differs`);
      bytes += a.bytes + b.bytes;
    }),
  );
  const seconds = (now() - t0) / 1000;
  agent.destroy();
  return { seconds, bytes };
}

async function startBindery(dataDir: string, image: string) {
  const child: ChildProcess = fork(fileURLToPath(new URL('./firmware-download/server-child.ts', import.meta.url)), [], {
    // BENCH_PROF=<dir> writes a V8 CPU profile of the server process there (node --cpu-prof).
    execArgv: [
      '--import',
      import.meta.resolve('tsx'),
      ...(process.env.BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF}`] : []),
    ],
    env: { ...process.env, BINDERY_LOG_LEVEL: 'warn', BENCH_DATA_DIR: dataDir, BENCH_IMAGE: image },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ready = await new Promise<{ port: number; path: string; md5: string; stored: string; storedName: string }>(
    (resolve, reject) => {
      child.once('message', (m) => resolve(m as never));
      child.once('exit', (c) => reject(new Error(`bindery exited (${c})`)));
    },
  );
  return { child, ...ready };
}

async function startNginx(dir: string, root: string, storedName: string) {
  const port = await freePort();
  const conf = path.join(dir, 'nginx.conf');
  // Debian's defaults where they matter for serving a file (sendfile, tcp_nopush); as many worker
  // processes as Bindery has processes (one), unless BENCH_NGINX_WORKERS says otherwise.
  writeFileSync(
    conf,
    `${process.getuid?.() === 0 ? 'user root root; # the stored file is 0600 under a 0700 data dir\n' : ''}worker_processes ${NGINX_WORKERS};
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
daemon off;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port};
    location = /fw { alias ${root}/${storedName}; default_type application/octet-stream; }
  }
}
`,
  );
  const child = spawn('/usr/sbin/nginx', ['-c', conf, '-p', dir], { stdio: ['ignore', 'inherit', 'inherit'] });
  for (let i = 0; i < 50; i++) {
    const ok = await new Promise<boolean>((r) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/fw', method: 'HEAD' }, (res) => {
        res.resume();
        r(res.statusCode === 200);
      });
      req.on('error', () => r(false));
    });
    if (ok) return { child, port };
    await sleep(100);
  }
  child.kill('SIGTERM');
  throw new Error('nginx did not start');
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'bindery-fw-bench-'));
const image = path.join(dir, 'image.bin');
writeFileSync(image, randomBytes(SIZE));
const m = machine();
console.log(
  `# bench:firmware-download — ${MIB} MiB image, ${CONCURRENCY} concurrent range-resumed downloads × ${ROUNDS} rounds; one Bindery process, nginx worker_processes ${NGINX_WORKERS}\n${m.text}\n`,
);

const bindery = await startBindery(path.join(dir, 'data'), image);
const nginx = await startNginx(dir, path.dirname(bindery.stored), bindery.storedName).catch((e) => {
  bindery.child.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
  throw e;
});
const targets: Target[] = [
  { name: 'bindery', port: bindery.port, path: bindery.path },
  { name: 'nginx', port: nginx.port, path: '/fw' },
];
const total: Record<string, { s: number; b: number }> = { bindery: { s: 0, b: 0 }, nginx: { s: 0, b: 0 } };
let ok = false;
try {
  for (let r = 0; r < ROUNDS; r++) {
    // Alternating order, so neither server always runs on a machine warmed (or loaded) by the other.
    for (const t of r % 2 === 0 ? targets : [...targets].reverse()) {
      const x = await round(t, bindery.md5);
      total[t.name]!.s += x.seconds;
      total[t.name]!.b += x.bytes;
      console.log(
        `round ${r + 1} ${t.name.padEnd(7)} ${(x.bytes / 2 ** 20 / x.seconds).toFixed(0)} MiB/s (${x.seconds.toFixed(2)} s)`,
      );
    }
  }
  const rate = (n: string) => total[n]!.b / 2 ** 20 / total[n]!.s;
  const ratio = rate('bindery') / rate('nginx');
  ok = ratio >= TARGET;
  console.log(
    `\nbindery ${rate('bindery').toFixed(0)} MiB/s, nginx ${rate('nginx').toFixed(0)} MiB/s: ${ratio.toFixed(2)} × nginx ` +
      `(target ≥ ${TARGET}) ${ok ? 'PASS' : 'FAIL'}\nload average after: ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
  );
} finally {
  nginx.child.kill('SIGTERM');
  bindery.child.send({ t: 'stop' });
  await Promise.all([new Promise((r) => nginx.child.once('exit', r)), new Promise((r) => bindery.child.once('exit', r))]);
  rmSync(dir, { recursive: true, force: true });
}
process.exit(ok ? 0 : 1);
