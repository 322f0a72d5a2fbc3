import type { GatewayRepo, OnlineWrite } from './gateway.repo.js';

/**
 * P-LIVE-3: online/offline transitions and last-seen are collected in memory and written every few
 * seconds (and at shutdown) in a few short multi-row statements, never one write per frame. The latest
 * transition of a device wins; a reconnect before the flush cancels the offline write.
 *
 * Only these may be lost in a crash (they are re-derived: P-LIVE-4). Facts a device was told
 * about — its first registration, its activation — are written before the reply instead
 * (finding 9: GatewayRepo.recordRegistered / recordActivated).
 */
export class StateWriter {
  private online = new Map<number, OnlineWrite>();
  private offline = new Map<number, number>();
  private running: Promise<void> | null = null;

  constructor(
    private readonly repo: GatewayRepo,
    private readonly nodeId: string,
  ) {}

  markOnline(id: number, addr: string, seen: number, fw: string | null): void {
    this.offline.delete(id);
    const prev = this.online.get(id);
    this.online.set(id, { id, addr, seen, fw: fw ?? prev?.fw ?? null });
  }

  markOffline(id: number, seen: number): void {
    this.online.delete(id);
    this.offline.set(id, seen);
  }

  get pending(): number {
    return this.online.size + this.offline.size;
  }

  /** Writes everything collected so far plus `touches`; flushes never overlap. */
  async flush(touches: Array<{ id: number; seen: number }> = []): Promise<void> {
    while (this.running) await this.running.catch(() => {});
    const online = [...this.online.values()];
    const offline = [...this.offline].map(([id, seen]) => ({ id, seen }));
    this.online = new Map();
    this.offline = new Map();
    this.running = this.repo.writeStates(this.nodeId, online, offline, touches).catch((err: unknown) => {
      // Put the batch back (unless newer transitions replaced it) and let the next flush retry.
      for (const r of online) if (!this.online.has(r.id) && !this.offline.has(r.id)) this.online.set(r.id, r);
      for (const r of offline) if (!this.online.has(r.id) && !this.offline.has(r.id)) this.offline.set(r.id, r.seen);
      throw err;
    });
    try {
      await this.running;
    } finally {
      this.running = null;
    }
  }
}
