import { DomainEvents } from '@bindery/server/shared/domain-events.js';
import { describe, expect, it } from 'vitest';
import { CliContext } from './context.js';

/**
 * Issue 13: `bindery batch create` closed the database while the batch's device.registered
 * announcements were still being enqueued, and some webhooks were lost. close() waits for them.
 */
describe('CliContext.close', () => {
  it('lets background event work finish before it closes the database', async () => {
    // Loaded beforehand so close() does not spend its own time loading it (that hid the bug).
    await import('@bindery/server/compose.js');
    const events = new DomainEvents();
    const order: string[] = [];
    events.on('device.registered', async (e) => {
      await new Promise((r) => setTimeout(r, 30));
      order.push(`enqueued ${e.sn}`);
    });
    const close = async (what: string) => {
      order.push(`closed ${what}`);
    };
    const deps = {
      bus: { close: () => close('bus') },
      limiter: { close: () => close('limiter') },
      db: { close: () => close('db') },
    };
    const ctx = new CliContext({});
    // The opened services as `services()` would have them; only what close() touches.
    (ctx as unknown as { opened: Promise<unknown> }).opened = Promise.resolve({ config: {}, deps, services: { events } });
    void events.emit({ type: 'device.registered', sn: 'EVB0001', modelId: 'm', vendorId: 'v', at: 1 });
    await ctx.close();
    expect(order[0]).toBe('enqueued EVB0001');
    expect(order.at(-1)).toBe('closed db');
  });
});
