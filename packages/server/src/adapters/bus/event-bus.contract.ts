import { randomBytes } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import type { BusHandler, EventBus } from './event-bus.js';

/**
 * The behaviour every EventBus must have, run against each implementation (like aedes'
 * abstract tests). `a` and `b` stand for two processes of one deployment: two buses on the same
 * Redis and prefix, or the same in-process bus twice.
 *
 * No case waits for a fixed time. "Nothing arrived" is proven with a fence: a later message on a
 * topic the same bus also listens to. Delivery for one topic on one bus runs every handler in one
 * pass, so once the fence message has reached a witness handler, a message that should not have
 * arrived would already have.
 */
export interface BusPair {
  a: EventBus;
  b: EventBus;
  /** Errors the buses reported from throwing handlers (wired to their onHandlerError). */
  handlerErrors: Array<{ topic: string; error: unknown }>;
  /** Live transport channels of this pair (Redis: PUBSUB CHANNELS prefix*); absent when there is no transport. */
  channels?: () => Promise<string[]>;
  /** Closes both buses and removes every trace of the pair. */
  cleanup: () => Promise<void>;
}

/** A handler that records what it gets and can be awaited until it has `n` messages. */
export interface Recorder {
  handler: BusHandler;
  got: unknown[];
  topics: string[];
  until(n: number): Promise<void>;
  /** Resolves once a message deep-equal to `value` has arrived. */
  untilValue(value: unknown): Promise<void>;
}

export function recorder(): Recorder {
  const got: unknown[] = [];
  const topics: string[] = [];
  const waiters: Array<{ done: () => boolean; resolve: () => void }> = [];
  const wait = (done: () => boolean): Promise<void> =>
    done() ? Promise.resolve() : new Promise((resolve) => waiters.push({ done, resolve }));
  return {
    got,
    topics,
    handler: (message, topic) => {
      got.push(message);
      topics.push(topic);
      for (const w of [...waiters]) {
        if (w.done()) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
      }
    },
    until: (n) => wait(() => got.length >= n),
    untilValue: (value) => wait(() => got.some((m) => isDeepStrictEqual(m, value))),
  };
}

/**
 * Publishes a unique token on `topic` and waits until `witness` has it: everything `pub` published
 * on the topic before has been dispatched by then.
 */
async function fence(pub: EventBus, topic: string, witness: Recorder): Promise<void> {
  const token = { fence: randomBytes(6).toString('hex') };
  await pub.publish(topic, token);
  await witness.untilValue(token);
}

const uniqueTopic = (label: string) => `${label}:${randomBytes(4).toString('hex')}`;

