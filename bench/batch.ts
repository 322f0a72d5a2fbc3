/**
 * Label batch benchmark (issue 2 §7): create N devices, then stream their zip (manifests +
 * PNG + SVG), then the label PDFs on their own, then everything in one zip, and — in the same
 * run — the same number of PNGs made by Debian's `qrencode` CLI with two processes in parallel.
 *
 *   npm run bench:batch -- [count=100000] [--no-baseline] [--no-pdf] [--no-full] [--full-only]
 *
 * Past 100 000 (the API's cap on one batch) the create step makes several batches and moves
 * their devices into the first: `npm run bench:batch -- 200000 --no-baseline` shows whether the
 * download's peak RSS depends on the batch size. "CPU" is the step's process CPU time (every
 * thread): unlike the wall time, it hardly moves with the machine's load.
 *
 * Each step runs in its own process on one SQLite data directory, as a server would serve a
 * create request and later a download; "peak RSS" is that process's VmHWM (every thread,
 * the render workers included), start-up included. PostgreSQL creation is timed too when
 * DATABASE_URL is set (in a schema of its own, dropped afterwards). BENCH_MEM_TRACE=1 prints
 * each step's memory (RSS, VmHWM, heap, external) every second on stderr. Run it under
 * `flock /tmp/bench.lock` so two benchmarks never share the cores.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { labelContent } from '@bindery/protocol';
import { closeDeps, composeDeps } from '../packages/server/src/compose.js';
import { loadConfig } from '../packages/server/src/config.js';
import type { ZipPart } from '../packages/server/src/features/production/production.service.js';
import { MAX_BATCH } from '../packages/server/src/features/production/production.service.js';
import { defaultPoolSize } from '../packages/server/src/features/production/render-pool.js';
import { buildServices } from '../packages/server/src/services.js';
import type { Principal } from '../packages/server/src/shared/principal.js';
import { postgresBackend, postgresUrl } from '../packages/server/src/testing/backends.js';
import { startHarness } from '../packages/server/src/testing/harness.js';

const actor: Principal = { kind: 'system', name: 'bench' };
const PUBLIC_URL = 'https://bindery.example';
const PATTERN = { kind: 'counter', prefix: 'BND', width: 8, checkChar: true } as const;

interface StepResult {
  seconds: number;
  /** CPU seconds of the whole process over the step (user + system, every thread, workers included). */
  cpu?: number;
  peakMb: number;
  batchId?: string;
  bytes?: number;
  entries?: number;
}

function cpuSince(c0: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(c0);
  return (d.user + d.system) / 1e6;
}

function vmHwmMb(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : process.memoryUsage().rss / 2 ** 20;
}

/** One step, in this (child) process: prints its result as the last line of stdout. */
async function child(step: string, dir: string, arg: string): Promise<void> {
  const deps = await composeDeps(
    loadConfig({ BINDERY_DATA_DIR: dir, BINDERY_LOG_LEVEL: 'silent', BINDERY_PUBLIC_URL: PUBLIC_URL }),
  );
  const s = buildServices(deps);
  // BENCH_MEM_TRACE=1: the process's memory every second on stderr (where the peak comes from).
  const trace = process.env.BENCH_MEM_TRACE
    ? setInterval(() => {
        const m = process.memoryUsage();
        const mb = (b: number) => Math.round(b / 2 ** 20);
        console.error(
          `mem ${step}: rss ${mb(m.rss)} hwm ${Math.round(vmHwmMb())} heap ${mb(m.heapUsed)}/${mb(m.heapTotal)} external ${mb(m.external)} arrayBuffers ${mb(m.arrayBuffers)}`,
        );
      }, 1000)
    : null;
  trace?.unref();
  let result: StepResult;
  try {
    if (step === 'create') {
      const vendor = await s.vendors.create(actor, { name: 'Bench Devices' });
      const { model } = await s.models.create(actor, vendor.id, { name: 'Face Terminal 5510R', product_key: 'pkbench' });
      const t0 = process.hrtime.bigint();
      const c0 = process.cpuUsage();
      // The API caps a batch at MAX_BATCH; past that (the 200 000 memory run) more batches are
      // made the same way and their devices moved into the first, so one batch holds them all.
      const count = Number(arg);
      const b = await s.production.createBatch(actor, model.model_id, { count: Math.min(count, MAX_BATCH), pattern: PATTERN });
      for (let done = MAX_BATCH; done < count; done += MAX_BATCH) {
        const more = await s.production.createBatch(actor, model.model_id, {
          count: Math.min(count - done, MAX_BATCH),
          pattern: PATTERN,
        });
        await deps.db.kysely.updateTable('devices').set({ batch_id: b.id }).where('batch_id', '=', more.id).execute();
        await deps.db.kysely.deleteFrom('batches').where('id', '=', more.id).execute();
      }
      await deps.db.kysely.updateTable('batches').set({ count }).where('id', '=', b.id).execute();
      result = { seconds: Number(process.hrtime.bigint() - t0) / 1e9, cpu: cpuSince(c0), peakMb: 0, batchId: b.id };
    } else {
      const [batchId, parts, file] = arg.split(':') as [string, string, string];
      const t0 = process.hrtime.bigint();
      const c0 = process.cpuUsage();
      const r = await s.production.writeBatchZip(actor, batchId, createWriteStream(file), {
        include: parts.split(',') as ZipPart[],
      });
      result = {
        seconds: Number(process.hrtime.bigint() - t0) / 1e9,
        cpu: cpuSince(c0),
        peakMb: 0,
        bytes: r.bytes,
        entries: r.entries,
      };
    }
  } finally {
    await closeDeps(deps);
  }
  result.peakMb = vmHwmMb();
  console.log(JSON.stringify(result));
}

