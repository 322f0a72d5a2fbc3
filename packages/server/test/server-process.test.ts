import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { SecretBox } from '../src/adapters/secrets/secret-box.js';
import { type DbOptions, openDatabase } from '../src/adapters/storage/database.js';
import { AccountsService } from '../src/features/accounts/accounts.service.js';
import { systemClock } from '../src/shared/clock.js';
import {
  createPgSchema,
  deleteRedisPrefix,
  postgresUrl,
  redisUrl,
  skipReasonPostgres,
  skipReasonRedis,
} from '../src/testing/backends.js';
import {
  killChildren,
  tempDir as newTempDir,
  type Proc,
  removeTempDirs,
  spawnServer,
  startServer as startMain,
  stopServer as stopMain,
} from './support/processes.js';

/**
 * The real server as an operator runs it: `node --import tsx packages/server/src/main.ts`, its
 * own process, configured only by environment variables, reached over real HTTP, stopped by a
 * signal. Nothing here waits a fixed time: readiness is polled, and exits are awaited.
 */
const SLOW = 180_000; // a process start compiles TypeScript; generous on a loaded 2-core machine

afterAll(() => {
  // Only our own children, by handle; a failed case must not leave a server behind.
  killChildren();
  removeTempDirs();
});

const tempDir = () => newTempDir('bindery-proc-');

/** Starts the server (log level `info`) and resolves once /healthz answers. */
const startServer = (env: Record<string, string>) => startMain({ BINDERY_LOG_LEVEL: 'info', ...env });

/** Stops the server with SIGTERM and resolves with its exit (the case's own timeout bounds the wait). */
const stopServer = (s: Proc) => stopMain(s, SLOW);

async function api(s: Proc, method: string, url: string, token?: string, body?: unknown) {
  const r = await fetch(s.base + url, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  return { status: r.status, type: r.headers.get('content-type') ?? '', text, json: () => JSON.parse(text) };
}

/** Bootstraps the first operator straight through the server's own AccountsService on the same database. */
async function bootstrapOperator(opts: DbOptions): Promise<string> {
  const db = openDatabase(opts);
  try {
    const accounts = new AccountsService({ db, clock: systemClock });
    const { token } = await accounts.createOperator(null, { username: 'admin', password: 'a long enough password' });
    return token;
  } finally {
    await db.close();
  }
}

/** Vendor → model → one registered SN over HTTP; returns the SecretNo the server issued. */
async function registerDevice(s: Proc, token: string, sn: string): Promise<string> {
  const v = await api(s, 'POST', '/api/v1/vendors', token, { name: 'Process Test Devices' });
  expect(v.status, v.text).toBe(201);
  const m = await api(s, 'POST', `/api/v1/vendors/${v.json().vendor.id}/models`, token, { name: 'PT-1' });
  expect(m.status, m.text).toBe(201);
  const d = await api(s, 'POST', `/api/v1/models/${m.json().model.model_id}/devices`, token, { sn });
  expect(d.status, d.text).toBe(201);
  const secretNo = d.json().secret_no as string;
  expect(secretNo).toMatch(/^[0-9a-f]{32}$/);
  return secretNo;
}

/** The JSON log lines of a run. */
const logLines = (out: string): Array<Record<string, unknown>> =>
  out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('the server process on SQLite', () => {
  const dataDir = path.join(tempDir(), 'data');
  const sqliteFile = path.join(dataDir, 'bindery.sqlite');
  const keyFile = path.join(dataDir, 'master.key');
  let token: string;
  let secretNo: string;
  let keyOfRun1: string;

  it(
    'starts on a fresh data dir: health, readiness, metrics, API docs, a 0600 master key; stops on SIGTERM with 0',
    async () => {
      const s = await startServer({ BINDERY_DATA_DIR: dataDir, BINDERY_SHUTDOWN_GRACE_MS: '30000' });

      const ready = await api(s, 'GET', '/readyz');
      expect(ready.status).toBe(200);
      expect(ready.json()).toEqual({ status: 'ready', database: 'sqlite' });

      const docs = await api(s, 'GET', '/docs/');
      expect(docs.status).toBe(200);
      expect(docs.type).toMatch(/^text\/html/);
      expect(docs.text).toMatch(/<html/i);

      const openapi = await api(s, 'GET', '/openapi.json');
      expect(openapi.status).toBe(200);
      expect(Object.keys(openapi.json().paths)).toContain('/cgi-bin/openhw/get_model_token');

      const metrics = await api(s, 'GET', '/metrics');
      expect(metrics.status).toBe(200);
      expect(metrics.type).toMatch(/^text\/plain/);
      expect(metrics.text).toMatch(/^bindery_process_\w+/m);
      // Requests made above are counted, by route.
      expect(metrics.text).toMatch(/^bindery_http_requests_total\{[^}]*route="\/healthz"[^}]*\} \d+/m);

      // The master key was generated on this first start, readable by the owner only.
      expect(statSync(keyFile).mode & 0o777).toBe(0o600);
      keyOfRun1 = readFileSync(keyFile, 'utf8');
      expect(keyOfRun1).toMatch(/^[0-9a-f]{64}\n$/);
      expect(logLines(s.stdout()).some((l) => String(l.msg).includes('generated a new master key'))).toBe(true);

      token = await bootstrapOperator({ kind: 'sqlite', file: sqliteFile });
      secretNo = await registerDevice(s, token, 'PROC0001');
      const back = await api(s, 'GET', '/api/v1/devices/PROC0001/secret-no', token);
      expect(back.json()).toEqual({ secret_no: secretNo });

      expect(await stopServer(s)).toEqual({ code: 0, signal: null });
      expect(logLines(s.stdout()).some((l) => l.msg === 'shutting down' && l.signal === 'SIGTERM')).toBe(true);
      // The database was really closed, not abandoned: SQLite folds the WAL back and deletes it on the last close.
      expect(existsSync(`${sqliteFile}-wal`)).toBe(false);
      expect(s.stderr()).not.toMatch(/error/i);
    },
    SLOW,
  );

  it(
    'a second start reuses the master key: what run 1 sealed, run 2 opens',
    async () => {
      if (!keyOfRun1) throw new Error('needs the first run');
      const s = await startServer({ BINDERY_DATA_DIR: dataDir });
      expect(readFileSync(keyFile, 'utf8')).toBe(keyOfRun1);
      expect(statSync(keyFile).mode & 0o777).toBe(0o600);
      expect(logLines(s.stdout()).some((l) => String(l.msg).includes('generated a new master key'))).toBe(false);

      const again = await api(s, 'GET', '/api/v1/devices/PROC0001/secret-no', token);
      expect(again.status, again.text).toBe(200);
      expect(again.json()).toEqual({ secret_no: secretNo });

      // And at rest it is sealed under exactly that key file.
      const db = openDatabase({ kind: 'sqlite', file: sqliteFile });
      try {
        const row = await db.kysely
          .selectFrom('devices')
          .select('secret_no_enc')
          .where('sn_key', '=', 'proc0001')
          .executeTakeFirstOrThrow();
        expect(row.secret_no_enc).not.toContain(secretNo);
        expect(new SecretBox(Buffer.from(keyOfRun1.trim(), 'hex')).open(row.secret_no_enc)).toBe(secretNo);
      } finally {
        await db.close();
      }

      expect(await stopServer(s)).toEqual({ code: 0, signal: null });
      expect(existsSync(`${sqliteFile}-wal`)).toBe(false);
    },
    SLOW,
  );

  it(
    'refuses an invalid environment with exit code 2, listing every problem, and touches nothing',
    async () => {
      const dir = path.join(tempDir(), 'never-created');
      const s = spawnServer({ BINDERY_DATA_DIR: dir, BINDERY_PORT: 'x', DATABASE_URL: 'mysql://root@localhost/bindery' });
      expect(await s.exited).toEqual({ code: 2, signal: null });
      const err = s.stderr();
      expect(err).toContain('invalid configuration');
      expect(err).toMatch(/BINDERY_PORT.*"x"/);
      expect(err).toMatch(/DATABASE_URL must be a postgres:\/\/ URL/);
      expect(existsSync(dir)).toBe(false);
    },
    SLOW,
  );
});

