/**
 * In-process domain events: what happened, for whoever cares (gateway pushes, vendor callbacks,
 * webhooks, notifications). Emitted after the transaction commits, on the process that made the
 * change; a listener that must reach another process (a device socket) goes through the EventBus.
 */
export type DomainEvent =
  | {
      type: 'device.bound';
      sn: string;
      modelId: string;
      vendorId: string;
      ownerType: OwnerType;
      ownerId: string;
      by: string;
      at: number;
      /** How the bind came about (binding issue); absent for older emitters. */
      method?: BindMethod;
      /** The binding user, when a person bound it. */
      byUserId?: string | null;
      /** The verification code the binder typed, passed on to vendor callbacks (B4.3 verif_code). */
      verifCode?: string | null;
      remarkName?: string | null;
      /** Half of a transfer (an unbind plus a bind recorded as one). */
      transfer?: boolean;
    }
  | {
      type: 'device.unbound';
      sn: string;
      modelId: string;
      vendorId: string;
      ownerType: OwnerType;
      ownerId: string;
      by: string;
      at: number;
      byUserId?: string | null;
      /** The user who had bound it (for notifications). */
      boundByUserId?: string | null;
      transfer?: boolean;
    }
  | {
      /** A person scanned the device's login QR (§A6 push_user_scan; B4.3 user_scan for vendors). */
      type: 'device.user_scan';
      sn: string;
      modelId: string;
      vendorId: string;
      operId: string;
      userId: string;
      state: string;
      /** 0 ordinary member, 1 admin. */
      userType: 0 | 1;
      opType: string;
      at: number;
    }
  | ({ type: 'device.registered' } & DeviceFact)
  /** First `active` of a binding over WSS, or the first cloud token of a binding (vendor issue). */
  | ({ type: 'device.activated' } & DeviceFact)
  /** Presence changes, from a WSS connection or a cloud report_device_status. */
  | ({ type: 'device.online'; via: 'wss' | 'cloud' } & DeviceFact)
  | ({ type: 'device.offline'; via: 'wss' | 'cloud' } & DeviceFact)
  /** A WSS device logged in (subscribe_corp) reporting this firmware version (campaigns watch for the new one). */
  | ({ type: 'device.subscribed'; firmwareVersion: string | null } & DeviceFact)
  /** An upgrade was requested for a device (B4.3 update_firmware command to cloud devices). */
  | ({ type: 'device.firmware_requested'; operId: string; version: string } & DeviceFact)
  /** A device reported how an upgrade went (WSS or report_firmware_upgrade_result). */
  | ({
      type: 'device.firmware_result';
      operId: string | null;
      errcode: number;
      errmsg: string;
      curVersion: string | null;
    } & DeviceFact)
  /** Someone asked for fresh status (B4.3 fetch_device_status command to cloud devices). */
  | ({ type: 'device.status_requested' } & DeviceFact)
  | ({ type: 'device.error_report'; reportId: string } & DeviceFact)
  | ({ type: 'device.log_uploaded'; logId: string } & DeviceFact)
  /** A model's model_ticket was renewed (§B1; delivered as the model_ticket callback). */
  | { type: 'model.ticket_renewed'; modelId: string; vendorId: string; ticket: string; expiresAt: number; at: number }
  /** A firmware campaign paused itself on an abort criterion (webhook rollout.paused; features/campaigns). */
  | {
      type: 'campaign.paused';
      campaignId: string;
      vendorId: string;
      modelId: string;
      name: string;
      version: string;
      criterion: string | null;
      reason: string;
      figures: { executed: number; succeeded: number; failed: number; timed_out: number; did_not_come_back: number };
      at: number;
    }
  | ({ type: 'device.shared' } & DeviceShareChange)
  | ({ type: 'device.unshared' } & DeviceShareChange);

/** The common part of device lifecycle facts. */
export interface DeviceFact {
  sn: string;
  modelId: string;
  vendorId: string;
  at: number;
}

/** Another user joined (or left) a shared-mode personal device; the device itself is unchanged. */
export interface DeviceShareChange {
  sn: string;
  modelId: string;
  vendorId: string;
  ownerId: string;
  userId: string;
  by: string;
  at: number;
}

/** How a device came to be bound. */
export type BindMethod = 'sn' | 'static_qr' | 'dynamic_qr' | 'quectel' | 'bluetooth' | 'operator' | 'transfer' | 'rotating';

export type OwnerType = 'org' | 'user';
export type DomainEventType = DomainEvent['type'];
type Handler<T extends DomainEventType> = (e: Extract<DomainEvent, { type: T }>) => void | Promise<void>;
type AnyHandler = (e: DomainEvent) => void | Promise<void>;

export class DomainEvents {
  private readonly handlers = new Map<DomainEventType, Set<AnyHandler>>();
  /** Errors from listeners are reported here, never thrown into the emitter. */
  constructor(private readonly onError: (err: unknown, e: DomainEvent) => void = () => {}) {}

  on<T extends DomainEventType>(type: T, h: Handler<T>): () => void {
    let set = this.handlers.get(type);
    if (!set) {
      set = new Set();
      this.handlers.set(type, set);
    }
    const any = h as unknown as AnyHandler;
    set.add(any);
    return () => set.delete(any);
  }

  /** Work started from events that nobody awaits (announcements after a commit); see settled(). */
  private readonly inFlight = new Set<Promise<unknown>>();

  /**
   * Counts `p` as in flight until it settles, so settled() waits for it. A short-lived process (the
   * CLI) awaits settled() before closing the database: events announced in the background are then
   * enqueued, not lost (issue 13: `bindery batch create` lost device.registered webhooks).
   */
  track<T>(p: Promise<T>): Promise<T> {
    this.inFlight.add(p);
    const done = () => this.inFlight.delete(p);
    p.then(done, done);
    return p;
  }

  /** Resolves once every emit and tracked piece of work has settled, including ones started meanwhile. */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** Runs every listener; resolves when all have settled, so callers may await delivery. */
  emit(e: DomainEvent): Promise<void> {
    return this.track(this.run(e));
  }

  private async run(e: DomainEvent): Promise<void> {
    const set = this.handlers.get(e.type);
    if (!set) return;
    await Promise.all(
      [...set].map(async (h) => {
        try {
          await h(e);
        } catch (err) {
          this.onError(err, e);
        }
      }),
    );
  }
}
