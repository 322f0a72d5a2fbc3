import type { Redis } from 'ioredis';
import { guarded } from '../../adapters/bus/redis-client.js';
import type { NodeEntry, NodeReport, PresenceRegistry } from './presence.js';

// Claims and releases in the order they were issued: ARGV holds (op, snKey, nodeId) triples.
// A claim answers the previous holder ('' for none); a release answers '1' when it removed the
// entry, which it does only while the entry names its node (a newer holder is never erased).
// An announce ('a', after Redis lost its data) writes the entry only where there is none, so a
// device that moved to another node meanwhile stays there.
const BATCH = `
local out = {}
for i = 1, #ARGV, 3 do
  local old = redis.call('HGET', KEYS[1], ARGV[i + 1])
  if ARGV[i] == 'c' then
    redis.call('HSET', KEYS[1], ARGV[i + 1], ARGV[i + 2])
    out[#out + 1] = old or ''
  elseif ARGV[i] == 'a' then
    if not old then redis.call('HSET', KEYS[1], ARGV[i + 1], ARGV[i + 2]) end
    out[#out + 1] = old or ''
  elseif old == ARGV[i + 2] then
    redis.call('HDEL', KEYS[1], ARGV[i + 1])
    out[#out + 1] = '1'
  else
    out[#out + 1] = '0'
  end
end
return out`;

// The holder only counts while its liveness key exists (KEYS[2] is the liveness key prefix).
const LOOKUP = `
local node = redis.call('HGET', KEYS[1], ARGV[1])
if not node then return false end
if redis.call('EXISTS', KEYS[2] .. node) == 1 then return node end
return false`;

// The reports of live nodes, flattened (node, report, …); a dead node's report is removed on the way.
const NODES = `
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  if redis.call('EXISTS', KEYS[2] .. all[i]) == 1 then
    out[#out + 1] = all[i]
    out[#out + 1] = all[i + 1]
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return out`;

type PresenceCommands = {
  bPresenceBatch(hash: string, ...triples: string[]): Promise<string[]>;
  bPresenceLookup(hash: string, alivePrefix: string, snKey: string): Promise<string | null>;
  bPresenceNodes(reports: string, alivePrefix: string): Promise<string[]>;
};

interface Op {
  op: 'c' | 'r' | 'a';
  snKey: string;
  nodeId: string;
  done: (answer: string) => void;
  fail: (err: unknown) => void;
}

/** Ops per script call: long enough to share a round trip, short enough not to stall Redis. */
const MAX_BATCH = 1000;

/**
 * Presence on Redis: one hash `<prefix>:gw:presence` (SN key → node id), one expiring
 * liveness key per node `<prefix>:gw:node:<id>`, and one hash `<prefix>:gw:reports` (node id →
 * its last heartbeat report, JSON) that counts only while the node's liveness key exists.
 *
 * Claims and releases are group-committed: while one script call is on its way, the ones issued
 * meanwhile queue and then go together, in order, in the next call. A lone claim costs one
 * round trip as before; a fleet powering on shares one write to Redis among hundreds of devices
 * instead of paying one each.
 */
export class RedisPresence implements PresenceRegistry {
  private readonly r: Redis & PresenceCommands;
  private readonly hash: string;
  private readonly alivePrefix: string;
  private readonly reports: string;
  private queue: Op[] = [];
  private sending = false;
  private readonly reconnectListeners: Array<() => void> = [];

  constructor(
    client: Redis,
    prefix = 'bindery',
    private readonly ownsClient = false,
  ) {
    client.defineCommand('bPresenceBatch', { numberOfKeys: 1, lua: BATCH });
    client.defineCommand('bPresenceLookup', { numberOfKeys: 2, lua: LOOKUP });
    client.defineCommand('bPresenceNodes', { numberOfKeys: 2, lua: NODES });
    this.r = client as Redis & PresenceCommands;
    this.hash = `${prefix}:gw:presence`;
    this.alivePrefix = `${prefix}:gw:node:`;
    this.reports = `${prefix}:gw:reports`;
    // Every 'ready' may follow an outage (a reconnect, or a start while Redis was away) and
    // Redis may have restarted empty: the holders of devices announce them again (finding 8).
    client.on('ready', () => {
      for (const f of this.reconnectListeners) f();
    });
  }

