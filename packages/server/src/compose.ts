import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { EventBus } from './adapters/bus/event-bus.js';
import { MemoryEventBus } from './adapters/bus/memory-bus.js';
import { FlexibleRateLimiter } from './adapters/ratelimit/flexible-limiter.js';
import type { RateLimiter } from './adapters/ratelimit/rate-limiter.js';
import { loadOrCreateMasterKey, SecretBox } from './adapters/secrets/secret-box.js';
import { openDatabase } from './adapters/storage/database.js';
import type { Config } from './config.js';
import type { Deps } from './deps.js';
import { systemClock } from './shared/clock.js';
import { createLogger } from './shared/logger.js';
import { Metrics } from './shared/metrics.js';

/**
 * Builds every adapter from config: SQLite or PostgreSQL, in-process or Redis bus and limits.
 * main.ts (the server) and the CLI both start here, so they always agree on where data lives.
 */
export async function composeDeps(config: Config, opts: { logger?: Logger; migrate?: boolean } = {}): Promise<Deps> {
  const logger = opts.logger ?? createLogger(config);
  const db = config.databaseUrl
    ? openDatabase({ kind: 'postgres', url: config.databaseUrl })
    : openDatabase({ kind: 'sqlite', file: config.sqlitePath });
  if (opts.migrate !== false) await db.migrate();

  let masterKey = config.masterKey;
  if (!masterKey) {
    const { key, created } = loadOrCreateMasterKey(config.dataDir);
    if (created) logger.warn({ dataDir: config.dataDir }, 'generated a new master key in the data dir; back it up');
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
    limiter = FlexibleRateLimiter.redis(new Redis(config.redisUrl, { enableAutoPipelining: true }), config.redisPrefix, true);
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
