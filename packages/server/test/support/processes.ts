import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';

/**
 * Real processes for the security tests (issue 11): the server as an operator runs it and a
 * private redis-server. Each is killed by its own handle (PID), never by name; the machine's
 * Redis on 6379 is never touched.
 */
export const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));
const mainTs = path.join(repoRoot, 'packages/server/src/main.ts');

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** Polls `f` until it returns a value, failing with `what` after a generous bound (never a fixed sleep). */
export async function until<T>(what: string, f: () => Promise<T | undefined>, boundMs = 30_000): Promise<T> {
  const end = Date.now() + boundMs;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

export interface Proc {
  child: ChildProcessWithoutNullStreams;
  base: string;
  ws: string;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children: ChildProcessWithoutNullStreams[] = [];

/** Kills every child these helpers started that is still running (afterAll). */
export function killChildren(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

/** The runner's environment without any Bindery setting, plus `env`. */
function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('BINDERY_') || k.startsWith('TEST_') || k === 'DATABASE_URL' || k === 'REDIS_URL') continue;
    out[k] = v;
  }
  return { ...out, ...env };
}

/** Starts `main.ts` and resolves once /healthz answers. */
export async function startServer(env: Record<string, string>): Promise<Proc> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', mainTs], {
    cwd: repoRoot,
    env: childEnv({ BINDERY_HOST: '127.0.0.1', BINDERY_PORT: String(port), BINDERY_LOG_LEVEL: 'warn', ...env }),
  });
  children.push(child);
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    out += d.toString();
  });
  let gone: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      gone = { code, signal };
      resolve(gone);
    }),
  );
  const base = `http://127.0.0.1:${port}`;
  for (;;) {
    if (gone) throw new Error(`server exited (${gone.code ?? gone.signal}) before it was healthy:\n${out}`);
    try {
      if ((await fetch(`${base}/healthz`)).status === 200) break;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  return { child, base, ws: `ws://127.0.0.1:${port}/`, output: () => out, exited };
}

/** Stops a server with SIGTERM (SIGKILL after a bound) and resolves with its exit. */
export async function stopServer(p: Proc): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const r = await Promise.race([p.exited, sleep(20_000).then(() => 'timeout' as const)]);
  if (r === 'timeout') p.child.kill('SIGKILL');
}

export interface RedisProc {
  url: string;
  port: number;
  /** Kills this redis-server by its PID and waits for it to exit. */
  kill(): Promise<void>;
}

/** A private, empty, non-persistent redis-server on `port` (a free one by default). */
export async function startRedis(port?: number): Promise<RedisProc> {
  const p = port ?? (await freePort());
  const child = spawn('redis-server', ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  }) as unknown as ChildProcessWithoutNullStreams;
  children.push(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `redis://127.0.0.1:${p}`;
  await until(`redis-server on ${p}`, async () => {
    const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on('error', () => {});
    try {
      await r.connect();
      return (await r.ping()) === 'PONG' ? true : undefined;
    } finally {
      r.disconnect();
    }
  });
  return {
    url,
    port: p,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Whether a redis-server binary is on PATH (the outage tests need their own). */
export function hasRedisServer(): boolean {
  const dirs = (process.env.PATH ?? '').split(path.delimiter);
  return dirs.some((d) => d && existsSync(path.join(d, 'redis-server')));
}
