import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { PresenceRegistry } from './presence.js';

/**
 * What every PresenceRegistry must do, run against each implementation. `a` and `b` stand for
 * two processes of one deployment (two clients on one Redis and prefix; one map shared twice).
 */
export interface PresencePair {
  a: PresenceRegistry;
  b: PresenceRegistry;
  /** Keys this pair left in its store (Redis: KEYS prefix*); absent when there is no store. */
  leftovers?: () => Promise<string[]>;
  cleanup: () => Promise<void>;
}

const sn = () => `sn${randomBytes(5).toString('hex')}`;

export function presenceContract(name: string, make: () => Promise<PresencePair>, skip?: string): void {
  describe(`PresenceRegistry contract: ${name}`, () => {
    let pair: PresencePair | undefined;
    const open = async () => {
      pair = await make();
      await pair.a.heartbeat('node-a', 60);
      await pair.a.heartbeat('node-b', 60);
      return pair;
    };
    afterEach(async () => {
      await pair?.cleanup();
      pair = undefined;
    });

    it.skipIf(skip)('a claim on one process is seen by the other', async () => {
      const { a, b } = await open();
      const k = sn();
      expect(await b.lookup(k)).toBeNull();
      expect(await a.claim(k, 'node-a')).toBeNull();
      expect(await b.lookup(k)).toBe('node-a');
      expect(await a.lookup(k)).toBe('node-a');
    });

    it.skipIf(skip)('a newer claim takes over and names the previous holder once', async () => {
      const { a, b } = await open();
      const k = sn();
      await a.claim(k, 'node-a');
      expect(await b.claim(k, 'node-b')).toBe('node-a');
      expect(await a.lookup(k)).toBe('node-b');
      // Claiming again from the same node is not a takeover.
      expect(await b.claim(k, 'node-b')).toBeNull();
    });

    it.skipIf(skip)('only the current holder can release an entry', async () => {
      const { a, b } = await open();
      const k = sn();
      await a.claim(k, 'node-a');
      await b.claim(k, 'node-b');
      // node-a's late release (its old socket closing) must not erase node-b's entry.
      expect(await a.release(k, 'node-a')).toBe(false);
      expect(await a.lookup(k)).toBe('node-b');
      expect(await b.release(k, 'node-b')).toBe(true);
      expect(await a.lookup(k)).toBeNull();
      expect(await b.release(k, 'node-b')).toBe(false);
    });

    it.skipIf(skip)('releases many of its own entries at once and leaves the others', async () => {
      const { a, b } = await open();
      const mine = Array.from({ length: 2500 }, sn);
      const theirs = sn();
      for (const k of mine) await a.claim(k, 'node-a');
      await b.claim(theirs, 'node-b');
      await a.releaseMany([...mine, theirs], 'node-a');
      for (const k of [mine[0]!, mine[1234]!, mine[2499]!]) expect(await b.lookup(k)).toBeNull();
      expect(await a.lookup(theirs)).toBe('node-b');
    });

    it.skipIf(skip)('calls issued together take effect in the order they were issued', async () => {
      const { a, b } = await open();
      const k = sn();
      const many = Array.from({ length: 1500 }, sn);
      // Not awaited one by one: an implementation that batches must keep the order and the answers.
      const answers = await Promise.all([
        a.claim(k, 'node-a'),
        a.release(k, 'node-b'),
        a.claim(k, 'node-b'),
        a.release(k, 'node-a'),
        a.claim(k, 'node-a'),
        ...many.map((m) => b.claim(m, 'node-b')),
        b.claim(many[7]!, 'node-a'),
        b.release(many[8]!, 'node-b'),
      ]);
      expect(answers.slice(0, 5)).toEqual([null, false, 'node-a', false, 'node-b']);
      expect(answers.slice(5, 5 + many.length).every((x) => x === null)).toBe(true);
      expect(answers.slice(-2)).toEqual(['node-b', true]);
      expect(await b.lookup(k)).toBe('node-a');
      expect(await a.lookup(many[0]!)).toBe('node-b');
      expect(await a.lookup(many[7]!)).toBe('node-a');
      expect(await a.lookup(many[8]!)).toBeNull();
    });

    it.skipIf(skip)('ignores the entries of a node that is not alive', async () => {
      const { a, b } = await open();
      const k = sn();
      await a.claim(k, 'node-c');
      expect(await b.lookup(k)).toBeNull();
      await a.heartbeat('node-c', 60);
      expect(await b.lookup(k)).toBe('node-c');
      await b.dropNode('node-c');
      expect(await a.lookup(k)).toBeNull();
      // The entry itself stays: the node may come back (a restart with the same id).
      await a.heartbeat('node-c', 60);
      expect(await a.lookup(k)).toBe('node-c');
    });

    it.skipIf(skip)('each live node is listed with the report of its last heartbeat, on every process', async () => {
      const { a, b } = await open();
      const mine = (list: Awaited<ReturnType<PresenceRegistry['nodes']>>) => list.filter((n) => n.nodeId.startsWith('node-r'));
      // Nodes that never sent a report (node-a, node-b of open()) are not listed.
      expect(mine(await b.nodes())).toEqual([]);
      const report = { devices: 3, version: '1.2.3', ok: true, note: null };
      await a.heartbeat('node-r1', 60, report);
      await b.heartbeat('node-r2', 60, { devices: 5 });
      report.devices = 99; // the caller changing its object afterwards is not the report
      expect(mine(await b.nodes())).toEqual([
        { nodeId: 'node-r1', report: { devices: 3, version: '1.2.3', ok: true, note: null } },
        { nodeId: 'node-r2', report: { devices: 5 } },
      ]);
      // A newer report replaces the last; a heartbeat without one keeps it.
      await b.heartbeat('node-r1', 60, { devices: 4 });
      await a.heartbeat('node-r1', 60);
      expect(mine(await a.nodes())).toEqual([
        { nodeId: 'node-r1', report: { devices: 4 } },
        { nodeId: 'node-r2', report: { devices: 5 } },
      ]);
      // A node declared dead is gone from the list at once.
      await a.dropNode('node-r2');
      expect(mine(await b.nodes())).toEqual([{ nodeId: 'node-r1', report: { devices: 4 } }]);
      await b.dropNode('node-r1');
      expect(mine(await a.nodes())).toEqual([]);
    });

    it.skipIf(skip)('a heartbeat expires on its own when it is not renewed', async () => {
      const { a, b } = await open();
      const k = sn();
      await a.claim(k, 'node-d');
      await a.heartbeat('node-d', 1, { devices: 1 });
      expect(await b.lookup(k)).toBe('node-d');
      expect((await b.nodes()).map((n) => n.nodeId)).toContain('node-d');
      // Polls until the ttl has run out; no fixed sleep decides the outcome.
      const deadline = Date.now() + 15_000;
      let seen: string | null = 'node-d';
      while (seen !== null && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        seen = await b.lookup(k);
      }
      expect(seen).toBeNull();
      // Its report expired with it.
      expect((await a.nodes()).map((n) => n.nodeId)).not.toContain('node-d');
    });

    it.skipIf(skip)('leaves nothing behind after cleanup', async () => {
      const p = await open();
      await p.a.claim(sn(), 'node-a');
      const leftovers = p.leftovers;
      await p.cleanup();
      pair = undefined;
      if (leftovers) expect(await leftovers()).toEqual([]);
    });
  });
}
