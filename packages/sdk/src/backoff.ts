/** Reconnect delays: exponential, capped, with jitter so a fleet cut off at once doesn't return at once. */
export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  factor: number;
  /** Fraction of the delay that is random: the delay lies in (base·(1−jitter), base]. 0 = none, 1 = full jitter. */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 1000, maxMs: 60_000, factor: 2, jitter: 0.5 };

/** Delay before reconnect attempt `attempt` (0-based); `random` returns [0, 1). */
export function backoffDelay(attempt: number, p: BackoffPolicy, random: () => number): number {
  const base = Math.min(p.maxMs, p.initialMs * p.factor ** Math.max(0, attempt));
  return Math.round(base * (1 - p.jitter * random()));
}
