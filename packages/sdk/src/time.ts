/**
 * Injected time. The device reads the clock and schedules every timer (step retries, active
 * polling, ping, reconnect backoff, time resync) through these two interfaces, so tests can
 * drive a device's whole life with `ManualTime` and no real waiting.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export type TimerId = unknown;

export interface Timers {
  setTimeout(fn: () => void, ms: number): TimerId;
  clearTimeout(id: TimerId): void;
}

export const systemClock: Clock = { now: () => Date.now() };

export const systemTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id as ReturnType<typeof setTimeout>),
};

interface ManualTimer {
  id: number;
  at: number;
  /** The delay it was scheduled with, so tests can check backoff and intervals exactly. */
  delay: number;
  fn: () => void;
}

/**
 * A clock and timers that move only when told to. `advance(ms)` fires every timer that falls due,
 * in due order (ties in scheduling order), with `now()` set to each timer's due time as it fires,
 * so a timer scheduled by a firing timer also fires if it falls inside the window.
 */
export class ManualTime implements Clock, Timers {
  private t: number;
  private seq = 0;
  private readonly timers = new Map<number, ManualTimer>();

  constructor(start = Date.UTC(2026, 10, 21, 12, 0, 0)) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerId {
    const id = ++this.seq;
    const delay = Math.max(0, ms);
    this.timers.set(id, { id, at: this.t + delay, delay, fn });
    return id;
  }

  clearTimeout(id: TimerId): void {
    this.timers.delete(id as number);
  }

  /** Timers still waiting, soonest first. */
  pending(): Array<{ id: number; at: number; delay: number; inMs: number }> {
    return [...this.timers.values()]
      .sort((a, b) => a.at - b.at || a.id - b.id)
      .map((x) => ({ id: x.id, at: x.at, delay: x.delay, inMs: x.at - this.t }));
  }

  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: ManualTimer | undefined;
      for (const x of this.timers.values()) {
        if (x.at <= end && (!next || x.at < next.at || (x.at === next.at && x.id < next.id))) next = x;
      }
      if (!next) break;
      this.timers.delete(next.id);
      this.t = next.at;
      next.fn();
    }
    this.t = end;
  }
}
