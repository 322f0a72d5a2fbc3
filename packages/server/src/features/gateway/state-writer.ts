import type { GatewayRepo, OnlineWrite } from './gateway.repo.js';

/**
 * P-LIVE-3: online/offline transitions are collected in memory and written in one
 * transaction every few seconds (and at shutdown), never one write per frame. The latest
 * transition of a device wins; a reconnect before the flush cancels the offline write.
 */
export class StateWriter {
  private online = new Map<number, OnlineWrite>();
  private offline = new Map<number, number>();
  private activated = new Map<number, number>();
  private registered = new Map<number, number>();
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

  /** The first successful `active` of a binding (P-CMD-active-3); nothing waits for it. */
  markActivated(id: number, at: number): void {
    this.activated.set(id, at);
  }

  /** The first `register` over the network of a device whose active_code was minted with it. */
  markRegistered(id: number, at: number): void {
    if (!this.registered.has(id)) this.registered.set(id, at);
  }

  get pending(): number {
    return this.online.size + this.offline.size + this.activated.size + this.registered.size;
  }

  /** Writes everything collected so far plus `touches`; flushes never overlap. */
  async flush(touches: Array<{ id: number; seen: number }> = []): Promise<void> {
    while (this.running) await this.running.catch(() => {});
    const online = [...this.online.values()];
    const offline = [...this.offline].map(([id, seen]) => ({ id, seen }));
    const activated = [...this.activated].map(([id, at]) => ({ id, at }));
    this.online = new Map();
    this.offline = new Map();
    const registered = [...this.registered].map(([id, at]) => ({ id, at }));
    this.activated = new Map();
    this.registered = new Map();
    this.running = this.repo.writeStates(this.nodeId, online, offline, touches, activated, registered).catch((err: unknown) => {
      // Put the batch back (unless newer transitions replaced it) and let the next flush retry.
      for (const r of online) if (!this.online.has(r.id) && !this.offline.has(r.id)) this.online.set(r.id, r);
      for (const r of offline) if (!this.online.has(r.id) && !this.offline.has(r.id)) this.offline.set(r.id, r.seen);
      for (const r of activated) if (!this.activated.has(r.id)) this.activated.set(r.id, r.at);
      for (const r of registered) if (!this.registered.has(r.id)) this.registered.set(r.id, r.at);
      throw err;
    });
    try {
      await this.running;
    } finally {
      this.running = null;
    }
  }
}
