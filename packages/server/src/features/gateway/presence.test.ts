import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll } from 'vitest';
import { redisUrl, skipReasonRedis } from '../../testing/backends.js';
import { presenceContract } from './presence.contract.js';
import { MemoryPresence } from './presence.js';
import { RedisPresence } from './presence.redis.js';

presenceContract('MemoryPresence', async () => {
  const p = new MemoryPresence();
  return { a: p, b: p, cleanup: () => p.close() };
});

const redisSkip = skipReasonRedis();
let admin: Redis | undefined;
afterAll(async () => {
  await admin?.quit();
});

presenceContract(
  'RedisPresence',
  async () => {
    const prefix = `bindery_t_${randomBytes(6).toString('hex')}`;
    admin ??= new Redis(redisUrl!, { maxRetriesPerRequest: 1 });
    const a = new RedisPresence(new Redis(redisUrl!), prefix, true);
    const b = new RedisPresence(new Redis(redisUrl!), prefix, true);
    const keys = () => admin!.keys(`${prefix}*`);
    return {
      a,
      b,
      leftovers: keys,
      cleanup: async () => {
        const left = await keys();
        if (left.length) await admin!.del(...left);
        await Promise.all([a.close(), b.close()]);
      },
    };
  },
  redisSkip,
);
