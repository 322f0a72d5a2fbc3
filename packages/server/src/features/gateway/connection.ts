import type { WebSocket } from 'ws';

/** P-ST-1: the per-connection ladder. A device climbs it on each connection. */
export const ConnState = { Anonymous: 0, Registered: 1, Active: 2, Subscribed: 3 } as const;
export type ConnState = (typeof ConnState)[keyof typeof ConnState];

/** Who a connection is, once `register` (or `active`) has named the device. */
export interface DeviceIdentity {
  readonly id: number;
  readonly sn: string;
  readonly snKey: string;
  readonly modelId: string;
  readonly vendorId: string;
}

/** A parsed request waiting for (or in) execution. */
export interface Job {
  cmd: string;
  reqId: string;
  body: Record<string, unknown>;
  /** The payload of a binary request (upload_log). */
  data: Buffer | null;
}

/**
 * One device socket. Deliberately small (P-PERF-2): a handful of numbers and references, no
 * timers (one sweeper serves every connection) and no closures (the socket's listeners are
 * shared functions that find this object through the socket).
 */
export class Connection {
  state: ConnState = ConnState.Anonymous;
  device: DeviceIdentity | null = null;
  /** Clock time of the last frame (P-LIVE-1), and of the last one written to the database. */
  lastFrameAt: number;
  lastSeenWritten = 0;
  /** P-RATE-1: frames counted in the current one-second window (real time). */
  rateWindowStart = 0;
  rateCount = 0;
  /** Commands run one at a time per connection, in arrival order (P-F-6). */
  busy = false;
  queue: Job[] | null = null;
  closed = false;
  /**
   * The secret `active` just returned, so the `subscribe_corp` that follows needs no database
   * read (P-PERF-1). Cleared by that subscribe and by any binding change.
   */
  secret: string | null = null;

  constructor(
    readonly id: number,
    readonly ws: WebSocket,
    readonly remoteAddr: string,
    now: number,
  ) {
    this.lastFrameAt = now;
  }
}