  onReconnect(listener: () => void): void {
    this.reconnectListeners.push(listener);
  }

  async announce(snKeys: readonly string[], nodeId: string): Promise<void> {
    await Promise.all(snKeys.map((k) => this.enqueue('a', k, nodeId)));
  }

  async claim(snKey: string, nodeId: string): Promise<string | null> {
    const old = await this.enqueue('c', snKey, nodeId);
    return old && old !== nodeId ? old : null;
  }

  async release(snKey: string, nodeId: string): Promise<boolean> {
    return (await this.enqueue('r', snKey, nodeId)) === '1';
  }

  async releaseMany(snKeys: readonly string[], nodeId: string): Promise<void> {
    await Promise.all(snKeys.map((k) => this.enqueue('r', k, nodeId)));
  }

  private enqueue(op: Op['op'], snKey: string, nodeId: string): Promise<string> {
    return new Promise((done, fail) => {
      this.queue.push({ op, snKey, nodeId, done, fail });
      if (!this.sending) void this.send();
    });
  }

  private async send(): Promise<void> {
    this.sending = true;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_BATCH);
      const args: string[] = [];
      for (const o of batch) args.push(o.op, o.snKey, o.nodeId);
      try {
        const answers = await guarded(this.r, () => this.r.bPresenceBatch(this.hash, ...args));
        for (let i = 0; i < batch.length; i++) batch[i]!.done(answers[i] ?? '');
      } catch (err) {
        for (const o of batch) o.fail(err);
      }
    }
    this.sending = false;
  }

  async lookup(snKey: string): Promise<string | null> {
    return (await guarded(this.r, () => this.r.bPresenceLookup(this.hash, this.alivePrefix, snKey))) ?? null;
  }

  async heartbeat(nodeId: string, ttlSec: number, report?: NodeReport): Promise<void> {
    const ttl = Math.max(1, Math.ceil(ttlSec));
    if (!report) {
      await guarded(this.r, () => this.r.set(this.alivePrefix + nodeId, '1', 'EX', ttl));
      return;
    }
    // One round trip, both or neither: a report never outlives its liveness key by much.
    await guarded(this.r, () =>
      this.r
        .multi()
        .set(this.alivePrefix + nodeId, '1', 'EX', ttl)
        .hset(this.reports, nodeId, JSON.stringify(report))
        .exec()
        .then(execResult),
    );
  }

  async nodes(): Promise<NodeEntry[]> {
    const flat = await guarded(this.r, () => this.r.bPresenceNodes(this.reports, this.alivePrefix));
    const out: NodeEntry[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      try {
        out.push({ nodeId: flat[i]!, report: JSON.parse(flat[i + 1]!) as NodeReport });
      } catch {
        // not ours: every writer on this prefix stores JSON
      }
    }
    return out.sort((a, b) => a.nodeId.localeCompare(b.nodeId));
  }

  async dropNode(nodeId: string): Promise<void> {
    await guarded(this.r, () =>
      this.r
        .multi()
        .del(this.alivePrefix + nodeId)
        .hdel(this.reports, nodeId)
        .exec()
        .then(execResult),
    );
  }

  async close(): Promise<void> {
    if (this.ownsClient) await this.r.quit().catch(() => {});
  }
}

/** A MULTI's result, or its first error thrown (ioredis reports failures per command). */
function execResult(r: Array<[Error | null, unknown]> | null): void {
  if (r === null) throw new Error('transaction aborted');
  for (const [err] of r) if (err) throw err;
}
