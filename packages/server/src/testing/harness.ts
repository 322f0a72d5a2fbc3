import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
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
import { deleteRedisPrefix, redisUrl, sqliteBackend, type TestBackend } from './backends.js';

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

export interface ProcessPair {
  /** The first process, with the services tests set data up through. */
  h: Harness;
  /** http://127.0.0.1:<port> of the first and the second process. */
  bases: [string, string];
  close(): Promise<void>;
}

/**
 * Two Bindery processes of one deployment: one database and master key (SQLite), each app with
 * its own Redis connection under one key prefix, both listening on 127.0.0.1. For limits and
 * replay memories that must hold across processes, not per process. Needs REDIS_URL.
 */
export async function startProcessPair(): Promise<ProcessPair> {
  const prefix = `bindery_t_${randomBytes(6).toString('hex')}`;
  const h = await startHarness(sqliteBackend, { limiter: FlexibleRateLimiter.redis(new Redis(redisUrl!), prefix, true) });
  const secondLimiter = FlexibleRateLimiter.redis(new Redis(redisUrl!), prefix, true);
  const second = (await buildApp({ ...h.deps, limiter: secondLimiter })).app;
  const bases: string[] = [];
  for (const app of [h.app, second]) {
    await app.listen({ port: 0, host: '127.0.0.1' });
    bases.push(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`);
  }
  return {
    h,
    bases: bases as [string, string],
    async close() {
      await second.close();
      await secondLimiter.close();
      await h.close();
      await deleteRedisPrefix(prefix);
    },
  };
}