function runChild(step: string, dir: string, arg: string): Promise<StepResult> {
  return new Promise((resolve, reject) => {
    const tsx = path.resolve('node_modules/.bin/tsx');
    const p = spawn(tsx, [fileURLToPath(import.meta.url), '--child', step, dir, arg], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    p.on('exit', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0) return reject(new Error(`${step} exited ${code}: ${out}`));
      resolve(JSON.parse(last) as StepResult);
    });
  });
}

const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

function machine(): string {
  const cpus = os.cpus();
  return [
    // The model string of these VMs is just "AMD EPYC"; the clock tells generations apart.
    `CPU: ${cpus[0]?.model ?? 'unknown'} × ${cpus.length} at ${cpus[0]?.speed ?? '?'} MHz (availableParallelism ${os.availableParallelism()})`,
    `RAM: ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `Node ${process.version} on ${os.type()} ${os.release()}`,
    `load average: ${load()}`,
  ].join('\n');
}

function unzipCheck(file: string): string {
  try {
    execFileSync('unzip', ['-tqq', file], { stdio: 'ignore', maxBuffer: 1 << 30 });
    return 'unzip -t ok';
  } catch (e) {
    return `unzip -t FAILED (${(e as Error).message.split('\n')[0]})`;
  }
}

/** `qrencode -o file 'content'` once per code, two processes at a time (xargs -P2). */
async function qrencodeBaseline(outDir: string, contents: string[]): Promise<{ seconds: number; files: number }> {
  const dir = path.join(outDir, 'qrencode');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  const list = path.join(outDir, 'qrencode-list.txt');
  writeFileSync(list, contents.map((c, i) => `${path.join(dir, `${i}.png`)}\n${c}\n`).join(''));
  const t0 = process.hrtime.bigint();
  await new Promise<void>((resolve, reject) => {
    const p = spawn('sh', ['-c', `xargs -d '\\n' -n 2 -P 2 qrencode -l M -s 6 -m 4 -o < '${list}'`], { stdio: 'inherit' });
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`xargs exited ${code}`))));
  });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const files = readdirSync(dir).length;
  rmSync(dir, { recursive: true, force: true });
  rmSync(list, { force: true });
  return { seconds, files };
}

const f1 = (n: number) => n.toFixed(1);

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const count = Number(args.find((a) => /^\d+$/.test(a)) ?? 100_000);
  const outDir = path.resolve('bench/out');
  mkdirSync(outDir, { recursive: true });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bindery-bench-batch-'));
  console.log(`# bench:batch — ${count} devices, ${defaultPoolSize()} render workers\n${machine()}\n`);
  try {
    const created = await runChild('create', dir, String(count));
    const batchId = created.batchId!;
    console.log(
      `create (SQLite, one transaction${count > MAX_BATCH ? ` per ${MAX_BATCH}, merged into one batch` : ''}): ${f1(created.seconds)} s, ${Math.round(count / created.seconds)} devices/s, CPU ${f1(created.cpu ?? 0)} s, peak RSS ${Math.round(created.peakMb)} MB  [load ${load()}]`,
    );

    const zip = async (label: string, parts: string) => {
      const file = path.join(outDir, `batch-${count}-${parts.replace(/,/g, '-')}.zip`);
      const r = await runChild('zip', dir, `${batchId}:${parts}:${file}`);
      const mb = statSync(file).size / 2 ** 20;
      console.log(
        `${label}: ${f1(r.seconds)} s, ${Math.round(count / r.seconds)} labels/s, CPU ${f1(r.cpu ?? 0)} s (${(((r.cpu ?? 0) / count) * 1e3).toFixed(2)} ms a label), ` +
          `${f1(mb)} MB, ${r.entries} entries, peak RSS ${Math.round(r.peakMb)} MB, ${unzipCheck(file)}  [load ${load()}]`,
      );
      rmSync(file, { force: true });
      return r;
    };
    // --full-only: just create and the download default (the memory run at 200 000).
    const noPdf = args.includes('--full-only')
      ? { seconds: Number.NaN, peakMb: 0 }
      : await zip('zip without PDF (manifest.csv/.xlsx + PNG + SVG)', 'manifest,png,svg');
    if (!args.includes('--full-only'))
      console.log(
        `→ create + PNG + SVG + zip: ${f1(created.seconds + noPdf.seconds)} s, peak RSS ${Math.round(Math.max(created.peakMb, noPdf.peakMb))} MB (target ≤ 30 s)`,
      );
    if (!args.includes('--no-pdf') && !args.includes('--full-only'))
      await zip('label PDFs alone (matrices + labels-a4.pdf + labels-roll.pdf)', 'pdf');
    if (!args.includes('--no-full')) {
      const full = await zip('everything in one zip (the download default)', 'manifest,png,svg,pdf');
      console.log(
        `→ the download default: ${f1(full.seconds)} s, peak RSS ${Math.round(full.peakMb)} MB (target ≤ 60 s, ≤ 500 MB)`,
      );
    }

    if (postgresUrl) {
      const h = await startHarness(postgresBackend, { realClock: true });
      try {
        const vendor = await h.services.vendors.create(actor, { name: 'Bench Devices' });
        const { model } = await h.services.models.create(actor, vendor.id, { name: 'M', product_key: 'pkbench' });
        const t0 = process.hrtime.bigint();
        await h.services.production.createBatch(actor, model.model_id, { count, pattern: PATTERN });
        const s = Number(process.hrtime.bigint() - t0) / 1e9;
        console.log(`create (PostgreSQL, one transaction): ${f1(s)} s, ${Math.round(count / s)} devices/s  [load ${load()}]`);
      } finally {
        await h.close();
      }
    }

    if (!args.includes('--no-baseline')) {
      try {
        execFileSync('sh', ['-c', 'command -v qrencode'], { stdio: 'ignore' });
      } catch {
        console.log('baseline skipped: qrencode is not installed (apt-get install -y qrencode)');
        return;
      }
      const deps = await composeDeps(
        loadConfig({ BINDERY_DATA_DIR: dir, BINDERY_LOG_LEVEL: 'silent', BINDERY_PUBLIC_URL: PUBLIC_URL }),
      );
      const rows = await deps.db.kysely
        .selectFrom('devices')
        .select(['sn', 'hw_code'])
        .where('batch_id', '=', batchId)
        .orderBy('id')
        .execute();
      await closeDeps(deps);
      const contents = rows.map((d) => labelContent(PUBLIC_URL, 'wecom', null, { pk: 'pkbench', sn: d.sn, hwCode: d.hw_code }));
      const q = await qrencodeBaseline(outDir, contents);
      console.log(
        `baseline: qrencode CLI, xargs -P2, ${q.files} PNGs: ${f1(q.seconds)} s, ${Math.round(q.files / q.seconds)} PNG/s ` +
          `(PNG only; ours made PNG + SVG + manifests + zip in ${f1(noPdf.seconds)} s)  [load ${load()}]`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    console.log(`\nload average at the end: ${load()}`);
  }
}

if (process.argv[2] === '--child') await child(process.argv[3]!, process.argv[4]!, process.argv[5]!);
else await main();
