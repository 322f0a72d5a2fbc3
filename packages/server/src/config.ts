import { hostname } from 'node:os';
import path from 'node:path';
import { type Cidr, parseCidr } from './adapters/outbound/policy.js';

/**
 * The one reader of process.env. Everything is validated together and every problem is
 * reported at once, so a misconfigured deployment is fixed in one round.
 */
export interface Config {
  port: number;
  host: string;
  dataDir: string;
  publicUrl: string;
  /** postgres:// URL selects PostgreSQL; absent means an SQLite file in dataDir. */
  databaseUrl: string | null;
  sqlitePath: string;
  /** Selects the Redis bus and rate limits; absent means in-process. */
  redisUrl: string | null;
  /** Prefix of every Redis key and channel, so deployments (and test runs) can share one Redis. */
  redisPrefix: string;
  /** 32-byte key for secrets at rest; null means "read or create dataDir/master.key". */
  masterKey: Buffer | null;
  /** Where the master key is read (or created, 0600) when masterKey is null; default dataDir/master.key. */
  masterKeyFile: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  nodeId: string;
  tls: { certFile: string; keyFile: string } | null;
  shutdownGraceMs: number;
  /** Seconds without a frame after which a device counts as offline. */
  deviceOfflineAfterSec: number;
  trustProxy: boolean;
  /** BINDERY_OUTBOUND_ALLOW: internal ranges callbacks and webhooks may reach (default none). */
  outboundAllow: Cidr[];
  /** BINDERY_TIME_ZONE: the instance's IANA time zone (maintenance windows of owners without one); default UTC. */
  timeZone?: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];
  const str = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const int = (name: string, dflt: number, min: number, max: number): number => {
    const v = str(name);
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${name} must be an integer from ${min} to ${max} (got "${v}")`);
      return dflt;
    }
    return n;
  };

  const port = int('BINDERY_PORT', 8080, 0, 65535);
  const host = str('BINDERY_HOST') ?? '0.0.0.0';
  const dataDir = path.resolve(str('BINDERY_DATA_DIR') ?? './data');

  let publicUrl = str('BINDERY_PUBLIC_URL') ?? `http://localhost:${port}`;
  try {
    const u = new URL(publicUrl);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') problems.push('BINDERY_PUBLIC_URL must be http(s)');
    if (u.search || u.hash) problems.push('BINDERY_PUBLIC_URL must not carry a query or fragment');
    publicUrl = publicUrl.replace(/\/+$/, '');
  } catch {
    problems.push(`BINDERY_PUBLIC_URL is not a URL (got "${publicUrl}")`);
  }

  const databaseUrl = str('DATABASE_URL') ?? null;
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push('DATABASE_URL must be a postgres:// URL (leave it unset for the embedded SQLite database)');
  }
  const sqlitePath = path.resolve(dataDir, str('BINDERY_SQLITE_FILE') ?? 'bindery.sqlite');

  const redisUrl = str('REDIS_URL') ?? null;
  if (redisUrl && !/^rediss?:\/\//.test(redisUrl)) problems.push('REDIS_URL must be a redis:// or rediss:// URL');

  const redisPrefix = str('BINDERY_REDIS_PREFIX') ?? 'bindery';
  if (!/^[\w.-]{1,64}$/.test(redisPrefix)) problems.push('BINDERY_REDIS_PREFIX must be 1–64 of [A-Za-z0-9_.-]');

  let masterKey: Buffer | null = null;
  const mk = str('BINDERY_MASTER_KEY');
  if (mk !== undefined) {
    const b = /^[0-9a-fA-F]{64}$/.test(mk) ? Buffer.from(mk, 'hex') : Buffer.from(mk, 'base64');
    if (b.length !== 32) problems.push('BINDERY_MASTER_KEY must be 32 bytes as 64 hex characters or base64');
    else masterKey = b;
  }

  const mkFile = str('BINDERY_MASTER_KEY_FILE');
  if (mkFile !== undefined && mk !== undefined) problems.push('set BINDERY_MASTER_KEY or BINDERY_MASTER_KEY_FILE, not both');
  // Outside the data volume, a backup of the database does not carry the key that opens its secrets.
  const masterKeyFile = path.resolve(dataDir, mkFile ?? 'master.key');

  const lvl = (str('BINDERY_LOG_LEVEL') ?? 'info') as Config['logLevel'];
  if (!LOG_LEVELS.includes(lvl)) problems.push(`BINDERY_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);

  const certFile = str('BINDERY_TLS_CERT');
  const keyFile = str('BINDERY_TLS_KEY');
  if ((certFile === undefined) !== (keyFile === undefined)) {
    problems.push('BINDERY_TLS_CERT and BINDERY_TLS_KEY must be given together');
  }

  const nodeId = str('BINDERY_NODE_ID') ?? `${hostname()}-${process.pid}`;
  if (!/^[\w.-]{1,64}$/.test(nodeId)) problems.push('BINDERY_NODE_ID must be 1–64 of [A-Za-z0-9_.-]');

  const shutdownGraceMs = int('BINDERY_SHUTDOWN_GRACE_MS', 10_000, 0, 600_000);
  const deviceOfflineAfterSec = int('BINDERY_DEVICE_OFFLINE_AFTER', 90, 5, 86_400);

  const tp = str('BINDERY_TRUST_PROXY') ?? 'false';
  if (tp !== 'true' && tp !== 'false') problems.push('BINDERY_TRUST_PROXY must be true or false');

  const outboundAllow: Cidr[] = [];
  for (const part of (str('BINDERY_OUTBOUND_ALLOW') ?? '').split(',')) {
    if (part.trim() === '') continue;
    const c = parseCidr(part);
    if (c) outboundAllow.push(c);
    else problems.push(`BINDERY_OUTBOUND_ALLOW must be a comma-separated list of CIDRs or addresses (got "${part.trim()}")`);
  }

  const timeZone = str('BINDERY_TIME_ZONE') ?? 'UTC';
  try {
    new Intl.DateTimeFormat('en', { timeZone });
  } catch {
    problems.push(`BINDERY_TIME_ZONE must be an IANA time zone such as Asia/Shanghai (got "${timeZone}")`);
  }

  if (problems.length > 0) throw new ConfigError(problems);
  return {
    port,
    host,
    dataDir,
    publicUrl,
    databaseUrl,
    sqlitePath,
    redisUrl,
    redisPrefix,
    masterKey,
    masterKeyFile,
    logLevel: lvl,
    nodeId,
    tls: certFile && keyFile ? { certFile, keyFile } : null,
    shutdownGraceMs,
    deviceOfflineAfterSec,
    trustProxy: tp === 'true',
    outboundAllow,
    timeZone,
  };
}
