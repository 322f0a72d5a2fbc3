import {
  BinaryFrameError,
  decodeBinaryReply,
  encodeBinaryRequest,
  type PushFrame,
  parseFrameText,
  RESTART_FLOW_CODES,
  type ReplyFrame,
  signRegister,
  signSecretNoRequest,
  WsErr,
} from '@bindery/protocol';
import { type BackoffPolicy, backoffDelay, DEFAULT_BACKOFF } from './backoff.js';
import { type DeviceCredentials, type DeviceEvents, type DeviceState, PUSH_CMDS, type PushCmd, TypedEmitter } from './events.js';
import { buildBindQrUrl, buildLoginQrUrl, randomNonce } from './qr.js';
import { type Clock, systemClock, systemTimers, type TimerId, type Timers } from './time.js';
import { type DeviceSocket, type SocketFactory, wsSocketFactory } from './transport.js';

/** Lombo's placeholder for "no SecretNo yet": the device must exchange its seed first (§A2). */
export const PLACEHOLDER_SECRET_NO = '123456';

export interface DeviceIntervals {
  /** Each flow step is sent again when no answer came in this long (§A2: 5 s). */
  stepRetryMs: number;
  /** `active` polling while waiting for a binding (§A5.4: every 5 s). */
  activePollMs: number;
  /** Heartbeat, from connect time, before login too (§A5.6: Lombo 30 s). */
  pingMs: number;
  /** `get_timestamp` again (§A5.2: every 12 h). */
  timeSyncMs: number;
  /** No frame at all for this long: the connection is dead, drop it and reconnect. */
  deadAfterMs: number;
  /** Default wait for an answer to a call made through the public API. */
  requestTimeoutMs: number;
}

export const DEFAULT_INTERVALS: DeviceIntervals = {
  stepRetryMs: 5_000,
  activePollMs: 5_000,
  pingMs: 30_000,
  timeSyncMs: 12 * 3600_000,
  deadAfterMs: 95_000,
  requestTimeoutMs: 10_000,
};

export interface DeviceOptions {
  /** The gateway, e.g. `wss://bindery.example.com/` (any path is accepted). */
  url: string;
  /** SN plus whatever is in flash. Needs a `secretNo` or a `seedSecretNo`. */
  credentials: DeviceCredentials;
  firmwareVersion?: string;
  /** Base of the QR URLs the device shows; defaults to the gateway's origin over http(s). */
  publicUrl?: string;
  clock?: Clock;
  timers?: Timers;
  socketFactory?: SocketFactory;
  /** [0, 1) source for backoff jitter. */
  random?: () => number;
  /** uint64 decimal nonces for signatures. */
  nonce?: () => string;
  backoff?: Partial<BackoffPolicy>;
  intervals?: Partial<DeviceIntervals>;
  /**
   * `unique`: a fresh req_id per request. `fixed`: one req_id per command (`lb_register`, `lb_ping`…),
   * as Lombo firmware does; the server must not reject or dedupe them (§A1.1).
   */
  reqIds?: 'unique' | 'fixed';
  /** How `nonce`/`timestamp` go on the wire: numeric strings (Lombo) or JSON numbers (the docs). */
  numbers?: 'string' | 'number';
  /**
   * When the device asks for server time. `connect` (default): `get_timestamp` first on every
   * connect and every 12 h after, as Lombo firmware does. `on-demand`: the official order of §A2
   * (connect → register → active → subscribe_corp) for a device whose own clock is set (RTC,
   * NTP); it asks only after a STALE_TIMESTAMP answer, then signs again.
   */
  timeSync?: 'connect' | 'on-demand';
  /** `subscribe_corp.ext_args` for attendance devices (§A5.5). */
  extArgs?: { fp_algorithm?: string[]; fa_algorithm?: string[] };
  netInfo?: { wifi_name: string; mac_address: string };
}

