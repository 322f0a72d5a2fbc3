import { type Clock, systemClock } from '../../shared/clock.js';

/**
 * Which gateway process holds which device's socket (docs/protocol.md P-CL-1..4). A push
 * issued on any process looks the holder up here and goes to that process over the event bus.
 * Keys are SN keys (lower-cased SNs, P-SN-2); values are node ids (BINDERY_NODE_ID).
 *
 * Liveness is real time in both implementations (like Redis key expiry), never the injected
 * test clock: a node that stops heartbeating (crashed) is ignored by `lookup`, so pushes for
 * its devices count as offline instead of vanishing into a dead node's topic.
 */
export interface PresenceRegistry {
  /** Records that `nodeId` holds `snKey`; resolves to the node that held it before, if another one. */
  claim(snKey: string, nodeId: string): Promise<string | null>;
  /** Removes the entry only while it still names `nodeId` (a newer holder is never erased). */
  release(snKey: string, nodeId: string): Promise<boolean>;
  /** Releases many at once (graceful shutdown of a node). */
  releaseMany(snKeys: readonly string[], nodeId: string): Promise<void>;
  /** The node holding `snKey`, when that node is alive; null otherwise. */
  lookup(snKey: string): Promise<string | null>;
  /**
   * Marks `nodeId` alive for `ttlSec` seconds; nodes repeat this well within the ttl. `report`
   * (what the node says about itself: connected devices, version) replaces its last one; without
   * one the last report stays.
   */
  heartbeat(nodeId: string, ttlSec: number, report?: NodeReport): Promise<void>;
  /** The live nodes that sent a report, each with its latest (instance health). */
  nodes(): Promise<NodeEntry[]>;
  /**
   * Records that `nodeId` holds each of `snKeys` where no node is recorded (after the registry
   * lost its data); never takes a device from another node.
   */
  announce?(snKeys: readonly string[], nodeId: string): Promise<void>;
  /** Calls `listener` each time the registry's store comes back after an outage. */
  onReconnect?(listener: () => void): void;
  /** Declares `nodeId` dead at once (its entries stop resolving). */
  dropNode(nodeId: string): Promise<void>;
  close(): Promise<void>;
}

/** What a node says about itself with its heartbeat: a flat JSON object (features/instance reads it). */
export type NodeReport = Record<string, string | number | boolean | null>;
export interface NodeEntry {
  nodeId: string;
  report: NodeReport;
}

/** One process (the default): a map. Several gateways in one process may share an instance. */
export class MemoryPresence implements PresenceRegistry {
  private readonly holders = new Map<string, string>();
  private readonly alive = new Map<string, number>();
  private readonly reports = new Map<string, NodeReport>();

  constructor(private readonly clock: Clock = systemClock) {}

  async claim(snKey: string, nodeId: string): Promise<string | null> {
    const old = this.holders.get(snKey) ?? null;
    this.holders.set(snKey, nodeId);
    return old === nodeId ? null : old;
  }

  async release(snKey: string, nodeId: string): Promise<boolean> {
    if (this.holders.get(snKey) !== nodeId) return false;
    this.holders.delete(snKey);
    return true;
  }

  async releaseMany(snKeys: readonly string[], nodeId: string): Promise<void> {
    for (const k of snKeys) if (this.holders.get(k) === nodeId) this.holders.delete(k);
  }

  async lookup(snKey: string): Promise<string | null> {
    const node = this.holders.get(snKey);
    if (node === undefined) return null;
    const until = this.alive.get(node);
    return until !== undefined && until > this.clock.now() ? node : null;
  }

  async heartbeat(nodeId: string, ttlSec: number, report?: NodeReport): Promise<void> {
    this.alive.set(nodeId, this.clock.now() + ttlSec * 1000);
    // Copied, as a Redis round trip would: the caller's later changes are not the report.
    if (report) this.reports.set(nodeId, JSON.parse(JSON.stringify(report)) as NodeReport);
  }

  async nodes(): Promise<NodeEntry[]> {
    const now = this.clock.now();
    const out: NodeEntry[] = [];
    for (const [nodeId, report] of this.reports) {
      const until = this.alive.get(nodeId);
      if (until !== undefined && until > now) out.push({ nodeId, report: { ...report } });
      else this.reports.delete(nodeId); // dead: as in Redis, its report goes with it
    }
    return out.sort((a, b) => a.nodeId.localeCompare(b.nodeId));
  }

  async dropNode(nodeId: string): Promise<void> {
    this.alive.delete(nodeId);
    this.reports.delete(nodeId);
  }

  async close(): Promise<void> {}
}