const pgRedisSkip = skipReasonPostgres() ?? skipReasonRedis();

describe('the server process on PostgreSQL and Redis', () => {
  it.skipIf(pgRedisSkip)(
    'runs in the schema named by the URL (search_path), with the Redis bus and limits; stops cleanly',
    async () => {
      const { schema, drop } = await createPgSchema(postgresUrl!);
      const prefix = `bindery_t_${randomBytes(6).toString('hex')}`;
      const url = new URL(postgresUrl!);
      url.searchParams.set('options', `-c search_path=${schema}`);
      const redis = new Redis(redisUrl!, { maxRetriesPerRequest: 1 });
      try {
        const s = await startServer({
          BINDERY_DATA_DIR: path.join(tempDir(), 'data'),
          DATABASE_URL: url.toString(),
          REDIS_URL: redisUrl!,
          BINDERY_REDIS_PREFIX: prefix,
        });
        const ready = await api(s, 'GET', '/readyz');
        expect(ready.json()).toEqual({ status: 'ready', database: 'postgres' });
        // The log line is written just after listen() resolves; under load /readyz can answer first.
        await expect
          .poll(() => logLines(s.stdout()).find((l) => l.msg === 'bindery is up'), { timeout: 15_000 })
          .toMatchObject({ storage: 'postgres', bus: 'redis' });

        // The migrations ran in our schema: the URL's search_path was honoured.
        const admin = new pg.Client({ connectionString: postgresUrl });
        await admin.connect();
        try {
          const tables = await admin.query<{ table_name: string }>(
            'select table_name from information_schema.tables where table_schema = $1',
            [schema],
          );
          expect(tables.rows.map((r) => r.table_name)).toEqual(expect.arrayContaining(['devices', 'bindery_migrations']));
        } finally {
          await admin.end();
        }

        // Writes through the real process land there too.
        const token = await bootstrapOperator({ kind: 'postgres', url: postgresUrl!, schema, poolSize: 1 });
        const secretNo = await registerDevice(s, token, 'PGPROC01');
        const back = await api(s, 'GET', '/api/v1/devices/pgproc01/secret-no', token);
        expect(back.json()).toEqual({ secret_no: secretNo });

        expect(await stopServer(s)).toEqual({ code: 0, signal: null });
        // A stopped server holds no channel on the shared Redis.
        expect(await redis.pubsub('CHANNELS', `${prefix}:*`)).toEqual([]);
      } finally {
        await deleteRedisPrefix(prefix, redis);
        await redis.quit();
        await drop();
      }
    },
    SLOW,
  );
});
