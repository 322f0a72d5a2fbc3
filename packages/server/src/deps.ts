import type { Logger } from 'pino';
import type { EventBus } from './adapters/bus/event-bus.js';
import type { RateLimiter } from './adapters/ratelimit/rate-limiter.js';
import type { SecretBox } from './adapters/secrets/secret-box.js';
import type { Db } from './adapters/storage/database.js';
import type { Config } from './config.js';
import type { Clock } from './shared/clock.js';
import type { Metrics } from './shared/metrics.js';

/** The adapters a running Bindery is made of. main.ts builds them from config; tests build their own. */
export interface Deps {
  config: Config;
  db: Db;
  secrets: SecretBox;
  bus: EventBus;
  limiter: RateLimiter;
  logger: Logger;
  clock: Clock;
  metrics: Metrics;
}