/** An answer with a non-zero errcode to a call made through the public API. */
export class DeviceRequestError extends Error {
  constructor(
    readonly cmd: string,
    readonly errcode: number,
    readonly errmsg: string,
  ) {
    super(`${cmd} failed: ${errcode} ${errmsg}`);
    this.name = 'DeviceRequestError';
  }
}

type CallResult = { kind: 'json'; reply: ReplyFrame } | { kind: 'binary'; data: Buffer };

type Pending =
  | { kind: 'step'; state: DeviceState; cmd: string }
  | { kind: 'ping' }
  | { kind: 'sync' }
  | { kind: 'call'; cmd: string; resolve: (r: CallResult) => void; reject: (e: Error) => void; timer: TimerId };

/** The flow step that each state sends. */
const STEP_CMD: Partial<Record<DeviceState, string>> = {
  sync: 'get_timestamp',
  secret_no: 'get_secret_no',
  register: 'register',
  active: 'active',
  subscribe: 'subscribe_corp',
};

const PUSH_SET = new Set<string>(PUSH_CMDS);

/**
 * One device, following the real firmware's state machine (§A2, Lombo): on every connect
 * `get_timestamp` → (`get_secret_no` when it holds only the seed) → `register` → `active` (polled
 * every 5 s until bound, at once on `push_bind_corp`; skipped when a secret is held) →
 * `subscribe_corp` → ready. Frames with `cmd` are pushes, frames without are replies routed by
 * `headers.req_id`. A reply with 600004/600014/600016/600020 restarts the flow (600004 also wipes
 * the secret); a lost connection comes back with exponential backoff and jitter.
 */
export class Device extends TypedEmitter<DeviceEvents> {
  readonly sn: string;
  private creds: DeviceCredentials;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly factory: SocketFactory;
  private readonly random: () => number;
  private readonly makeNonce: () => string;
  private readonly backoff: BackoffPolicy;
  private readonly iv: DeviceIntervals;
  private readonly opts: DeviceOptions;

  private st: DeviceState = 'idle';
  private sock: DeviceSocket | null = null;
  private open = false;
  /** Bumped per connection, so callbacks of an old socket are ignored. */
  private conn = 0;
  private attempt = 0;
  private restarts = 0;
  private seq = 0;
  private offsetMs = 0;
  /** When the flow last learnt the server's time (null: never on this device). */
  private syncedAt: number | null = null;
  private lastRxAt = 0;
  private waitingForBinding = false;
  private lastPingId: string | null = null;
  private stepReqId: string | null = null;
  private stepTimer: TimerId | null = null;
  private pingTimer: TimerId | null = null;
  private syncTimer: TimerId | null = null;
  private reconnectTimer: TimerId | null = null;
  private readonly pending = new Map<string, Pending>();

  constructor(opts: DeviceOptions) {
    super();
    const c = opts.credentials;
    if (!c.sn) throw new Error('credentials.sn is required');
    if (!hasSecretNo(c) && !c.seedSecretNo) throw new Error(`device ${c.sn} needs a secretNo or a seedSecretNo`);
    this.opts = opts;
    this.sn = c.sn;
    this.creds = { ...c };
    this.clock = opts.clock ?? systemClock;
    this.timers = opts.timers ?? systemTimers;
    this.factory = opts.socketFactory ?? wsSocketFactory();
    this.random = opts.random ?? Math.random;
    this.makeNonce = opts.nonce ?? randomNonce;
    this.backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
    this.iv = { ...DEFAULT_INTERVALS, ...opts.intervals };
  }

  get state(): DeviceState {
    return this.st;
  }

  /** True while the device polls `active` and the last answer was "not yet bound". */
  get waiting(): boolean {
    return this.st === 'active' && this.waitingForBinding;
  }

  get connected(): boolean {
    return this.open;
  }

  /** A copy of what the device would keep in flash. */
  get credentials(): DeviceCredentials {
    return { ...this.creds };
  }

  /** Server time (unix seconds) as the device knows it after the last `get_timestamp`. */
  serverNowSec(): number {
    return Math.floor((this.clock.now() + this.offsetMs) / 1000);
  }

