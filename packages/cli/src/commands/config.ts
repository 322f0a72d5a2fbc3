import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { type Config, ConfigError } from '@bindery/server/config.js';
import { AppError, ERRORS } from '@bindery/server/errors.js';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { keyValues } from '../output.js';

/** A URL with its password (in the userinfo or a `password` parameter) replaced. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    for (const k of [...u.searchParams.keys()]) if (/pass|secret|key/i.test(k)) u.searchParams.set(k, '***');
    return u.toString();
  } catch {
    return '(unparseable)';
  }
}

/** Problems loadConfig cannot see because they live in files: TLS files and the master key file. */
function fileProblems(c: Config): string[] {
  const p: string[] = [];
  if (c.tls) {
    for (const [name, file] of [
      ['BINDERY_TLS_CERT', c.tls.certFile],
      ['BINDERY_TLS_KEY', c.tls.keyFile],
    ] as const) {
      try {
        accessSync(file, constants.R_OK);
      } catch {
        p.push(`${name} file ${file} cannot be read`);
      }
    }
  }
  if (!c.masterKey) {
    const file = path.join(c.dataDir, 'master.key');
    if (existsSync(file)) {
      try {
        const hex = readFileSync(file, 'utf8').trim();
        if (!/^[0-9a-fA-F]{64}$/.test(hex)) p.push(`${file} does not hold a 32-byte hex key`);
      } catch {
        p.push(`${file} cannot be read`);
      }
    }
  }
  return p;
}

/** The configuration as it will be used, with every secret left out. */
function effective(c: Config) {
  const keyFile = path.join(c.dataDir, 'master.key');
  return {
    port: c.port,
    host: c.host,
    dataDir: c.dataDir,
    publicUrl: c.publicUrl,
    storage: c.databaseUrl ? 'postgres' : 'sqlite',
    ...(c.databaseUrl ? { databaseUrl: redactUrl(c.databaseUrl) } : { sqlitePath: c.sqlitePath }),
    redisUrl: c.redisUrl ? redactUrl(c.redisUrl) : null,
    redisPrefix: c.redisPrefix,
    masterKey: c.masterKey
      ? 'BINDERY_MASTER_KEY'
      : existsSync(keyFile)
        ? `file ${keyFile}`
        : `file ${keyFile} (created on first start)`,
    logLevel: c.logLevel,
    nodeId: c.nodeId,
    tls: c.tls,
    shutdownGraceMs: c.shutdownGraceMs,
    deviceOfflineAfterSec: c.deviceOfflineAfterSec,
    trustProxy: c.trustProxy,
  };
}

export function register(program: Command, ctx: CliContext): void {
  const config = program.command('config').description('the configuration, read from the environment as the server reads it');

  config
    .command('check')
    .description('print the effective configuration without secrets, or every problem with it')
    .option('--connect', 'also check that the database answers', false)
    .action(async (o: { connect: boolean }) => {
      let c: Config;
      try {
        c = ctx.config();
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        // Every problem at once, including the file ones we can still see.
        throw new AppError('CONFIG_INVALID', ERRORS.CONFIG_INVALID.message, { problems: e.problems });
      }
      const problems = fileProblems(c);
      let database: 'reachable' | 'not checked' = 'not checked';
      if (o.connect) {
        // Loaded only here: the storage layer is most of what a plain check would otherwise load.
        const { openDatabase } = await import('@bindery/server/adapters/storage/database.js');
        const db = c.databaseUrl
          ? openDatabase({ kind: 'postgres', url: c.databaseUrl, poolSize: 1 })
          : openDatabase({ kind: 'sqlite', file: c.sqlitePath });
        try {
          if (await db.ping()) database = 'reachable';
          else problems.push(`the database (${c.databaseUrl ? redactUrl(c.databaseUrl) : c.sqlitePath}) does not answer`);
        } finally {
          await db.close();
        }
      }
      if (problems.length) throw new AppError('CONFIG_INVALID', ERRORS.CONFIG_INVALID.message, { problems });
      const doc = { ok: true, config: effective(c), database };
      ctx.out.result(doc, () => `${keyValues({ ...doc.config, database })}\nthe configuration is valid`);
    });
}
