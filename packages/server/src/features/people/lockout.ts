import type { LimitRule, RateLimiter } from '../../adapters/ratelimit/rate-limiter.js';
import { AppError } from '../../errors.js';

/**
 * Stops guessing: failed attempts are counted per user and per network address, and once either
 * count reaches its limit inside the window, that key is refused for `blockSec` — even for a right
 * answer, so an attacker cannot learn which guess was right. Successes do not clear the count
 * (a known-good code would otherwise let guesses continue forever). Works on the in-process and
 * the Redis limiter alike, so a lockout holds across every process of a cluster.
 */
export interface LockoutPolicy {
  /** Short name for the limiter keys and metrics, e.g. "bind". */
  name: string;
  /** Failures allowed per user inside the window; the one that reaches it locks the user out. */
  perUser: number;
  /** Failures allowed per address inside the window. */
  perAddress: number;
  windowSec: number;
  blockSec: number;
  /** The sentence a person sees when locked out. */
  what: string;
}

export interface LockoutKeys {
  user?: string | null;
  address?: string | null;
}

export class Lockout {
  private readonly userRule: LimitRule;
  private readonly addressRule: LimitRule;

  constructor(
    private readonly limiter: RateLimiter,
    readonly policy: LockoutPolicy,
  ) {
    // A limiter allows `points` and refuses the next one; the N-th failure must be the refused one.
    this.userRule = {
      name: `${policy.name}_fail_user`,
      points: policy.perUser - 1,
      windowSec: policy.windowSec,
      blockSec: policy.blockSec,
    };
    this.addressRule = {
      name: `${policy.name}_fail_addr`,
      points: policy.perAddress - 1,
      windowSec: policy.windowSec,
      blockSec: policy.blockSec,
    };
  }

  private pairs(k: LockoutKeys): Array<[LimitRule, string]> {
    const out: Array<[LimitRule, string]> = [];
    if (k.user) out.push([this.userRule, k.user]);
    if (k.address) out.push([this.addressRule, k.address]);
    return out;
  }

  /** Throws LOCKED_OUT while any key is blocked. Consumes nothing. */
  async check(k: LockoutKeys): Promise<void> {
    for (const [rule, key] of this.pairs(k)) {
      const r = await this.limiter.consume(rule, key, 0);
      if (!r.allowed) this.locked(r.retryAfterMs);
    }
  }

  /** Counts one failure on every key; throws LOCKED_OUT when this failure reached a limit. */
  async fail(k: LockoutKeys): Promise<void> {
    let retry = 0;
    for (const [rule, key] of this.pairs(k)) {
      const r = await this.limiter.consume(rule, key, 1);
      if (!r.allowed) retry = Math.max(retry, r.retryAfterMs);
    }
    if (retry > 0) this.locked(retry);
  }

  /** Clears the per-user count (after a successful password login only). */
  async clearUser(user: string): Promise<void> {
    await this.limiter.reset(this.userRule, user);
  }

  private locked(retryAfterMs: number): never {
    const minutes = Math.max(1, Math.ceil(retryAfterMs / 60_000));
    throw new AppError('LOCKED_OUT', `${this.policy.what} Try again in about ${minutes} minute${minutes === 1 ? '' : 's'}.`, {
      retry_after_sec: Math.ceil(retryAfterMs / 1000),
    });
  }
}