  get publicUrl(): string {
    if (this.opts.publicUrl) return this.opts.publicUrl;
    const u = new URL(this.opts.url);
    return `${u.protocol === 'wss:' ? 'https:' : 'http:'}//${u.host}`;
  }

  start(): void {
    if (this.st !== 'idle' && this.st !== 'stopped') return;
    this.attempt = 0;
    this.connect();
  }

  /** Closes the connection for good; pending calls are rejected. */
  stop(): void {
    this.setState('stopped');
    this.clearConnTimers();
    if (this.reconnectTimer !== null) this.timers.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const s = this.sock;
    this.sock = null;
    this.open = false;
    this.conn++;
    this.failPending(new Error('device stopped'));
    s?.close(1000, 'device stopped');
  }

  /** The version the device reports in `subscribe_corp`. */
  get firmwareVersion(): string {
    return this.opts.firmwareVersion ?? '1.0.0';
  }

  /** What a flashed image changes: the version sent at the next `subscribe_corp`. */
  setFirmwareVersion(version: string): void {
    this.opts.firmwareVersion = version;
  }

  /** A reboot: the connection closes now and the device powers on again after `afterMs`. */
  reboot(afterMs = 0): void {
    this.stop();
    this.reconnectTimer = this.timers.setTimeout(() => {
      this.reconnectTimer = null;
      this.start();
    }, afterMs);
  }

  /** Drops the connection as a lost network would; the device reconnects with backoff. */
  dropConnection(): void {
    this.sock?.terminate();
  }

  // ---- public commands (§A5), usable once subscribed ----

  /** Sends any command and resolves with its reply (whatever the errcode). */
  request(cmd: string, body?: Record<string, unknown>, timeoutMs = this.iv.requestTimeoutMs): Promise<ReplyFrame> {
    return this.call(cmd, body, timeoutMs).then((r) => {
      if (r.kind === 'json') return r.reply;
      throw new DeviceRequestError(cmd, WsErr.MALFORMED_FRAME, 'unexpected binary reply');
    });
  }

  /** `get_firmware_info` (§A5.7). */
  async getFirmwareInfo(): Promise<{ firmware_version: string; md5sum: string; size: number; download_url: string }> {
    const body = await this.ok('get_firmware_info');
    return body as { firmware_version: string; md5sum: string; size: number; download_url: string };
  }

  /** `get_corp_info` (§A5.11). */
  async getCorpInfo(): Promise<{ corp_name: string }> {
    return (await this.ok('get_corp_info')) as { corp_name: string };
  }

  /** `get_timestamp` outside the flow; also resyncs the device's notion of server time. */
  async getTimestamp(): Promise<number> {
    const body = await this.ok('get_timestamp');
    const ts = Number(body.timestamp);
    if (Number.isFinite(ts)) this.offsetMs = ts * 1000 - this.clock.now();
    return ts;
  }

  /** `error_report` (§A5.10). */
  async errorReport(errcode: number, errmsg: string): Promise<void> {
    await this.ok('error_report', { errcode, errmsg });
  }

  /** `selfhelp_notify` (§A5.12): the cloud echoes `data` back as a push. */
  async selfhelpNotify(data: string): Promise<void> {
    await this.ok('selfhelp_notify', { data });
  }

  /** `gen_login_qrcode` (§A5.9): the binary reply's payload (the static login QR image). */
  async genLoginQrcode(state: string, formatVersion = 1): Promise<Buffer> {
    const r = await this.call('gen_login_qrcode', { state, format_version: formatVersion }, this.iv.requestTimeoutMs);
    if (r.kind === 'binary') return r.data;
    throw new DeviceRequestError('gen_login_qrcode', r.reply.errcode, r.reply.errmsg);
  }

