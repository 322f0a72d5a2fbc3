import type { PushFrame } from '@bindery/protocol';

/**
 * Typed device events. Every push of §A6 has its own event named by its `cmd`, with its body
 * typed; `push` fires for every push (including ones this SDK doesn't know) before the typed one.
 */

/** `push_user_scan` (§A6): someone scanned the device's login QR or printer QR. */
export interface UserScanPush {
  userid: string;
  /** e.g. `scan_qrcode_open` (door opened by scan). */
  op_type: string;
  /** Unique id of this scan. */
  oper_id: string;
  /** The `state` embedded in the scanned QR. */
  state: string;
  /** 0 ordinary member, 1 admin. */
  user_type: number;
}

export interface FetchLogPush {
  /** Passed through unparsed, e.g. `device_log/20190101`, `op_logs`. */
  hint: string;
}

export interface SelfhelpNotifyPush {
  data: string;
}

/** The device's own flow, following Lombo's state machine (§A2). */
export type DeviceState =
  | 'idle'
  | 'connecting'
  | 'sync'
  | 'secret_no'
  | 'register'
  | 'active'
  | 'subscribe'
  | 'ready'
  | 'backoff'
  | 'stopped';

/** What a device keeps in flash across restarts (§A3). */
export interface DeviceCredentials {
  sn: string;
  /** Per-device SecretNo; absent (or Lombo's placeholder "123456") until exchanged for the seed. */
  secretNo?: string;
  seedSecretNo?: string;
  activeCode?: string;
  secret?: string;
}

export interface PushEvents {
  push_bind_corp: Record<string, never>;
  push_unbind_corp: Record<string, never>;
  push_user_scan: UserScanPush;
  push_update_firmware: Record<string, never>;
  push_fetch_log: FetchLogPush;
  push_restart_device: Record<string, never>;
  push_selfhelp_notify: SelfhelpNotifyPush;
}

export type PushCmd = keyof PushEvents;
export const PUSH_CMDS: readonly PushCmd[] = [
  'push_bind_corp',
  'push_unbind_corp',
  'push_user_scan',
  'push_update_firmware',
  'push_fetch_log',
  'push_restart_device',
  'push_selfhelp_notify',
];

export interface DeviceEvents extends PushEvents {
  state: { from: DeviceState; to: DeviceState };
  connected: { attempt: number };
  disconnected: { code: number; reason: string; reconnectInMs: number | null };
  time_synced: { serverTimeSec: number; offsetMs: number };
  /** The credentials changed; a real device writes them to flash here. */
  persist: DeviceCredentials;
  registered: { activeCode: string; errcode: number };
  /** `active` answered "not yet bound"; the device polls again in 5 s. */
  waiting_for_binding: { errcode: number; errmsg: string };
  activated: { secret: string };
  subscribed: { errcode: number };
  /** A reply carried 600004/600014/600016/600020 (or a header-less error): the flow starts over. */
  restart: { errcode: number; cmd: string | null; wiped: boolean };
  /** Every push, before its typed event. */
  push: PushFrame;
  /** The peer sent something this SDK can't use (bad JSON, a reply for no request, a bad binary frame). */
  protocol_error: { message: string };
}

type Listener<T> = (payload: T) => void;

/** A small typed emitter. Listener exceptions are not caught: they are bugs in the caller. */
export class TypedEmitter<E extends object> {
  private readonly listeners = new Map<keyof E, Set<Listener<never>>>();

  on<K extends keyof E>(event: K, fn: Listener<E[K]>): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(fn as Listener<never>);
    return () => this.off(event, fn);
  }

  once<K extends keyof E>(event: K, fn: Listener<E[K]>): () => void {
    const off = this.on(event, (p) => {
      off();
      fn(p);
    });
    return off;
  }

  off<K extends keyof E>(event: K, fn: Listener<E[K]>): void {
    this.listeners.get(event)?.delete(fn as Listener<never>);
  }

  /**
   * Resolves with the next payload of `event` that satisfies `pred`. The optional timeout uses the
   * real timer (it guards tests against hanging, it is not part of the device's behaviour).
   */
  waitFor<K extends keyof E>(event: K, pred: (p: E[K]) => boolean = () => true, timeoutMs?: number): Promise<E[K]> {
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const off = this.on(event, (p) => {
        if (!pred(p)) return;
        off();
        if (timer) clearTimeout(timer);
        resolve(p);
      });
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          off();
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${String(event)}`));
        }, timeoutMs);
      }
    });
  }

  protected emit<K extends keyof E>(event: K, payload: E[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) (fn as Listener<E[K]>)(payload);
  }
}
