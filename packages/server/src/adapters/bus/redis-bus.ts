import type { Redis } from 'ioredis';
import { type BusHandler, type BusOptions, type EventBus, reportToConsole } from './event-bus.js';
import { guarded, newRedis, pingRedis } from './redis-client.js';

interface Topic {
  handlers: Set<BusHandler>;
  /** The SUBSCRIBE for this topic; every subscribe() waits for it, so none returns before it is live. */
  live: Promise<void>;
}

/**
 * Cluster bus on Redis pub/sub: one connection publishes, one subscribes (a subscribed Redis
 * connection can do nothing else). `prefix` keeps deployments and test runs on one Redis apart.
 */
export class RedisEventBus implements EventBus {
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly topics = new Map<string, Topic>();
  private readonly onHandlerError: NonNullable<BusOptions['onHandlerError']>;
  private closed = false;
  /** Rejects on close(), so a subscribe() still waiting for an unreachable Redis returns too. */
  private readonly closing: Promise<never>;
  private markClosed!: (e: Error) => void;

  constructor(
    url: string,
    private readonly prefix = 'bindery',
    opts: BusOptions = {},
  ) {
    this.onHandlerError = opts.onHandlerError ?? reportToConsole;
    this.closing = new Promise<never>((_, reject) => {
      this.markClosed = reject;
    });
    this.closing.catch(() => {}); // observed through Promise.race below; never unhandled
    // Bounded calls (redis-client.ts): a publish to an unreachable Redis fails fast, coded.
    this.pub = newRedis(url, { enableAutoPipelining: true });
    // The subscriber keeps its offline queue: SUBSCRIBEs wait for the connection, and ioredis
    // subscribes every channel again after a reconnect.
    this.sub = newRedis(url, { maxRetriesPerRequest: null });
    this.sub.on('message', (channel: string, raw: string) => {
      const topic = channel.slice(this.prefix.length + 5);
      const t = this.topics.get(topic);
      if (!t) return;
      for (const h of [...t.handlers]) {
        // One removed by an earlier handler of this same message (or by close()) gets nothing.
        if (this.closed || !t.handlers.has(h)) continue;
        let msg: unknown;
        try {
          // Parsed per handler so subscribers never share one mutable object.
          msg = JSON.parse(raw);
        } catch {
          return; // not ours: every publisher on this prefix sends JSON
        }
        try {
          h(msg, topic);
        } catch (error) {
          this.onHandlerError(error, topic);
        }
      }
    });
  }

  private channel(topic: string): string {
    return `${this.prefix}:bus:${topic}`;
  }

  async publish(topic: string, message: unknown): Promise<void> {
    if (this.closed) throw new Error('event bus is closed');
    const raw = JSON.stringify(message ?? null);
    await guarded(this.pub, () => this.pub.publish(this.channel(topic), raw));
  }

  /** Readiness (/readyz): both connections up and Redis answering. */
  async ping(): Promise<boolean> {
    return this.sub.status === 'ready' && (await pingRedis(this.pub));
  }

  async subscribe(topic: string, handler: BusHandler): Promise<() => Promise<void>> {
    if (this.closed) throw new Error('event bus is closed');
    let t = this.topics.get(topic);
    if (!t) {
      const handlers = new Set<BusHandler>();
      const live = this.sub.subscribe(this.channel(topic)).then(() => {});
      t = { handlers, live };
      const created = t;
      this.topics.set(topic, created);
      // A failed SUBSCRIBE must not leave a topic that later subscribers would take for live.
      live.catch(() => {
        if (this.topics.get(topic) === created) this.topics.delete(topic);
      });
    }
    t.handlers.add(handler);
    try {
      await Promise.race([t.live, this.closing]);
    } catch (e) {
      t.handlers.delete(handler);
      throw e;
    }
    const mine = t;
    return async () => {
      mine.handlers.delete(handler);
      if (mine.handlers.size === 0 && this.topics.get(topic) === mine && !this.closed) {
        this.topics.delete(topic);
        await this.sub.unsubscribe(this.channel(topic));
      }
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.markClosed(new Error('event bus is closed'));
    // Dropping the handlers first means nothing is delivered from here on, even a message in flight.
    const hadTopics = this.topics.size > 0;
    this.topics.clear();
    // Unsubscribing before QUIT releases the channels at a known point, not whenever the server frees the client.
    // (Only on a live connection: queued behind a reconnect it would hold up shutdown.)
    if (hadTopics && this.sub.status === 'ready') await this.sub.unsubscribe().catch(() => {});
    await Promise.allSettled([endConnection(this.pub), endConnection(this.sub)]);
  }
}

/**
 * QUIT on a live connection; otherwise drop it. With maxRetriesPerRequest: null a QUIT queued
 * behind a reconnect to an unreachable Redis never completes, and shutdown would hang on it.
 */
export async function endConnection(c: Redis): Promise<void> {
  if (c.status === 'ready') await c.quit();
  else c.disconnect();
}