  /** `upload_log` (§A5.8): a binary request; the answer is a JSON reply keyed by the same req_id. */
  async uploadLog(data: Uint8Array): Promise<ReplyFrame> {
    const r = await this.call('upload_log', undefined, this.iv.requestTimeoutMs, data);
    if (r.kind !== 'json') throw new DeviceRequestError('upload_log', WsErr.MALFORMED_FRAME, 'unexpected binary reply');
    if (r.reply.errcode !== 0) throw new DeviceRequestError('upload_log', r.reply.errcode, r.reply.errmsg);
    return r.reply;
  }

  /** The dynamic bind QR the device would show now (§A8), signed with its SecretNo. */
  bindQrUrl(publicUrl = this.publicUrl): string {
    return buildBindQrUrl({
      publicUrl,
      sn: this.sn,
      secretNo: this.secretNo(),
      timestampSec: this.serverNowSec(),
      nonce: this.makeNonce(),
    });
  }

  /** The dynamic login QR (§A8); a scan sends `push_user_scan` carrying `state`. */
  loginQrUrl(state: string, publicUrl = this.publicUrl): string {
    return buildLoginQrUrl({
      publicUrl,
      sn: this.sn,
      secretNo: this.secretNo(),
      timestampSec: this.serverNowSec(),
      nonce: this.makeNonce(),
      state,
    });
  }

  // ---- connection ----

  private connect(): void {
    const conn = ++this.conn;
    this.setState('connecting');
    this.open = false;
    this.sock = this.factory(this.opts.url, {
      open: () => {
        if (conn !== this.conn) return;
        this.open = true;
        this.lastRxAt = this.clock.now();
        this.emit('connected', { attempt: this.attempt });
        this.schedulePing();
        this.enter(this.firstStep());
      },
      message: (data, isBinary) => {
        if (conn !== this.conn) return;
        this.lastRxAt = this.clock.now();
        if (isBinary) this.onBinary(data);
        else this.onText(data.toString('utf8'));
      },
      error: () => {
        // The close callback follows and does the work; errors alone change nothing.
      },
      close: (code, reason) => {
        if (conn !== this.conn) return;
        this.onClose(code, reason);
      },
    });
  }

  private onClose(code: number, reason: string): void {
    this.open = false;
    this.sock = null;
    this.conn++;
    this.clearConnTimers();
    this.failPending(new Error(`connection closed (${code})`));
    if (this.st === 'stopped') return;
    const delay = backoffDelay(this.attempt, this.backoff, this.random);
    this.attempt++;
    this.setState('backoff');
    this.emit('disconnected', { code, reason, reconnectInMs: delay });
    this.reconnectTimer = this.timers.setTimeout(() => {
      this.reconnectTimer = null;
      if (this.st === 'backoff') this.connect();
    }, delay);
  }

  private clearConnTimers(): void {
    for (const t of [this.stepTimer, this.pingTimer, this.syncTimer]) if (t !== null) this.timers.clearTimeout(t);
    this.stepTimer = this.pingTimer = this.syncTimer = null;
  }

  private failPending(err: Error): void {
    for (const p of this.pending.values()) {
      if (p.kind === 'call') {
        this.timers.clearTimeout(p.timer);
        p.reject(err);
      }
    }
    this.pending.clear();
    this.lastPingId = null;
    this.stepReqId = null;
  }

  private schedulePing(): void {
    this.pingTimer = this.timers.setTimeout(() => {
      this.pingTimer = null;
      if (!this.open) return;
      if (this.clock.now() - this.lastRxAt > this.iv.deadAfterMs) {
        // Nothing heard for three heartbeats: the path is dead even if TCP hasn't noticed.
        this.sock?.terminate();
        return;
      }
      if (this.lastPingId !== null) this.pending.delete(this.lastPingId);
      this.lastPingId = this.send('ping', undefined, { kind: 'ping' });
      this.schedulePing();
    }, this.iv.pingMs);
  }

  // ---- the flow (§A2) ----

  private setState(to: DeviceState): void {
    const from = this.st;
    if (from === to) return;
    this.st = to;
    if (to !== 'active') this.waitingForBinding = false;
    this.emit('state', { from, to });
  }

