import { describe, expect, it } from 'vitest';
import { DomainEvents } from './domain-events.js';

const fact = (sn: string) => ({ type: 'device.registered' as const, sn, modelId: 'm', vendorId: 'v', at: 1 });
const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** settled(): what a short-lived process (the CLI) awaits before it closes the database (issue 13). */
describe('DomainEvents.settled', () => {
  it('waits for emits nobody awaited and for tracked work that emits later', async () => {
    const events = new DomainEvents();
    const seen: string[] = [];
    events.on('device.registered', async (e) => {
      await tick(20);
      seen.push(e.sn);
    });
    void events.emit(fact('A'));
    // Like devices.announceRegistered: a background loop whose emits start one after another.
    void events.track(
      (async () => {
        for (const sn of ['B', 'C', 'D']) await events.emit(fact(sn));
      })(),
    );
    await events.settled();
    expect(seen.sort()).toEqual(['A', 'B', 'C', 'D']);
  });

  it('resolves at once with nothing in flight, and survives a failing listener', async () => {
    const errors: unknown[] = [];
    const events = new DomainEvents((err) => errors.push(err));
    await events.settled();
    events.on('device.registered', async () => {
      await tick(5);
      throw new Error('boom');
    });
    void events.emit(fact('A'));
    await events.settled();
    expect(errors).toHaveLength(1);
  });
});
