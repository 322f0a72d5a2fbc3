import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { type DbOptions, openDatabase } from '../../src/adapters/storage/database.js';
import { AccountsService } from '../../src/features/accounts/accounts.service.js';
import { systemClock } from '../../src/shared/clock.js';
import { createPgSchema, postgresUrl } from '../../src/testing/backends.js';

/**
 * Real processes for the tests: the server as an operator runs it (`main.ts`) and a private
 * redis-server. Each is killed by its own handle (PID), never by name; the machine's
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

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A spawned `main.ts`: its output (both streams together, and each alone) and its exit. */
export interface Spawned {
  child: ChildProcessWithoutNullStreams;
  output: () => string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<Exit>;
}

/** A server that answered /healthz. */
export interface Proc extends Spawned {
  base: string;
  ws: string;
}

const children: ChildProcessWithoutNullStreams[] = [];
const tempDirs: string[] = [];

/** Kills every child these helpers started that is still running (afterAll). */
export function killChildren(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

/** A new temporary directory named `prefix…`, removed by `removeTempDirs`. */
export function tempDir(prefix: string): string {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  tempDirs.push(d);
  return d;
}

/** Removes every directory `tempDir` made (afterAll, once the children are gone). */
export function removeTempDirs(): void {
  for (const d of tempDirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** The runner's environment without any Bindery setting, plus `env`: the child sees only what we give it. */
function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('BINDERY_') || k.startsWith('TEST_') || k === 'DATABASE_URL' || k === 'REDIS_URL') continue;
    out[k] = v;
  }
  return { ...out, ...env };
}

/** Spawns `main.ts` with exactly `env` (no defaults added) and does not wait for it. */
export function spawnServer(env: Record<string, string>): Spawned {
  const child = spawn(process.execPath, ['--import', 'tsx', mainTs], { cwd: repoRoot, env: childEnv(env) });
  children.push(child);
  let all = '';
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    all += d.toString();
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    all += d.toString();
    err += d.toString();
  });
  const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, output: () => all, stdout: () => out, stderr: () => err, exited };
}

/**
 * Starts `main.ts` on a free port of 127.0.0.1 (log level `warn` unless `env` says otherwise) and
 * resolves once /healthz answers; fails at once, with its output, if it exits instead.
 */
export async function startServer(env: Record<string, string>): Promise<Proc> {
  const port = await freePort();
  const s = spawnServer({ BINDERY_HOST: '127.0.0.1', BINDERY_PORT: String(port), BINDERY_LOG_LEVEL: 'warn', ...env });
  let gone: Exit | undefined;
  void s.exited.then((e) => {
    gone = e;
  });
  const base = `http://127.0.0.1:${port}`;
  for (;;) {
    if (gone) throw new Error(`server exited (${gone.code ?? gone.signal}) before it was healthy:\n${s.output()}`);
    try {
      if ((await fetch(`${base}/healthz`)).status === 200) break;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  return { ...s, base, ws: `ws://127.0.0.1:${port}/` };
}

/**
 * Stops a server with SIGTERM and resolves with its exit; if it has not exited after `boundMs`
 * it is killed with SIGKILL and this resolves with 'timeout'.
 */
export async function stopServer(p: Spawned, boundMs = 20_000): Promise<Exit | 'timeout'> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return p.exited;
  p.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), boundMs);
  });
  try {
    const r = await Promise.race([p.exited, timeout]);
    if (r === 'timeout') p.child.kill('SIGKILL');
    return r;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A fresh PostgreSQL schema for server processes, migrated by the server's own code, with the
 * operator `root` and one organisation in it: the `DATABASE_URL` naming it (search_path), the
 * operator's token, and how to drop it.
 */
export async function bootstrapPgSchema(org: { id: string; name: string }): Promise<{
  url: string;
  token: string;
  drop: () => Promise<void>;
}> {
  const { schema, drop } = await createPgSchema(postgresUrl!);
  const url = `${postgresUrl}${postgresUrl!.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  try {
    const token = await bootstrapDatabase({ kind: 'postgres', url: postgresUrl!, schema }, org);
    return { url, token, drop };
  } catch (e) {
    await drop();
    throw e;
  }
}

/**
 * Migrates the database `opts` names and creates in it, with the server's own code, the operator
 * `root` and the organisation `org`; resolves with the operator's token.
 */
export async function bootstrapDatabase(opts: DbOptions, org: { id: string; name: string }): Promise<string> {
  const db = openDatabase(opts);
  try {
    await db.migrate();
    const { token } = await new AccountsService({ db, clock: systemClock }).createOperator(null, {
      username: 'root',
      password: 'correct horse battery',
    });
    await db.kysely
      .insertInto('organisations')
      .values({ id: org.id, name: org.name, parent_id: null, mchid: null, merchant_shortname: null, created_at: 0 })
      .execute();
    return token;
  } finally {
    await db.close();
  }
}

/**
 * Two server processes named `ids`, each with its own data directory (`tempDir(dirPrefix)`), both
 * on `env` (one database and one Redis), started together.
 */
export async function startPair(env: Record<string, string>, ids: [string, string], dirPrefix: string): Promise<[Proc, Proc]> {
  const node = (id: string) => startServer({ ...env, BINDERY_NODE_ID: id, BINDERY_DATA_DIR: tempDir(dirPrefix) });
  return Promise.all([node(ids[0]), node(ids[1])]);
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