  /** Moves to a flow state and sends its request; the step timer resends it if no answer comes. */
  private enter(state: DeviceState): void {
    if (this.stepTimer !== null) this.timers.clearTimeout(this.stepTimer);
    this.stepTimer = null;
    this.setState(state);
    if (state === 'ready') {
      this.restarts = 0;
      return;
    }
    const cmd = STEP_CMD[state];
    if (!cmd || !this.open) return;
    // A resent step abandons the earlier request: its late answer must not count.
    if (this.stepReqId !== null) this.pending.delete(this.stepReqId);
    this.stepReqId = this.send(cmd, this.stepBody(state), { kind: 'step', state, cmd });
    this.retryStepIn(this.iv.stepRetryMs);
  }

  /** Where the flow starts on connect and after a restart (§A2). */
  private firstStep(): DeviceState {
    if (this.opts.timeSync !== 'on-demand') return 'sync';
    return hasSecretNo(this.creds) ? 'register' : 'secret_no';
  }

  private retryStepIn(ms: number): void {
    if (this.stepTimer !== null) this.timers.clearTimeout(this.stepTimer);
    const state = this.st;
    this.stepTimer = this.timers.setTimeout(() => {
      this.stepTimer = null;
      if (this.st === state && this.open) this.enter(state);
    }, ms);
  }

  private stepBody(state: DeviceState): Record<string, unknown> | undefined {
    const c = this.creds;
    switch (state) {
      case 'secret_no': {
        const f = { sn: c.sn, timestamp: String(this.serverNowSec()), nonce: this.makeNonce() };
        return {
          device_signature: signSecretNoRequest(f, c.seedSecretNo ?? ''),
          nonce: f.nonce,
          timestamp: f.timestamp,
          sn: f.sn,
        };
      }
      case 'register': {
        const f = { sn: c.sn, timestamp: String(this.serverNowSec()), nonce: this.makeNonce() };
        return {
          device_signature: signRegister(f, this.secretNo()),
          nonce: f.nonce,
          timestamp: f.timestamp,
          sn: f.sn,
          ...(this.opts.netInfo ? { net_info: this.opts.netInfo } : {}),
        };
      }
      case 'active':
        return { active_code: c.activeCode ?? '' };
      case 'subscribe':
        return {
          secret: c.secret ?? '',
          firmware_version: this.opts.firmwareVersion ?? '1.0.0',
          ...(this.opts.extArgs ? { ext_args: this.opts.extArgs } : {}),
        };
      default:
        return undefined;
    }
  }

