import type { LimitRule, RateLimiter } from '../../adapters/ratelimit/rate-limiter.js';
import { AppError } from '../../errors.js';

/**
 * Stops guessing: failed attempts are counted per user, per network address and (optionally) per
 * user from one address, and once a count reaches its limit inside the window, that key is refused
 * for `blockSec` — even for a right answer, so an attacker cannot learn which guess was right.
 * Successes do not clear the per-user or per-address count (a known-good code would otherwise let
 * guesses continue forever); only the user+address count restarts. Works on the in-process and the
 * Redis limiter alike, so a lockout holds across every process of a cluster.
 *
 * Two ways to use one: check + fail (binding codes: count after the answer is known), or
 * attempt + succeeded (passwords, features/people/credentials.ts: count before, so parallel
 * guesses cannot overrun the limit). A Lockout is used one way only; each keeps its own counters.
 */
export interface LockoutPolicy {
  /** Short name for the limiter keys and metrics, e.g. "bind". */
  name: string;
  /** Failures allowed per user inside the window; the one that reaches it locks the user out. */
  perUser: number;
  /** Failures allowed per address inside the window. */
  perAddress: number;
  /** Failures allowed per user from one address (tighter than perUser); unset = not counted. */
  perUserAddress?: number;
  windowSec: number;
  blockSec: number;
  /** The sentence a person sees when locked out. */
  what: string;
}

export interface LockoutKeys {
  user?: string | null;
  address?: string | null;
}

type KeyKind = 'user' | 'address' | 'pair';

/** What `attempt` reserved; `exhausted` names the keys whose last allowed attempt this one took. */
export interface LockoutAttempt {
  keys: LockoutKeys;
  exhausted: KeyKind[];
}

type Rules = Record<KeyKind, LimitRule | null>;

export class Lockout {
  /** check/fail: the N-th failure is the refused consume (points N-1), which blocks the key. */
  private readonly afterRules: Rules;
  /** attempt: failures plus attempts in flight, N allowed; never blocks by itself. */
  private readonly tryRules: Rules;
  /** attempt: set (points 0, one consume) when the N-th failure lands; blocks for blockSec. */
  private readonly lockRules: Rules;

  constructor(
    private readonly limiter: RateLimiter,
    readonly policy: LockoutPolicy,
  ) {
    const p = policy;
    const rules = (kind: string, points: (n: number) => number, windowSec: number, blockSec: number): Rules => {
      const rule = (suffix: string, n: number): LimitRule => ({
        name: `${p.name}_${kind}_${suffix}`,
        points: points(n),
        windowSec,
        blockSec,
      });
      return {
        user: rule('user', p.perUser),
        address: rule('addr', p.perAddress),
        pair: p.perUserAddress ? rule('user_addr', p.perUserAddress) : null,
      };
    };
    this.afterRules = rules('fail', (n) => n - 1, p.windowSec, p.blockSec);
    this.tryRules = rules('try', (n) => n, p.windowSec, 0);
    this.lockRules = rules('lock', () => 0, p.blockSec, p.blockSec);
  }

  private pairs(r: Rules, k: LockoutKeys): Array<[LimitRule, string, KeyKind]> {
    const out: Array<[LimitRule, string, KeyKind]> = [];
    if (k.user && r.user) out.push([r.user, k.user, 'user']);
    if (k.address && r.address) out.push([r.address, k.address, 'address']);
    if (k.user && k.address && r.pair) out.push([r.pair, `${k.user}|${k.address}`, 'pair']);
    return out;
  }

  /** Throws LOCKED_OUT while any key is blocked. Consumes nothing. */
  async check(k: LockoutKeys): Promise<void> {
    const results = await Promise.all(this.pairs(this.afterRules, k).map(([rule, key]) => this.limiter.consume(rule, key, 0)));
    const blocked = results.filter((x) => !x.allowed);
    if (blocked.length) this.locked(Math.max(...blocked.map((x) => x.retryAfterMs)));
  }

