import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { LimitResult, LimitRule, RateLimiter } from './rate-limiter.js';

/**
 * The behaviour every RateLimiter must have, run against each implementation. Windows are short
 * (1 s) where a case must see one end; such cases wait for the limiter's own retryAfterMs and
 * retry until allowed, so a slow machine makes them slower, never red. No case asserts a duration
 * beyond "more than zero" and "not more than the rule allows".
 */
export interface LimiterUnderTest {
  limiter: RateLimiter;
  /** Closes the limiter and removes every trace of it (Redis keys). */
  cleanup: () => Promise<void>;
}

/** A rule name no other case (or run) uses. */
export const ruleName = (label: string): string => `${label}_${randomBytes(4).toString('hex')}`;

/** Consumes until allowed, sleeping for the limiter's own retryAfterMs between attempts. */
export async function consumeWhenAllowed(limiter: RateLimiter, rule: LimitRule, key: string): Promise<LimitResult> {
  for (;;) {
    const r = await limiter.consume(rule, key);
    if (r.allowed) return r;
    await sleep(r.retryAfterMs + 10);
  }
}

export function rateLimiterContract(name: string, make: () => Promise<LimiterUnderTest>, skip?: string): void {
  describe(`RateLimiter contract: ${name}`, () => {
    let current: LimiterUnderTest | undefined;
    const open = async (): Promise<RateLimiter> => {
      current = await make();
      return current.limiter;
    };
    afterEach(async () => {
      await current?.cleanup();
      current = undefined;
    });

    it.skipIf(skip)('allows `points` per window, counts down remaining, then refuses with retryAfterMs > 0', async () => {
      const l = await open();
      const rule: LimitRule = { name: ruleName('qr'), points: 3, windowSec: 60 };
      const results = [];
      for (let i = 0; i < 4; i++) results.push(await l.consume(rule, 'corp-1'));
      expect(results.map((r) => r.allowed)).toEqual([true, true, true, false]);
      expect(results.slice(0, 3).map((r) => r.remaining)).toEqual([2, 1, 0]);
      expect(results.slice(0, 3).map((r) => r.retryAfterMs)).toEqual([0, 0, 0]);
      const refused = results[3]!;
      expect(refused.remaining).toBe(0);
      expect(refused.retryAfterMs).toBeGreaterThan(0);
      expect(refused.retryAfterMs).toBeLessThanOrEqual(60_000);
      // Still refused on the next try within the window.
      expect((await l.consume(rule, 'corp-1')).allowed).toBe(false);
    });

    it.skipIf(skip)('consumes several points at once', async () => {
      const l = await open();
      const rule: LimitRule = { name: ruleName('bulk'), points: 10, windowSec: 60 };
      expect(await l.consume(rule, 'k', 4)).toMatchObject({ allowed: true, remaining: 6 });
      expect(await l.consume(rule, 'k', 6)).toMatchObject({ allowed: true, remaining: 0 });
      const over = await l.consume(rule, 'k', 1);
      expect(over.allowed).toBe(false);
      expect(over.retryAfterMs).toBeGreaterThan(0);
      // A request bigger than the whole allowance is refused on a fresh key too.
      expect((await l.consume(rule, 'fresh', 11)).allowed).toBe(false);
    });

    it.skipIf(skip)('consuming 0 points reports the state without spending any (lockout checks rely on it)', async () => {
      const l = await open();
      const rule: LimitRule = { name: ruleName('peek'), points: 2, windowSec: 60, blockSec: 60 };
      expect(await l.consume(rule, 'u', 0)).toMatchObject({ allowed: true, remaining: 2 });
      expect(await l.consume(rule, 'u', 1)).toMatchObject({ allowed: true, remaining: 1 });
      expect(await l.consume(rule, 'u', 0)).toMatchObject({ allowed: true, remaining: 1 });
      expect(await l.consume(rule, 'u', 1)).toMatchObject({ allowed: true, remaining: 0 });
      expect(await l.consume(rule, 'u', 0)).toMatchObject({ allowed: true, remaining: 0 });
      expect((await l.consume(rule, 'u', 1)).allowed).toBe(false);
      const peek = await l.consume(rule, 'u', 0);
      expect(peek.allowed).toBe(false);
      expect(peek.retryAfterMs).toBeGreaterThan(0);
      await l.reset(rule, 'u');
      expect(await l.consume(rule, 'u', 0)).toMatchObject({ allowed: true, remaining: 2 });
    });

    it.skipIf(skip)('a new window allows again', async () => {
      const l = await open();
      const rule: LimitRule = { name: ruleName('window'), points: 2, windowSec: 1 };
      expect((await l.consume(rule, 'k')).allowed).toBe(true);
      expect((await l.consume(rule, 'k')).allowed).toBe(true);
      const refused = await l.consume(rule, 'k');
      expect(refused.allowed).toBe(false);
      await sleep(refused.retryAfterMs + 10);
      const again = await consumeWhenAllowed(l, rule, 'k');
      // A fresh window: the full allowance minus this one point.
      expect(again.remaining).toBe(1);
    });

    it.skipIf(skip)('blockSec keeps refusing after the window has ended, until reset()', async () => {
      const l = await open();
      const lockout: LimitRule = { name: ruleName('lockout'), points: 1, windowSec: 1, blockSec: 60 };
      // The same window without a block: it shows when the window has certainly ended.
      const plain: LimitRule = { name: ruleName('plain'), points: 1, windowSec: 1 };
      expect((await l.consume(lockout, 'user-7')).allowed).toBe(true);
      expect((await l.consume(plain, 'user-7')).allowed).toBe(true);
      const blocked = await l.consume(lockout, 'user-7');
      expect(blocked.allowed).toBe(false);
      expect(blocked.retryAfterMs).toBeGreaterThan(0);
      // The plain rule's window (started after the lockout's) ends...
      await consumeWhenAllowed(l, plain, 'user-7');
      // ...and the lockout still refuses: the block outlives the window.
      const still = await l.consume(lockout, 'user-7');
      expect(still.allowed).toBe(false);
      expect(still.retryAfterMs).toBeGreaterThan(0);
      await l.reset(lockout, 'user-7');
      expect(await l.consume(lockout, 'user-7')).toMatchObject({ allowed: true, remaining: 0 });
    });

    it.skipIf(skip)('reset() clears one key and leaves the others', async () => {
      const l = await open();
      const rule: LimitRule = { name: ruleName('login'), points: 2, windowSec: 60 };
      for (const k of ['alice', 'bob']) {
        await l.consume(rule, k);
        await l.consume(rule, k);
        expect((await l.consume(rule, k)).allowed).toBe(false);
      }
      await l.reset(rule, 'alice');
      expect(await l.consume(rule, 'alice')).toMatchObject({ allowed: true, remaining: 1 });
      expect((await l.consume(rule, 'bob')).allowed).toBe(false);
      // Resetting a key that was never used is harmless.
      await expect(l.reset(rule, 'nobody')).resolves.toBeUndefined();
    });

    it.skipIf(skip)('keys of one rule are independent, and so are rules on one key', async () => {
      const l = await open();
      const rule: LimitRule = { name: ruleName('sn'), points: 1, windowSec: 60 };
      const other: LimitRule = { name: ruleName('sn'), points: 1, windowSec: 60 };
      expect((await l.consume(rule, 'SN-A')).allowed).toBe(true);
      expect((await l.consume(rule, 'SN-A')).allowed).toBe(false);
      expect(await l.consume(rule, 'SN-B')).toMatchObject({ allowed: true, remaining: 0 });
      expect((await l.consume(other, 'SN-A')).allowed).toBe(true);
      // Keys that only differ in case, or contain separators, are separate keys.
      expect((await l.consume(rule, 'sn-a')).allowed).toBe(true);
      expect((await l.consume(rule, 'SN-A:x')).allowed).toBe(true);
    });

    it.skipIf(skip)('counts concurrent consumes exactly', async () => {
      const l = await open();
      const rule: LimitRule = { name: ruleName('burst'), points: 20, windowSec: 60 };
      const results = await Promise.all(Array.from({ length: 30 }, () => l.consume(rule, 'k')));
      expect(results.filter((r) => r.allowed)).toHaveLength(20);
      expect(
        results
          .filter((r) => r.allowed)
          .map((r) => r.remaining)
          .sort((x, y) => x - y),
      ).toEqual(Array.from({ length: 20 }, (_, i) => i));
    });
  });
}
