import { randomBytes } from 'node:crypto';
import { type AddressInfo, createServer } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { redisUrl, skipReasonRedis } from '../../testing/backends.js';
import { type BusPair, eventBusContract } from './event-bus.contract.js';
import { MemoryEventBus } from './memory-bus.js';
import { RedisEventBus } from './redis-bus.js';

eventBusContract('MemoryEventBus', async () => {
  const handlerErrors: BusPair['handlerErrors'] = [];
  const bus = new MemoryEventBus({ onHandlerError: (error, topic) => handlerErrors.push({ error, topic }) });
  // One process: "both processes" are the same bus.
  return { a: bus, b: bus, handlerErrors, cleanup: () => bus.close() };
});

const redisSkip = skipReasonRedis();
// One prefix for this run, so whatever the suite leaves behind can be found (and must be nothing).
const prefix = `bindery_t_${randomBytes(6).toString('hex')}`;
let admin: Redis | undefined;
const adminClient = (): Redis => {
  admin ??= new Redis(redisUrl!, { maxRetriesPerRequest: 1 });
  return admin;
};
afterAll(async () => {
  await admin?.quit();
});

eventBusContract(
  'RedisEventBus',
  async () => {
    const handlerErrors: BusPair['handlerErrors'] = [];
    const onHandlerError = (error: unknown, topic: string) => handlerErrors.push({ error, topic });
    // Two buses, two pairs of connections: two processes of one deployment.
    const a = new RedisEventBus(redisUrl!, prefix, { onHandlerError });
    const b = new RedisEventBus(redisUrl!, prefix, { onHandlerError });
    return {
      a,
      b,
      handlerErrors,
      channels: () => adminClient().pubsub('CHANNELS', `${prefix}:*`) as Promise<string[]>,
      cleanup: async () => {
        await Promise.all([a.close(), b.close()]);
      },
    };
  },
  redisSkip,
);

describe('RedisEventBus on a shared Redis', () => {
  it.skipIf(redisSkip)('keeps deployments apart by prefix', async () => {
    const other = `${prefix}_other`;
    const mine = new RedisEventBus(redisUrl!, prefix);
    const theirs = new RedisEventBus(redisUrl!, other);
    try {
      const got: unknown[] = [];
      const theirGot: unknown[] = [];
      await theirs.subscribe('device:X', (m) => theirGot.push(m));
      let resolve!: () => void;
      const arrived = new Promise<void>((r) => {
        resolve = r;
      });
      await mine.subscribe('device:X', (m) => {
        got.push(m);
        resolve();
      });
      await mine.publish('device:X', 'mine');
      await arrived;
      // Fence on the other deployment's own topic: its subscriber has processed everything sent before.
      let fenced!: () => void;
      const fence = new Promise<void>((r) => {
        fenced = r;
      });
      await theirs.subscribe('fence', () => fenced());
      await mine.publish('device:X', 'mine again');
      await theirs.publish('fence', 1);
      await fence;
      expect(got[0]).toBe('mine');
      expect(theirGot).toEqual([]);
    } finally {
      await Promise.all([mine.close(), theirs.close()]);
    }
  });

  it.skipIf(redisSkip)('leaves nothing behind in Redis: no keys, no channels', async () => {
    const r = adminClient();
    expect(await r.keys(`${prefix}*`)).toEqual([]);
    expect(await r.pubsub('CHANNELS', `${prefix}*`)).toEqual([]);
  });
});

describe('RedisEventBus when Redis is unreachable', () => {
  it('close() still returns, and a subscribe() waiting for the connection is refused', async () => {
    const port = await closedPort();
    const bus = new RedisEventBus(`redis://127.0.0.1:${port}`, 'bindery_t_down', { onHandlerError: () => {} });
    silence(bus);
    const waiting = bus.subscribe('device:X', () => {});
    await bus.close();
    await expect(waiting).rejects.toThrow(/closed/);
    await expect(bus.publish('device:X', 1)).rejects.toThrow(/closed/);
  });
});

/** A local port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const addr = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return addr.port;
}

/** The expected ECONNREFUSED errors would otherwise be printed by ioredis as unhandled. */
function silence(bus: RedisEventBus): void {
  for (const c of Object.values(bus as unknown as Record<string, unknown>)) if (c instanceof Redis) c.on('error', () => {});
}
