/**
 * The cluster event bus: a message published on any process reaches every subscriber of the
 * topic on every process. In-memory by default, Redis when REDIS_URL is set; both pass
 * event-bus.contract.ts. Messages are JSON values.
 */
export type BusHandler = (message: unknown, topic: string) => void;

export interface EventBus {
  publish(topic: string, message: unknown): Promise<void>;
  /** Resolves once the subscription is live; the returned function unsubscribes. */
  subscribe(topic: string, handler: BusHandler): Promise<() => Promise<void>>;
  close(): Promise<void>;
  /** Whether the transport answers (readiness); absent means always (in-process). */
  ping?(): Promise<boolean>;
}

export interface BusOptions {
  /**
   * Called when a handler throws. The other handlers still run: one faulty subscriber must not
   * starve the rest, nor crash the process from inside the transport's callback.
   */
  onHandlerError?: (error: unknown, topic: string) => void;
}

/** Default onHandlerError when no logger is wired in. */
export function reportToConsole(error: unknown, topic: string): void {
  console.error(`[bindery bus] a handler for "${topic}" threw:`, error);
}
