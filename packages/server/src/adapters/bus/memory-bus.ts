import { type BusHandler, type BusOptions, type EventBus, reportToConsole } from './event-bus.js';

/** Single-process bus. Delivery is asynchronous, like Redis, so callers never rely on re-entrancy. */
export class MemoryEventBus implements EventBus {
  private readonly topics = new Map<string, Set<BusHandler>>();
  private readonly onHandlerError: NonNullable<BusOptions['onHandlerError']>;
  private closed = false;

  constructor(opts: BusOptions = {}) {
    this.onHandlerError = opts.onHandlerError ?? reportToConsole;
  }

  async publish(topic: string, message: unknown): Promise<void> {
    if (this.closed) throw new Error('event bus is closed');
    const handlers = this.topics.get(topic);
    if (!handlers || handlers.size === 0) return;
    // Serialised now, so later changes by the publisher don't leak; parsed per handler, so
    // subscribers never share one mutable object (the same as a Redis round trip).
    const raw = JSON.stringify(message ?? null);
    const targets = [...handlers];
    queueMicrotask(() => {
      for (const h of targets) {
        // A handler removed (or the bus closed) after publish() gets nothing, as with Redis.
        if (this.closed || !handlers.has(h)) continue;
        try {
          h(JSON.parse(raw) as unknown, topic);
        } catch (error) {
          this.onHandlerError(error, topic);
        }
      }
    });
  }

  async subscribe(topic: string, handler: BusHandler): Promise<() => Promise<void>> {
    if (this.closed) throw new Error('event bus is closed');
    let set = this.topics.get(topic);
    if (!set) {
      set = new Set();
      this.topics.set(topic, set);
    }
    set.add(handler);
    return async () => {
      set.delete(handler);
      if (set.size === 0 && this.topics.get(topic) === set) this.topics.delete(topic);
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.topics.clear();
  }
}