  private onStepReply(p: Extract<Pending, { kind: 'step' }>, r: ReplyFrame): void {
    if (p.state !== this.st) return; // a late answer to a step already left
    const body = r.body ?? {};
    switch (p.state) {
      case 'sync': {
        const ts = Number(body.timestamp);
        if (r.errcode !== 0 || !Number.isFinite(ts)) {
          this.retryStepIn(this.iv.stepRetryMs);
          return;
        }
        this.offsetMs = ts * 1000 - this.clock.now();
        this.syncedAt = this.clock.now();
        this.emit('time_synced', { serverTimeSec: ts, offsetMs: this.offsetMs });
        if (this.syncTimer === null && this.opts.timeSync !== 'on-demand') this.scheduleTimeSync();
        this.enter(hasSecretNo(this.creds) ? 'register' : 'secret_no');
        return;
      }
      case 'secret_no': {
        if (r.errcode === WsErr.STALE_TIMESTAMP) {
          this.resync();
          return;
        }
        const secretNo = body.secret_no;
        if (r.errcode !== 0 || typeof secretNo !== 'string' || secretNo === '') {
          this.emit('protocol_error', { message: `get_secret_no refused: ${r.errcode} ${r.errmsg}` });
          this.retryStepIn(this.iv.stepRetryMs);
          return;
        }
        this.update({ secretNo });
        this.enter('register');
        return;
      }
      case 'register': {
        if (r.errcode === WsErr.STALE_TIMESTAMP) {
          this.resync();
          return;
        }
        if (r.errcode === WsErr.HAS_SUBSCRIBED) {
          this.registered(r.errcode, 'ready');
          return;
        }
        if (r.errcode === WsErr.ACTIVED) {
          this.registered(r.errcode, this.creds.secret ? 'subscribe' : 'active');
          return;
        }
        if (r.errcode === 0 || r.errcode === WsErr.REGISTERED || r.errcode === WsErr.KEEP_ALIVE_REGISTERED) {
          // 600002/600012: already registered, carry on with the stored active_code (§A7).
          const code = typeof body.active_code === 'string' && body.active_code !== '' ? body.active_code : this.creds.activeCode;
          if (!code) {
            this.emit('protocol_error', { message: `register answered ${r.errcode} without an active_code and none is stored` });
            this.retryStepIn(this.iv.stepRetryMs);
            return;
          }
          if (code !== this.creds.activeCode) this.update({ activeCode: code });
          this.registered(r.errcode, this.creds.secret ? 'subscribe' : 'active');
          return;
        }
        this.retryStepIn(this.iv.stepRetryMs);
        return;
      }
      case 'active': {
        if (r.errcode === 0 && typeof body.secret === 'string' && body.secret !== '') {
          this.waitingForBinding = false;
          if (body.secret !== this.creds.secret) this.update({ secret: body.secret });
          this.emit('activated', { secret: body.secret });
          this.enter('subscribe');
          return;
        }
        if (r.errcode === WsErr.INVALID_ACTIVE_CODE) {
          this.update({ activeCode: undefined });
          this.enter('register');
          return;
        }
        // "Not yet bound" (Bindery: 600103; the real code is undocumented, firmware just retries).
        this.waitingForBinding = true;
        this.restarts = 0;
        this.emit('waiting_for_binding', { errcode: r.errcode, errmsg: r.errmsg });
        this.retryStepIn(this.iv.activePollMs);
        return;
      }
      case 'subscribe': {
        if (r.errcode === 0 || r.errcode === WsErr.SUBSCRIBED) {
          this.enter('ready');
          this.emit('subscribed', { errcode: r.errcode });
          return;
        }
        this.retryStepIn(this.iv.stepRetryMs);
        return;
      }
      default:
        return;
    }
  }

  /**
   * A signed step was refused as stale: our clock is off, so ask the server's time and sign
   * again. Right after a sync the server's answer is not believed twice; the step waits instead.
   */
  private resync(): void {
    if (this.syncedAt !== null && this.clock.now() - this.syncedAt < this.iv.stepRetryMs) {
      this.emit('protocol_error', { message: `${STEP_CMD[this.st]} refused as stale right after get_timestamp` });
      this.retryStepIn(this.iv.stepRetryMs);
      return;
    }
    this.enter('sync');
  }

  private registered(errcode: number, next: DeviceState): void {
    // The server accepted us: the connection is healthy, the next loss starts backoff afresh.
    this.attempt = 0;
    this.emit('registered', { activeCode: this.creds.activeCode ?? '', errcode });
    if (next === 'ready') {
      this.enter('ready');
      this.emit('subscribed', { errcode });
      return;
    }
    this.enter(next);
  }

  private scheduleTimeSync(): void {
    this.syncTimer = this.timers.setTimeout(() => {
      this.syncTimer = null;
      if (!this.open) return;
      this.send('get_timestamp', undefined, { kind: 'sync' });
      this.scheduleTimeSync();
    }, this.iv.timeSyncMs);
  }

