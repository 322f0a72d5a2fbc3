import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { type AddressInfo, createServer } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { redisUrl, skipReasonRedis } from '../../testing/backends.js';
import { FlexibleRateLimiter } from './flexible-limiter.js';
import { rateLimiterContract, ruleName } from './rate-limiter.contract.js';
import type { LimitRule } from './rate-limiter.js';

rateLimiterContract('FlexibleRateLimiter.memory()', async () => {
  const limiter = FlexibleRateLimiter.memory();
  return { limiter, cleanup: () => limiter.close() };
});

const redisSkip = skipReasonRedis();
// One prefix for this run: everything the suite writes lives under it and is deleted afterwards.
const prefix = `bindery_t_${randomBytes(6).toString('hex')}`;
let admin: Redis | undefined;
const adminClient = (): Redis => {
  admin ??= new Redis(redisUrl!, { maxRetriesPerRequest: 1 });
  return admin;
};

async function deleteKeys(pattern: string): Promise<void> {
  const r = adminClient();
  let cursor = '0';
  do {
    const [next, keys] = await r.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    if (keys.length > 0) await r.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

afterAll(async () => {
  await admin?.quit();
});

rateLimiterContract(
  'FlexibleRateLimiter.redis()',
  async () => {
    const limiter = FlexibleRateLimiter.redis(new Redis(redisUrl!), prefix, true);
    return {
      limiter,
      cleanup: async () => {
        await limiter.close();
        await deleteKeys(`${prefix}:*`);
      },
    };
  },
  redisSkip,
);

describe('FlexibleRateLimiter.redis() across processes', () => {
  it.skipIf(redisSkip)('two limiters on one Redis prefix share the counts (20 per window, 21 consumes → 1 refused)', async () => {
    // Two clients and two limiters: what two Bindery processes of one deployment hold.
    const one = FlexibleRateLimiter.redis(new Redis(redisUrl!), prefix, true);
    const two = FlexibleRateLimiter.redis(new Redis(redisUrl!), prefix, true);
    try {
      // A long window so that all 21 certainly land in one, however slow the machine.
      const rule: LimitRule = { name: ruleName('merchant'), points: 20, windowSec: 60 };
      const results = await Promise.all(Array.from({ length: 21 }, (_, i) => (i % 2 === 0 ? one : two).consume(rule, 'mch-1')));
      expect(results.filter((r) => r.allowed)).toHaveLength(20);
      const refused = results.filter((r) => !r.allowed);
      expect(refused).toHaveLength(1);
      expect(refused[0]!.retryAfterMs).toBeGreaterThan(0);
      // Either process sees the key exhausted, and a reset by one is seen by the other.
      expect((await one.consume(rule, 'mch-1')).allowed).toBe(false);
      expect((await two.consume(rule, 'mch-1')).allowed).toBe(false);
      await one.reset(rule, 'mch-1');
      expect(await two.consume(rule, 'mch-1')).toMatchObject({ allowed: true, remaining: 19 });
    } finally {
      await Promise.all([one.close(), two.close()]);
      await deleteKeys(`${prefix}:*`);
    }
  });

  it.skipIf(redisSkip)('limiters on different prefixes do not share counts', async () => {
    const mine = FlexibleRateLimiter.redis(new Redis(redisUrl!), prefix, true);
    const theirs = FlexibleRateLimiter.redis(new Redis(redisUrl!), `${prefix}_other`, true);
    try {
      const rule: LimitRule = { name: ruleName('qr'), points: 1, windowSec: 60 };
      expect((await mine.consume(rule, 'k')).allowed).toBe(true);
      expect((await mine.consume(rule, 'k')).allowed).toBe(false);
      expect((await theirs.consume(rule, 'k')).allowed).toBe(true);
    } finally {
      await Promise.all([mine.close(), theirs.close()]);
      await deleteKeys(`${prefix}*`);
    }
  });

  it.skipIf(redisSkip)('keeps its keys under the prefix and leaves none behind', async () => {
    const l = FlexibleRateLimiter.redis(new Redis(redisUrl!), prefix, true);
    const rule: LimitRule = { name: ruleName('keys'), points: 5, windowSec: 60 };
    await l.consume(rule, 'device-1');
    const keys = await adminClient().keys(`${prefix}*`);
    expect(keys).toEqual([`${prefix}:rl:${rule.name}:device-1`]);
    // The key expires by itself with the window.
    expect(await adminClient().pttl(keys[0]!)).toBeGreaterThan(0);
    await l.close();
    await deleteKeys(`${prefix}:*`);
    expect(await adminClient().keys(`${prefix}*`)).toEqual([]);
  });

  it.skipIf(redisSkip)('close() quits a client it owns and leaves a borrowed one open', async () => {
    const owned = new Redis(redisUrl!);
    const borrowed = new Redis(redisUrl!);
    await Promise.all([owned.ping(), borrowed.ping()]);
    await FlexibleRateLimiter.redis(owned, prefix, true).close();
    await FlexibleRateLimiter.redis(borrowed, prefix).close();
    await expect(owned.ping()).rejects.toThrow(/closed/i);
    expect(await borrowed.ping()).toBe('PONG');
    await borrowed.quit();
  });
});

describe('FlexibleRateLimiter.redis() when Redis is unreachable', () => {
  it('close() still returns', async () => {
    const srv = createServer();
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const { port } = srv.address() as AddressInfo;
    await new Promise<void>((resolve) => srv.close(() => resolve()));
    const client = new Redis(`redis://127.0.0.1:${port}`, { maxRetriesPerRequest: null });
    client.on('error', () => {}); // the expected ECONNREFUSED
    const l = FlexibleRateLimiter.redis(client, 'bindery_t_down', true);
    const ended = once(client, 'end');
    // A consume waiting for the connection; it is refused by the close (nobody waits for it here).
    l.consume({ name: 'x', points: 1, windowSec: 1 }, 'k').catch(() => {});
    await l.close();
    await ended; // the client is really gone, not reconnecting in the background
  });
});
