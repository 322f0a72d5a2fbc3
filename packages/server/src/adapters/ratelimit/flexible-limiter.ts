import type { Redis } from 'ioredis';
import { type RateLimiterAbstract, RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { AppError } from '../../errors.js';
import { dependencyUnavailable, pingRedis, whenReady } from '../bus/redis-client.js';
import type { LimitResult, LimitRule, RateLimiter } from './rate-limiter.js';

/**
 * Both implementations of RateLimiter, on rate-limiter-flexible: its memory store for one
 * process and its Redis store (atomic Lua) across processes. One limiter per rule.
 */
export class FlexibleRateLimiter implements RateLimiter {
  private readonly limiters = new Map<string, RateLimiterAbstract>();

  private constructor(
    private readonly make: (rule: LimitRule) => RateLimiterAbstract,
    private readonly onClose: () => Promise<void>,
    /** The shared store's connection; null in memory. */
    private readonly client: Redis | null = null,
  ) {}

  static memory(): FlexibleRateLimiter {
    return new FlexibleRateLimiter(
      (r) =>
        new RateLimiterMemory({ keyPrefix: r.name, points: r.points, duration: r.windowSec, blockDuration: r.blockSec ?? 0 }),
      async () => {},
    );
  }

  /** `prefix` keeps test runs and deployments sharing one Redis apart. */
  static redis(client: Redis, prefix = 'bindery', ownsClient = false): FlexibleRateLimiter {
    return new FlexibleRateLimiter(
      (r) =>
        new RateLimiterRedis({
          storeClient: client,
          keyPrefix: `${prefix}:rl:${r.name}`,
          points: r.points,
          duration: r.windowSec,
          blockDuration: r.blockSec ?? 0,
        }),
      async () => {
        // QUIT only on a live connection: queued behind a reconnect it would hold up shutdown.
        if (!ownsClient) return;
        if (client.status === 'ready') await client.quit();
        else client.disconnect();
      },
      client,
    );
  }

  private limiter(rule: LimitRule): RateLimiterAbstract {
    const id = `${rule.name}|${rule.points}|${rule.windowSec}|${rule.blockSec ?? 0}`;
    let l = this.limiters.get(id);
    if (!l) {
      l = this.make(rule);
      this.limiters.set(id, l);
    }
    return l;
  }

  async consume(rule: LimitRule, key: string, points = 1): Promise<LimitResult> {
    // Redis away: refuse at once with a coded 503 rather than wait on the reconnect (finding 8).
    if (this.client) await whenReady(this.client);
    try {
      const res = await this.limiter(rule).consume(key, points);
      return { allowed: true, remaining: res.remainingPoints, retryAfterMs: 0 };
    } catch (e) {
      if (e instanceof RateLimiterRes) {
        return { allowed: false, remaining: 0, retryAfterMs: Math.max(1, e.msBeforeNext) };
      }
      throw this.client && !(e instanceof AppError) ? dependencyUnavailable(e) : e;
    }
  }

  async reset(rule: LimitRule, key: string): Promise<void> {
    if (this.client) await whenReady(this.client);
    try {
      await this.limiter(rule).delete(key);
    } catch (e) {
      throw this.client && !(e instanceof AppError) ? dependencyUnavailable(e) : e;
    }
  }

  async ping(): Promise<boolean> {
    return this.client ? pingRedis(this.client) : true;
  }

  async close(): Promise<void> {
    await this.onClose();
  }
}
