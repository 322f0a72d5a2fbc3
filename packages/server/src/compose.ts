import path from 'node:path';
import type { Logger } from 'pino';
import type { EventBus } from './adapters/bus/event-bus.js';
import { MemoryEventBus } from './adapters/bus/memory-bus.js';
import { FlexibleRateLimiter } from './adapters/ratelimit/flexible-limiter.js';
import type { RateLimiter } from './adapters/ratelimit/rate-limiter.js';
import { loadOrCreateMasterKeyFile, SecretBox } from './adapters/secrets/secret-box.js';
import { openDatabase } from './adapters/storage/database.js';
import type { Config } from './config.js';
import type { Deps } from './deps.js';
import { systemClock } from './shared/clock.js';
import { prepareDataDir } from './shared/data-dir.js';
import { createLogger } from './shared/logger.js';
import { Metrics } from './shared/metrics.js';

/**
 * Builds every adapter from config: SQLite or PostgreSQL, in-process or Redis bus and limits.
 * main.ts (the server) and the CLI both start here, so they always agree on where data lives.
 */
export async function composeDeps(
  config: Config,
  /** `server`: the server process (umask 077, temp sweep: shared/data-dir.ts); the CLI leaves it out. */
  opts: { logger?: Logger; migrate?: boolean; server?: boolean } = {},
): Promise<Deps> {
  const logger = opts.logger ?? createLogger(config);
  // Finding 10: 0700/0600 before the database or any other file is opened (and, for the server, stale temp files gone).
  prepareDataDir(config.dataDir, { server: opts.server === true, logger });
  const db = config.databaseUrl
    ? openDatabase({ kind: 'postgres', url: config.databaseUrl })
    : openDatabase({ kind: 'sqlite', file: config.sqlitePath });
  if (opts.migrate !== false) await db.migrate();

  let masterKey = config.masterKey;
  if (!masterKey) {
    const file = config.masterKeyFile;
    const { key, created, tightened } = loadOrCreateMasterKeyFile(file);
    if (created) logger.warn({ file }, 'generated a new master key; back it up apart from the database');
    if (tightened) logger.warn({ file }, 'the master key file was readable by others; narrowed to 0600');
    if (path.dirname(file) === config.dataDir) {
      logger.info(
        { file },
        'the master key is in the data directory, so a backup of it holds the key too; BINDERY_MASTER_KEY_FILE moves it',
      );
    }
    masterKey = key;
  }

  let bus: EventBus;
  let limiter: RateLimiter;
  const busOptions = {
    onHandlerError: (err: unknown, topic: string) => logger.error({ err, topic }, 'event bus handler failed'),
  };
  if (config.redisUrl) {
    const { RedisEventBus } = await import('./adapters/bus/redis-bus.js');
    bus = new RedisEventBus(config.redisUrl, config.redisPrefix, busOptions);
    // Auto-pipelining sends the commands of one event-loop turn in one write: a connection burst
    // would otherwise cost a socket write per limiter call.
    // Bounded calls (adapters/bus/redis-client.ts): with Redis away a limit check fails fast as a coded 503.
    const { newRedis } = await import('./adapters/bus/redis-client.js');
    limiter = FlexibleRateLimiter.redis(newRedis(config.redisUrl, { enableAutoPipelining: true }), config.redisPrefix, true);
  } else {
    bus = new MemoryEventBus(busOptions);
    limiter = FlexibleRateLimiter.memory();
  }

  return {
    config,
    db,
    secrets: new SecretBox(masterKey),
    bus,
    limiter,
    logger,
    clock: systemClock,
    metrics: new Metrics(),
  };
}

export async function closeDeps(deps: Deps): Promise<void> {
  await Promise.allSettled([deps.bus.close(), deps.limiter.close()]);
  await deps.db.close();
}
