import type { Redis } from 'ioredis';
import type { PresenceRegistry } from './presence.js';

// Claim returns the previous holder, atomically with the write.
const CLAIM = `
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return old`;

// Only the node named in the entry may remove it: a newer holder is never erased.
const RELEASE = `
local n = 0
for i = 2, #ARGV do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[1] then n = n + redis.call('HDEL', KEYS[1], ARGV[i]) end
end
return n`;

// The holder only counts while its liveness key exists (KEYS[2] is the liveness key prefix).
const LOOKUP = `
local node = redis.call('HGET', KEYS[1], ARGV[1])
if not node then return false end
if redis.call('EXISTS', KEYS[2] .. node) == 1 then return node end
return false`;

type PresenceCommands = {
  bPresenceClaim(hash: string, snKey: string, nodeId: string): Promise<string | null>;
  bPresenceRelease(hash: string, nodeId: string, ...snKeys: string[]): Promise<number>;
  bPresenceLookup(hash: string, alivePrefix: string, snKey: string): Promise<string | null>;
};

/**
 * Presence on Redis: one hash `<prefix>:gw:presence` (SN key → node id) and one expiring
 * liveness key per node `<prefix>:gw:node:<id>`. Each operation is one round trip (Lua).
 */
export class RedisPresence implements PresenceRegistry {
  private readonly r: Redis & PresenceCommands;
  private readonly hash: string;
  private readonly alivePrefix: string;

  constructor(
    client: Redis,
    prefix = 'bindery',
    private readonly ownsClient = false,
  ) {
    client.defineCommand('bPresenceClaim', { numberOfKeys: 1, lua: CLAIM });
    client.defineCommand('bPresenceRelease', { numberOfKeys: 1, lua: RELEASE });
    client.defineCommand('bPresenceLookup', { numberOfKeys: 2, lua: LOOKUP });
    this.r = client as Redis & PresenceCommands;
    this.hash = `${prefix}:gw:presence`;
    this.alivePrefix = `${prefix}:gw:node:`;
  }

  async claim(snKey: string, nodeId: string): Promise<string | null> {
    const old = await this.r.bPresenceClaim(this.hash, snKey, nodeId);
    return old && old !== nodeId ? old : null;
  }

  async release(snKey: string, nodeId: string): Promise<boolean> {
    return (await this.r.bPresenceRelease(this.hash, nodeId, snKey)) === 1;
  }

  async releaseMany(snKeys: readonly string[], nodeId: string): Promise<void> {
    // Chunks keep one script call from blocking Redis for long.
    for (let i = 0; i < snKeys.length; i += 1000) {
      await this.r.bPresenceRelease(this.hash, nodeId, ...snKeys.slice(i, i + 1000));
    }
  }

  async lookup(snKey: string): Promise<string | null> {
    return (await this.r.bPresenceLookup(this.hash, this.alivePrefix, snKey)) ?? null;
  }

  async heartbeat(nodeId: string, ttlSec: number): Promise<void> {
    await this.r.set(this.alivePrefix + nodeId, '1', 'EX', Math.max(1, Math.ceil(ttlSec)));
  }

  async dropNode(nodeId: string): Promise<void> {
    await this.r.del(this.alivePrefix + nodeId);
  }

  async close(): Promise<void> {
    if (this.ownsClient) await this.r.quit().catch(() => {});
  }
}