  /** §A2/§A7: the four codes send the device back to the start of its flow; 600004 wipes the secret. */
  private restartFlow(errcode: number, cmd: string | null): void {
    const wiped = errcode === WsErr.NOT_AUTHORIZED;
    if (wiped && this.creds.secret !== undefined) this.update({ secret: undefined });
    this.emit('restart', { errcode, cmd, wiped });
    if (!this.open || this.st === 'stopped') return;
    // The first restart is immediate (as firmware does); repeated ones without progress back off.
    const n = this.restarts++;
    if (this.stepTimer !== null) this.timers.clearTimeout(this.stepTimer);
    this.stepTimer = null;
    const first = this.firstStep();
    if (n === 0) {
      this.enter(first);
      return;
    }
    this.setState(first);
    this.retryStepIn(backoffDelay(n - 1, this.backoff, this.random));
  }

  // ---- frames ----

  private onText(text: string): void {
    let f: unknown;
    try {
      // Only nonce/timestamp numbers need their exact text kept (P-F-4); most frames have neither.
      f = text.includes('"nonce"') || text.includes('"timestamp"') ? parseFrameText(text) : JSON.parse(text);
    } catch {
      this.emit('protocol_error', { message: 'frame is not JSON' });
      return;
    }
    if (typeof f !== 'object' || f === null || Array.isArray(f)) {
      this.emit('protocol_error', { message: 'frame is not a JSON object' });
      return;
    }
    const frame = f as Record<string, unknown>;
    if (typeof frame.cmd === 'string') {
      this.onPush(frame as unknown as PushFrame);
      return;
    }
    const headers = frame.headers as { req_id?: unknown } | undefined;
    const errcode = Number(frame.errcode ?? 0);
    if (!headers || typeof headers.req_id !== 'string') {
      // Header-less error (§A1.1): Lombo reads errcode and restarts on the listed codes.
      if (RESTART_FLOW_CODES.includes(errcode)) this.restartFlow(errcode, null);
      else this.emit('protocol_error', { message: `frame without headers (errcode ${errcode})` });
      return;
    }
    const reply: ReplyFrame = {
      headers: { req_id: headers.req_id },
      errcode,
      errmsg: typeof frame.errmsg === 'string' ? frame.errmsg : '',
      ...(frame.body && typeof frame.body === 'object' ? { body: frame.body as Record<string, unknown> } : {}),
    };
    const p = this.pending.get(reply.headers.req_id);
    if (!p) return; // a late answer to a request already resent or abandoned
    this.pending.delete(reply.headers.req_id);
    if (p.kind === 'ping' && this.lastPingId === reply.headers.req_id) this.lastPingId = null;
    if (p.kind === 'call') {
      this.timers.clearTimeout(p.timer);
      p.resolve({ kind: 'json', reply });
    }
    if (RESTART_FLOW_CODES.includes(errcode)) {
      this.restartFlow(errcode, p.kind === 'step' || p.kind === 'call' ? p.cmd : p.kind === 'ping' ? 'ping' : 'get_timestamp');
      return;
    }
    if (p.kind === 'step') this.onStepReply(p, reply);
    else if (p.kind === 'sync' && errcode === 0) {
      const ts = Number(reply.body?.timestamp);
      if (Number.isFinite(ts)) {
        this.offsetMs = ts * 1000 - this.clock.now();
        this.emit('time_synced', { serverTimeSec: ts, offsetMs: this.offsetMs });
      }
    }
  }

  private onBinary(data: Buffer): void {
    let r: ReturnType<typeof decodeBinaryReply>;
    try {
      r = decodeBinaryReply(data);
    } catch (e) {
      this.emit('protocol_error', { message: e instanceof BinaryFrameError ? e.message : 'bad binary frame' });
      return;
    }
    const p = this.pending.get(r.reqId);
    if (p?.kind !== 'call') return;
    this.pending.delete(r.reqId);
    this.timers.clearTimeout(p.timer);
    p.resolve({ kind: 'binary', data: r.data });
  }

