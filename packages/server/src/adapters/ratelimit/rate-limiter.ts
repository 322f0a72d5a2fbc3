/**
 * One limiter interface for every limit in Bindery (QR generation, merchant API, failed-attempt
 * lockouts, gateway floods). In-memory on one process, Redis across processes; both pass
 * rate-limiter.contract.ts.
 */
export interface LimitRule {
  /** Namespaces keys so two rules never share a counter. */
  name: string;
  /** Allowed points per window. */
  points: number;
  windowSec: number;
  /** Once exceeded, keep refusing for this long (lockouts); 0 = until the window ends. */
  blockSec?: number;
}

export interface LimitResult {
  allowed: boolean;
  remaining: number;
  /** Milliseconds until the key may be used again (0 when allowed). */
  retryAfterMs: number;
}

export interface RateLimiter {
  consume(rule: LimitRule, key: string, points?: number): Promise<LimitResult>;
  /** Clears a key (e.g. after a successful login ends a lockout count). */
  reset(rule: LimitRule, key: string): Promise<void>;
  close(): Promise<void>;
  /** Whether the shared store answers (readiness); absent means always (in-process). */
  ping?(): Promise<boolean>;
}
