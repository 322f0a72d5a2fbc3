import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { EventBus } from '../adapters/bus/event-bus.js';
import { MemoryEventBus } from '../adapters/bus/memory-bus.js';
import { FlexibleRateLimiter } from '../adapters/ratelimit/flexible-limiter.js';
import type { RateLimiter } from '../adapters/ratelimit/rate-limiter.js';
import { SecretBox } from '../adapters/secrets/secret-box.js';
import type { Db } from '../adapters/storage/database.js';
import { buildApp } from '../app.js';
import { type Config, loadConfig } from '../config.js';
import type { Deps } from '../deps.js';
import type { Services } from '../services.js';
import { ManualClock } from '../shared/clock.js';
import { createLogger } from '../shared/logger.js';
import { Metrics } from '../shared/metrics.js';
import type { TestBackend } from './backends.js';

export interface Harness {
  deps: Deps;
  app: FastifyInstance;
  services: Services;
  clock: ManualClock;
  /** An operator's bearer token. */
  operatorToken: string;
  close(): Promise<void>;
}

/**
 * A real app on a real database (SQLite or PostgreSQL), with a movable clock and one operator.
 * Nothing is mocked; only time is injected.
 */
export async function startHarness(
  backend: TestBackend,
  opts: { config?: Record<string, string>; bus?: EventBus; limiter?: RateLimiter; realClock?: boolean } = {},
): Promise<Harness> {
  const { db, cleanup } = await backend.open();
  const config: Config = loadConfig({
    BINDERY_DATA_DIR: '/tmp/bindery-unused',
    BINDERY_PUBLIC_URL: 'https://bindery.test',
    BINDERY_LOG_LEVEL: 'silent',
    ...opts.config,
  });
  const clock = new ManualClock(Date.now());
  const deps: Deps = {
    config,
    db: db as Db,
    secrets: new SecretBox(randomBytes(32)),
    bus: opts.bus ?? new MemoryEventBus(),
    limiter: opts.limiter ?? FlexibleRateLimiter.memory(),
    logger: createLogger(config),
    clock: opts.realClock ? { now: () => Date.now() } : clock,
    metrics: new Metrics(false),
  };
  const { app, services } = await buildApp(deps);
  await app.ready();
  const { token } = await services.accounts.createOperator(null, { username: 'root', password: 'correct horse battery' });
  return {
    deps,
    app,
    services,
    clock,
    operatorToken: token,
    async close() {
      await app.close();
      await deps.bus.close();
      await deps.limiter.close();
      await cleanup();
    },
  };
}

export function bearer(token: string): { authorization: string } {
  return { authorization: `Bearer ${token}` };
}