  private onPush(f: PushFrame): void {
    this.emit('push', f);
    const body = f.body ?? {};
    switch (f.cmd) {
      case 'push_bind_corp':
        // §A6: fetch the secret at once instead of waiting for the next poll.
        if (this.st === 'active') this.enter('active');
        break;
      case 'push_unbind_corp':
        // Lombo: drop the secret and go back to activation polling.
        if (this.creds.secret !== undefined) this.update({ secret: undefined });
        if (this.st === 'ready' || this.st === 'subscribe') this.enter('active');
        break;
    }
    if (PUSH_SET.has(f.cmd)) {
      this.emit(f.cmd as PushCmd, pushPayload(f.cmd as PushCmd, body) as never);
    }
  }

  private call(
    cmd: string,
    body: Record<string, unknown> | undefined,
    timeoutMs: number,
    binary?: Uint8Array,
  ): Promise<CallResult> {
    return new Promise((resolve, reject) => {
      if (!this.open) {
        reject(new Error(`device ${this.sn} is not connected`));
        return;
      }
      const id = this.nextReqId(cmd);
      const timer = this.timers.setTimeout(() => {
        if (this.pending.get(id) === entry) this.pending.delete(id);
        reject(new Error(`${cmd}: no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      const entry: Pending = { kind: 'call', cmd, resolve, reject, timer };
      const prev = this.pending.get(id);
      if (prev?.kind === 'call') {
        this.timers.clearTimeout(prev.timer);
        prev.reject(new Error(`${cmd}: superseded by a request with the same req_id`));
      }
      this.pending.set(id, entry);
      if (binary) this.sock?.send(encodeBinaryRequest(cmd, id, binary));
      else this.sock?.send(this.encode({ cmd, headers: { req_id: id }, ...(body ? { body } : {}) }));
    });
  }

  private async ok(cmd: string, body?: Record<string, unknown>): Promise<Record<string, unknown>> {
    const r = await this.request(cmd, body);
    if (r.errcode !== 0) throw new DeviceRequestError(cmd, r.errcode, r.errmsg);
    return r.body ?? {};
  }

  /** Sends a request and records what its answer is for; returns the req_id. */
  private send(cmd: string, body: Record<string, unknown> | undefined, p: Pending): string {
    const id = this.nextReqId(cmd);
    this.pending.set(id, p);
    this.sock?.send(this.encode({ cmd, headers: { req_id: id }, ...(body ? { body } : {}) }));
    return id;
  }

  private nextReqId(cmd: string): string {
    return this.opts.reqIds === 'fixed' ? `lb_${cmd}` : `${cmd}-${++this.seq}`;
  }

  private encode(frame: { cmd: string; headers: { req_id: string }; body?: Record<string, unknown> }): string {
    const text = JSON.stringify(frame);
    if (this.opts.numbers !== 'number') return text;
    // Our own output: the two keys only ever hold digit strings we made.
    return text.replace(/"(nonce|timestamp)":"(\d+)"/g, '"$1":$2');
  }

  private secretNo(): string {
    if (!hasSecretNo(this.creds)) throw new Error(`device ${this.sn} has no SecretNo yet`);
    return this.creds.secretNo!;
  }

  private update(patch: Partial<DeviceCredentials>): void {
    this.creds = { ...this.creds, ...patch };
    for (const k of Object.keys(patch) as Array<keyof DeviceCredentials>) if (patch[k] === undefined) delete this.creds[k];
    this.emit('persist', this.credentials);
  }
}

function hasSecretNo(c: DeviceCredentials): boolean {
  return typeof c.secretNo === 'string' && c.secretNo !== '' && c.secretNo !== PLACEHOLDER_SECRET_NO;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v);
}

/** Typed payloads; pushes without a body (§A6) carry `{}`. */
function pushPayload(cmd: PushCmd, b: Record<string, unknown>): unknown {
  switch (cmd) {
    case 'push_user_scan':
      return {
        userid: str(b.userid),
        op_type: str(b.op_type),
        oper_id: str(b.oper_id),
        state: str(b.state),
        user_type: Number(b.user_type ?? 0),
      };
    case 'push_fetch_log':
      return { hint: str(b.hint) };
    case 'push_selfhelp_notify':
      return { data: str(b.data) };
    default:
      return {};
  }
}
