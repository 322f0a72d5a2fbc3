import { type ChildProcess, fork } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { rssOf, rssParts } from './machine.js';

/** One server process's socket counts (bench/gateway/server-child.ts). */
export interface ServerStats {
  pid: number;
  connections: number;
  devices: number;
  /** State changes waiting for the next flush (bindery only). */
  pendingWrites?: number;
}

export interface ServerHandle {
  url: string;
  port: number;
  /** Processes holding sockets (the workers under node:cluster). */
  pids: number[];
  primaryPid: number | null;
  /** Collects garbage in every server process, then reads each one's VmRSS from /proc (and V8's heapUsed). */
  memory(): Promise<{ rss: number[]; heap: number[]; external: number[]; parts: Array<ReturnType<typeof rssParts>> }>;
  /** Single process only: writes a V8 heap snapshot to `file`. */
  snapshot(file: string): Promise<string>;
  stats(): Promise<ServerStats[]>;
  close(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (node:cluster needs a fixed one). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Starts bench/gateway/server-child.ts with `env` and waits until it listens. */
export async function startServer(
  kind: 'bindery' | 'bare',
  env: Record<string, string>,
  opts: {
    workers?: number;
    /**
     * How node:cluster hands out connections: `rr` (Node's default: the primary accepts each one
     * and passes it to a worker over IPC) or `none` (every worker accepts on the shared socket).
     */
    scheduling?: 'rr' | 'none';
  } = {},
): Promise<ServerHandle> {
  const workers = opts.workers ?? 0;
  const port = workers > 0 ? await freePort() : 0;
  const child: ChildProcess = fork(fileURLToPath(new URL('./server-child.ts', import.meta.url)), [], {
    // BENCH_CPU_PROF=<dir> writes a V8 CPU profile of each server process there (for finding hot spots).
    execArgv: [
      '--expose-gc',
      '--import',
      import.meta.resolve('tsx'),
      ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : []),
      ...(process.env.BENCH_SERVER_NODE_FLAGS?.split(' ').filter(Boolean) ?? []),
    ],
    env: {
      ...process.env,
      BINDERY_LOG_LEVEL: 'warn',
      ...env,
      BENCH_SERVER: kind,
      BENCH_WORKERS: String(workers),
      BENCH_SCHED: opts.scheduling ?? 'rr',
      BENCH_PORT: String(port),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ask = <T>(t: string, extra: Record<string, unknown> = {}): Promise<T> =>
    new Promise((resolve, reject) => {
      const on = (m: { t: string } & T) => {
        if (m.t !== t) return;
        child.off('message', on);
        child.off('exit', gone);
        resolve(m);
      };
      const gone = (code: number | null) => reject(new Error(`server exited (${code})`));
      child.on('message', on);
      child.once('exit', gone);
      if (t !== 'ready') child.send({ t, ...extra });
    });
  const ready = await ask<{ port: number; pids: number[]; primary?: number }>('ready');
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    url: `ws://127.0.0.1:${ready.port}/`,
    port: ready.port,
    pids: ready.pids,
    primaryPid: ready.primary ?? null,
    async memory() {
      // Collect, let the allocator hand freed pages back, collect again, then read.
      await ask<{ pids: number[] }>('mem');
      await new Promise((r) => setTimeout(r, 1000));
      const m = await ask<{ pids: number[]; heap: number[]; external: number[] }>('mem');
      return { rss: m.pids.map(rssOf), heap: m.heap, external: m.external, parts: m.pids.map(rssParts) };
    },
    async snapshot(file) {
      return (await ask<{ file: string }>('snapshot', { file })).file;
    },
    async stats() {
      return (await ask<{ stats: ServerStats[] }>('stats')).stats;
    },
    async close() {
      if (child.exitCode !== null) return;
      child.send({ t: 'close' });
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    },
  };
}