export function eventBusContract(name: string, make: () => Promise<BusPair>, skip?: string): void {
  describe(`EventBus contract: ${name}`, () => {
    let pair: BusPair | undefined;
    const open = async (): Promise<BusPair> => {
      pair = await make();
      return pair;
    };
    afterEach(async () => {
      await pair?.cleanup();
      pair = undefined;
    });

    it.skipIf(skip)('a message published on a reaches the subscribers on a and on b', async () => {
      const { a, b } = await open();
      const t = uniqueTopic('device:SN1');
      const onA = recorder();
      const onB = recorder();
      await a.subscribe(t, onA.handler);
      await b.subscribe(t, onB.handler);
      await a.publish(t, { cmd: 'push_bind_corp', n: 1 });
      await Promise.all([onA.until(1), onB.until(1)]);
      expect(onA.got).toEqual([{ cmd: 'push_bind_corp', n: 1 }]);
      expect(onB.got).toEqual([{ cmd: 'push_bind_corp', n: 1 }]);
      expect(onA.topics).toEqual([t]);
      expect(onB.topics).toEqual([t]);
    });

    it.skipIf(skip)('carries any JSON value: strings, numbers, arrays, null, nested objects, unicode', async () => {
      const { a, b } = await open();
      const t = uniqueTopic('json');
      const r = recorder();
      await b.subscribe(t, r.handler);
      const values = ['text', 42, 1.5, true, null, [1, 'two', { three: 3 }], { 名: '设备', nested: { deep: [null] } }];
      for (const v of values) await a.publish(t, v);
      await r.until(values.length);
      expect(r.got).toEqual(values);
    });

    it.skipIf(skip)('topics are isolated, including topics that share a prefix', async () => {
      const { a, b } = await open();
      const base = uniqueTopic('device');
      const t1 = `${base}:A`;
      const t2 = `${base}:AB`;
      const r1 = recorder();
      const r2 = recorder();
      await b.subscribe(t1, r1.handler);
      await b.subscribe(t2, r2.handler);
      await a.publish(t2, 'for t2');
      await a.publish(t1, 'for t1');
      await a.publish(base, 'for nobody');
      await Promise.all([r1.until(1), r2.until(1)]);
      // Fence both topics so a stray cross-delivery would have happened by now.
      await fence(a, t1, r1);
      await fence(a, t2, r2);
      expect(r1.got[0]).toBe('for t1');
      expect(r2.got[0]).toBe('for t2');
      expect(r1.got).toHaveLength(2);
      expect(r2.got).toHaveLength(2);
    });

    it.skipIf(skip)('unsubscribe stops delivery to that handler only', async () => {
      const { a, b } = await open();
      const t = uniqueTopic('unsub');
      const gone = recorder();
      const witness = recorder();
      const off = await b.subscribe(t, gone.handler);
      await b.subscribe(t, witness.handler);
      await a.publish(t, 1);
      await Promise.all([gone.until(1), witness.until(1)]);
      await off();
      await a.publish(t, 2);
      await fence(a, t, witness);
      expect(gone.got).toEqual([1]);
      expect(witness.got.slice(0, 2)).toEqual([1, 2]);
      // Calling the unsubscribe function twice is harmless.
      await off();
    });

    it.skipIf(skip)('a handler removed by an earlier handler of the same message does not get it', async () => {
      const { a, b } = await open();
      const t = uniqueTopic('remove-during');
      const victim = recorder();
      const witness = recorder();
      let offVictim: (() => Promise<void>) | undefined;
      await b.subscribe(t, () => {
        void offVictim?.();
      });
      offVictim = await b.subscribe(t, victim.handler);
      await b.subscribe(t, witness.handler);
      await a.publish(t, 'first');
      await witness.until(1);
      await fence(a, t, witness);
      expect(victim.got).toEqual([]);
    });

    it.skipIf(skip)('the transport channel is released when the last handler of a topic leaves', async (ctx) => {
      const p = await open();
      if (!p.channels) ctx.skip(); // the in-process bus has no transport channel to release
      if (!p.channels) return;
      const t = uniqueTopic('release');
      const h1 = recorder();
      const h2 = recorder();
      const off1 = await p.b.subscribe(t, h1.handler);
      const off2 = await p.b.subscribe(t, h2.handler);
      const live = await p.channels();
      expect(live.filter((c) => c.endsWith(t))).toHaveLength(1);
      await off1();
      expect((await p.channels()).filter((c) => c.endsWith(t))).toHaveLength(1);
      await off2();
      expect((await p.channels()).filter((c) => c.endsWith(t))).toEqual([]);
      // And the topic can be subscribed again afterwards.
      const h3 = recorder();
      await p.b.subscribe(t, h3.handler);
      await p.a.publish(t, 'again');
      await h3.until(1);
      expect(h3.got).toEqual(['again']);
      expect(h1.got).toEqual([]);
      expect(h2.got).toEqual([]);
    });

    it.skipIf(skip)('several handlers on one topic each get every message', async () => {
      const { a, b } = await open();
      const t = uniqueTopic('many');
      const rs = [recorder(), recorder(), recorder()];
      for (const r of rs) await b.subscribe(t, r.handler);
      const onA = recorder();
      await a.subscribe(t, onA.handler);
      for (let i = 0; i < 5; i++) await a.publish(t, i);
      await Promise.all([...rs.map((r) => r.until(5)), onA.until(5)]);
      for (const r of [...rs, onA]) expect(r.got).toEqual([0, 1, 2, 3, 4]);
    });

    it.skipIf(skip)(
      'a subscription is live when subscribe() resolves, even with another subscribe to the topic in flight',
      async () => {
        const { a, b } = await open();
        const t = uniqueTopic('race');
        const first = recorder();
        const second = recorder();
        const pending = b.subscribe(t, first.handler);
        await b.subscribe(t, second.handler);
        await a.publish(t, 'right away');
        await pending;
        await Promise.all([first.until(1), second.until(1)]);
        expect(second.got).toEqual(['right away']);
      },
    );

    it.skipIf(skip)('handlers get JSON copies: mutating a received object affects nobody else', async () => {
      const { a, b } = await open();
      const t = uniqueTopic('copy');
      const sent = { list: [1, 2], inner: { v: 'x' }, at: new Date(0) };
      const mutate: BusHandler = (m) => {
        const o = m as { list: number[]; inner: { v: string } };
        o.list.push(99);
        o.inner.v = 'changed';
      };
      const onB1 = recorder();
      const onB2 = recorder();
      const onA = recorder();
      // The mutating handler runs first on each bus, so a shared object would show its changes.
      await b.subscribe(t, mutate);
      await b.subscribe(t, onB1.handler);
      await b.subscribe(t, onB2.handler);
      await a.subscribe(t, mutate);
      await a.subscribe(t, onA.handler);
      const publishing = a.publish(t, sent);
      sent.list.push(3); // the publisher changing its object after publish() must not leak either
      await publishing;
      await Promise.all([onB1.until(1), onB2.until(1), onA.until(1)]);
      const expected = { list: [1, 2], inner: { v: 'x' }, at: '1970-01-01T00:00:00.000Z' };
      expect(onB1.got[0]).toEqual(expected);
      expect(onB2.got[0]).toEqual(expected);
      expect(onA.got[0]).toEqual(expected);
      expect(onB1.got[0]).not.toBe(onB2.got[0]);
      expect(sent.list).toEqual([1, 2, 3]);
    });

    it.skipIf(skip)('keeps the order of one publisher on one topic (1 000 numbered messages)', async () => {
      const { a, b } = await open();
      const t = uniqueTopic('order');
      const onA = recorder();
      const onB = recorder();
      await a.subscribe(t, onA.handler);
      await b.subscribe(t, onB.handler);
      // Not awaited one by one: the publisher fires them as fast as it can.
      await Promise.all(Array.from({ length: 1000 }, (_, i) => a.publish(t, { i })));
      await Promise.all([onA.until(1000), onB.until(1000)]);
      const expected = Array.from({ length: 1000 }, (_, i) => ({ i }));
      expect(onA.got).toEqual(expected);
      expect(onB.got).toEqual(expected);
    });

    it.skipIf(skip)('publishing to a topic nobody subscribes to is fine', async () => {
      const { a, b } = await open();
      const t = uniqueTopic('empty');
      await expect(a.publish(t, { x: 1 })).resolves.toBeUndefined();
      await expect(b.publish(`${t}:other`, null)).resolves.toBeUndefined();
      // The bus still works afterwards.
      const r = recorder();
      await b.subscribe(t, r.handler);
      await a.publish(t, 'later');
      await r.until(1);
      expect(r.got).toEqual(['later']);
    });

    it.skipIf(skip)('a handler that throws does not stop the other handlers, and the error is reported', async () => {
      const { a, b, handlerErrors } = await open();
      const t = uniqueTopic('throws');
      const boom = new Error('handler failed');
      const before = recorder();
      const after = recorder();
      await b.subscribe(t, before.handler);
      await b.subscribe(t, () => {
        throw boom;
      });
      await b.subscribe(t, after.handler);
      await a.publish(t, 1);
      await a.publish(t, 2);
      await Promise.all([before.until(2), after.until(2)]);
      expect(before.got).toEqual([1, 2]);
      expect(after.got).toEqual([1, 2]);
      expect(handlerErrors.filter((e) => e.topic === t).map((e) => e.error)).toEqual([boom, boom]);
    });

    it.skipIf(skip)('after close() nothing is delivered, not even a message already in flight', async () => {
      const { a, b } = await open();
      const t = uniqueTopic('close');
      const onA = recorder();
      await a.subscribe(t, onA.handler);
      const witness = recorder();
      if (b !== a) await b.subscribe(t, witness.handler);
      // Closing right after publishing, without awaiting it: the message is in flight.
      const inFlight = a.publish(t, 'in flight');
      await a.close();
      await inFlight.catch(() => {});
      // Publishing on a closed bus is refused rather than silently lost.
      await expect(a.publish(t, 'after close')).rejects.toThrow();
      if (b !== a) {
        await b.publish(t, 'from b');
        await fence(b, t, witness);
        expect(witness.got).toContain('from b');
      } else {
        // One in-process bus: its deliveries are queued as microtasks, which a macrotask turn drains.
        await new Promise((r) => setImmediate(r));
      }
      expect(onA.got).toEqual([]);
    });
  });
}