  /** Counts one failure on every key; throws LOCKED_OUT when this failure reached a limit. */
  async fail(k: LockoutKeys): Promise<void> {
    // Every key counts this failure, even when an earlier one already refuses it.
    const results = await Promise.all(this.pairs(this.afterRules, k).map(([rule, key]) => this.limiter.consume(rule, key, 1)));
    const retry = Math.max(0, ...results.filter((x) => !x.allowed).map((x) => x.retryAfterMs));
    if (retry > 0) this.locked(retry);
  }

  /**
   * Counts this attempt BEFORE the answer is checked (each consume is atomic, also on Redis), so
   * parallel guesses cannot all slip past a check that has not seen the others' failures yet: a
   * key's count is its failures plus the attempts still in flight. Throws LOCKED_OUT while a key is
   * locked, and RATE_LIMITED (taking nothing, locking nothing) when attempts in flight fill what is
   * left, e.g. a script exchanging tokens in parallel. Then call `succeeded` or `failed`.
   */
  async attempt(k: LockoutKeys): Promise<LockoutAttempt> {
    const locks = await Promise.all(this.pairs(this.lockRules, k).map(([rule, key]) => this.limiter.consume(rule, key, 0)));
    const locked = locks.filter((x) => !x.allowed);
    if (locked.length) this.locked(Math.max(...locked.map((x) => x.retryAfterMs)));
    const tries = this.pairs(this.tryRules, k);
    const results = await Promise.all(tries.map(([rule, key]) => this.limiter.consume(rule, key, 1)));
    if (results.some((x) => !x.allowed)) {
      // A refused consume still counted: take every point of this attempt back.
      await Promise.all(tries.map(([rule, key]) => this.limiter.consume(rule, key, -1)));
      throw new AppError('RATE_LIMITED', 'Too many sign-in attempts at once for this account or network; retry in a moment.', {
        retry_after_sec: 1,
      });
    }
    return { keys: k, exhausted: tries.filter((_, i) => results[i]!.remaining === 0).map(([, , kind]) => kind) };
  }

  /**
   * A right answer after `attempt`: the per-user and per-address counts get their point back
   * (a success is no failure), and the user+address count starts again from zero.
   */
  async succeeded(a: LockoutAttempt): Promise<void> {
    await Promise.all(
      this.pairs(this.tryRules, a.keys).map(([rule, key, kind]) =>
        kind === 'pair' ? this.limiter.reset(rule, key) : this.limiter.consume(rule, key, -1),
      ),
    );
  }

  /** Neither right nor wrong (the check itself failed): the attempt takes nothing. */
  async release(a: LockoutAttempt): Promise<void> {
    await Promise.all(this.pairs(this.tryRules, a.keys).map(([rule, key]) => this.limiter.consume(rule, key, -1)));
  }

  /** A wrong answer after `attempt` (already counted): when it was a key's last, lock that key. */
  async failed(a: LockoutAttempt): Promise<void> {
    if (a.exhausted.length === 0) return;
    const lock = this.pairs(this.lockRules, a.keys).filter(([, , kind]) => a.exhausted.includes(kind));
    await Promise.all(lock.map(([rule, key]) => this.limiter.consume(rule, key, 1)));
    this.locked(this.policy.blockSec * 1000);
  }

  /**
   * Lifts the account-wide lock and count of `user` (not those of any address): after an
   * administrator's password reset the owner signs in at once, even if guessers locked the name.
   */
  async unlockUser(user: string): Promise<void> {
    const rules = [this.afterRules.user, this.tryRules.user, this.lockRules.user].filter((r): r is LimitRule => r !== null);
    await Promise.all(rules.map((rule) => this.limiter.reset(rule, user)));
  }

  private locked(retryAfterMs: number): never {
    const minutes = Math.max(1, Math.ceil(retryAfterMs / 60_000));
    throw new AppError('LOCKED_OUT', `${this.policy.what} Try again in about ${minutes} minute${minutes === 1 ? '' : 's'}.`, {
      retry_after_sec: Math.ceil(retryAfterMs / 1000),
    });
  }
}
