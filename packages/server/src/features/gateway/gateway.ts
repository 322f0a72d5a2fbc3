import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { BinaryFrameError, decodeBinaryRequest, isRequestFrame, parseFrameText, WsErr } from '@bindery/protocol';
import type { FastifyInstance } from 'fastify';
import { type RawData, type WebSocket, WebSocketServer } from 'ws';
import type { Deps } from '../../deps.js';
import type { Services } from '../../services.js';
import { PROCESS_STARTED_AT, SERVER_VERSION } from '../../shared/version.js';
import { announceDeviceChange } from '../binding/device-live.js';
import { BINARY_COMMANDS, COMMANDS } from './commands/index.js';
import { asPushReply, type PushReply, pushReply } from './commands/push-reply.js';
import { type CommandResult, type CommandSpec, REFUSED_ATTEMPT } from './commands/types.js';
import { Connection, ConnState, type Job } from './connection.js';
import { GatewayMetrics } from './gateway.metrics.js';
import { GatewayRepo } from './gateway.repo.js';
import { defaultLimits, type GatewayLimits, MAX_PAYLOAD_BYTES } from './limits.js';
import type { NodeReport } from './presence.js';
import {
  type KickMessage,
  type LocalOutcome,
  type LocalPushSink,
  nodeTopic,
  PRE_LOGIN_PUSHES,
  PUSH_CMDS,
  type PushMessage,
} from './pushes.service.js';
import { reannounce } from './reannounce.js';
import { StateWriter } from './state-writer.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The device gateway on this server's port (features/gateway). */
    gateway: Gateway;
  }
}

/** WebSocket close codes the gateway uses (P-F-9). */
export const CloseCode = {
  goingAway: 1001,
  policy: 1008,
  replaced: 4000,
  slowConsumer: 4002,
} as const;

const CONN = Symbol('bindery.gateway.connection');
type GatewaySocket = WebSocket & { [CONN]: Connection };

/** Replies not sent yet beyond this many bytes mean the device does not read: drop it. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** Maintenance (stale-online sweep, purges) runs every this many sweeps. */
const MAINTENANCE_EVERY = 12;
const DAY_MS = 86_400_000;
/** P-PUSH-7: why a claimed command that never reached the socket failed. */
const UNSENT_REASON = 'the connection closed before the command was written';

/**
 * Attaches the gateway to the app's HTTP(S) server: every WebSocket upgrade on any path, with
 * or without a sub-protocol, is a device (P-F-1). Called by buildApp; the gateway stops (sockets
 * closed, state flushed, presence released) when the app closes.
 */
export async function attachGateway(app: FastifyInstance, deps: Deps, services: Services): Promise<Gateway> {
  const gw = new Gateway(deps, services);
  app.decorate('gateway', gw);
  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => gw.handleUpgrade(req, socket, head));
  app.addHook('preClose', async () => {
    await gw.close();
  });
  app.addHook('onClose', async () => {
    await services.pushes.close();
  });
  await gw.start();
  return gw;
}

/**
 * The WeCom direct-access gateway of one process: the sockets it holds, their state machines
 * (P-ST-*), the commands of §A5 and the delivery of pushes (P-PUSH-*). Per-device facts that
 * outlive a connection go to the database in batches (P-LIVE-3); where a device is connected
 * goes to the presence registry (P-CL-*).
 */
export class Gateway implements LocalPushSink {
  readonly limits: GatewayLimits = defaultLimits();
  readonly nodeId: string;
  readonly repo: GatewayRepo;
  readonly metrics: GatewayMetrics;
  private readonly wss: WebSocketServer;
  private readonly bySn = new Map<string, Connection>();
  private readonly all = new Set<Connection>();
  /** P-RATE-3: SNs whose failed-attempt budget ran out → until when (real ms). */
  private readonly refusedSns = new Map<string, number>();
  /** P-SIG-5: signed requests seen recently → the connection that used them, until when. */
  private readonly nonces = new Map<string, { conn: number; until: number }>();
  private readonly writer: StateWriter;
  /** Model and vendor ids repeat across thousands of devices: keep one copy of each string. */
  private readonly interned = new Map<string, string>();
  private readonly replyCounters = new Map<number, { inc(): void }>();
  private readonly listeners: {
    message: (this: WebSocket, data: RawData, isBinary: boolean) => void;
    close: (this: WebSocket) => void;
    error: (this: WebSocket, err: Error) => void;
  };
  private nextConnId = 1;
  private timers: NodeJS.Timeout[] = [];
  /** Timer runs (flush, sweep, heartbeat) not yet finished: close waits for them before the database goes. */
  private readonly running = new Set<Promise<unknown>>();
  private unsubscribe: (() => Promise<void>) | null = null;
  private sweeps = 0;
  private closing = false;

  constructor(
    readonly deps: Deps,
    readonly services: Services,
  ) {
    this.nodeId = deps.config.nodeId;
    this.repo = new GatewayRepo(deps.db.kysely, deps.db.caps);
    this.metrics = new GatewayMetrics(deps.metrics);
    this.writer = new StateWriter(this.repo, this.nodeId);
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: MAX_PAYLOAD_BYTES,
    });
    this.listeners = makeListeners(this);
  }

  now(): number {
    return this.deps.clock.now();
  }

  // ---- lifecycle -----------------------------------------------------------------------------

  async start(): Promise<void> {
    // P-LIVE-4: a previous run of this node may have died with devices marked online.
    await this.repo.markNodeOffline(this.nodeId);
    const presence = this.services.pushes.presence;
    await presence.heartbeat(this.nodeId, this.limits.presenceTtlSec, this.report());
    this.unsubscribe = await this.deps.bus.subscribe(nodeTopic(this.nodeId), (m) => {
      void this.onBusMessage(m);
    });
    this.services.pushes.attachLocal(this);
    presence.onReconnect?.(() => {
      if (this.closing) return;
      const ttl = this.limits.presenceTtlSec;
      reannounce(presence, this.nodeId, ttl, () => [...this.bySn.keys()], this.deps.logger).catch((err: unknown) =>
        this.deps.logger.error({ err }, 'presence re-announce failed'),
      );
    });
    const every = (ms: number, f: () => Promise<unknown>, what: string) => {
      const t = setInterval(() => {
        const run = f()
          .catch((err: unknown) => this.deps.logger.error({ err }, `gateway ${what} failed`))
          .finally(() => this.running.delete(run));
        this.running.add(run);
      }, ms);
      t.unref();
      this.timers.push(t);
    };
    every(this.limits.flushIntervalMs, () => this.flush(), 'state flush');
    every(this.limits.sweepIntervalMs, () => this.sweep(), 'sweep');
    every(
      this.limits.presenceHeartbeatSec * 1000,
      () => presence.heartbeat(this.nodeId, this.limits.presenceTtlSec, this.report()),
      'heartbeat',
    );
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    // A sweep begun before close would otherwise go on after the database has closed.
    await Promise.all(this.running);
    this.services.pushes.detachLocal(this);
    const presence = this.services.pushes.presence;
    await this.unsubscribe?.().catch(() => {});
    const held = [...this.bySn.keys()];
    const sockets: WebSocket[] = [];
    for (const c of [...this.all]) {
      sockets.push(c.ws);
      c.ws.close(CloseCode.goingAway, 'server shutting down');
      this.dispose(c, 'shutdown', false);
    }
    await this.writer.flush().catch((err: unknown) => this.deps.logger.error({ err }, 'final state flush failed'));
    await presence.releaseMany(held, this.nodeId).catch(() => {});
    await presence.dropNode(this.nodeId).catch(() => {});
    // Give devices a moment to answer the close handshake, then cut whatever is left.
    await Promise.race([
      Promise.all(sockets.map((ws) => (ws.readyState === ws.CLOSED ? null : new Promise((r) => ws.once('close', r))))),
      new Promise((r) => setTimeout(r, 1000).unref()),
    ]);
    for (const ws of sockets) if (ws.readyState !== ws.CLOSED) ws.terminate();
  }

  /** Open sockets on this process, and devices (registered or better) among them. */
  get stats(): { connections: number; devices: number; pendingWrites: number } {
    return { connections: this.all.size, devices: this.bySn.size, pendingWrites: this.writer.pending };
  }

  /**
   * What this process tells the others with each presence heartbeat, for instance health
   * (features/instance): its devices and sockets, version, start, label batches and zips in progress.
   */
  report(): NodeReport {
    const work = this.services.production.activity();
    return {
      devices: this.bySn.size,
      connections: this.all.size,
      batches_generating: work.generating,
      label_zips: work.zipsRendering + work.zipsWaiting,
      version: SERVER_VERSION,
      started_at: PROCESS_STARTED_AT,
    };
  }

  /** The connection of a device on this process, if any (tests and diagnostics). */
  connectionOf(snKey: string): Connection | undefined {
    return this.bySn.get(snKey);
  }

  // ---- sockets -------------------------------------------------------------------------------

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req));
  }

  private accept(ws: WebSocket, req: IncomingMessage): void {
    if (this.closing) {
      ws.terminate();
      return;
    }
    const conn = new Connection(this.nextConnId++, ws, remoteAddress(req, this.deps.config.trustProxy), this.now());
    (ws as GatewaySocket)[CONN] = conn;
    ws.on('message', this.listeners.message);
    ws.on('close', this.listeners.close);
    ws.on('error', this.listeners.error);
    this.all.add(conn);
    this.metrics.connections.inc();
    this.metrics.byState[ConnState.Anonymous]!.inc();
  }

  /** Forgets a connection: maps, gauges and — if it was its device's current one — presence and online state. */
  private dispose(conn: Connection, reason: string, releasePresence = true): void {
    if (conn.closed) return;
    conn.closed = true;
    conn.queue = null;
    this.all.delete(conn);
    this.metrics.connections.dec();
    this.metrics.byState[conn.state]!.dec();
    this.metrics.closes.inc({ reason });
    const d = conn.device;
    if (d && this.bySn.get(d.snKey) === conn) {
      this.bySn.delete(d.snKey);
      this.writer.markOffline(d.id, conn.lastFrameAt);
      this.fact('device.offline', d);
      if (releasePresence) {
        this.services.pushes.presence
          .release(d.snKey, this.nodeId)
          .catch((err: unknown) => this.deps.logger.warn({ err, sn: d.sn }, 'presence release failed'));
      }
    }
  }

  /** Closes a connection with a code and reason (P-F-9). */
  closeConn(conn: Connection, code: number, reason: string, metric: string): void {
    if (conn.closed) return;
    conn.ws.close(code, reason);
    this.dispose(conn, metric);
  }

  onSocketClose(conn: Connection): void {
    this.dispose(conn, 'peer');
  }

  onSocketError(conn: Connection, err: Error): void {
    // ws reports protocol violations (bad UTF-8, oversized frames) here and then closes (P-F-9).
    this.deps.logger.debug({ err, conn: conn.id }, 'device socket error');
  }

  // ---- frames --------------------------------------------------------------------------------

  onFrame(conn: Connection, data: Buffer, isBinary: boolean): void {
    if (conn.closed) return;
    conn.lastFrameAt = this.now();
    (isBinary ? this.metrics.framesInBinary : this.metrics.framesInText).inc();
    // P-RATE-1/2: one-second windows in real time (floods are real, whatever the domain clock says).
    const t = Date.now();
    if (t - conn.rateWindowStart >= 1000) {
      conn.rateWindowStart = t;
      conn.rateCount = 0;
    }
    if (++conn.rateCount > this.limits.framesPerSec) {
      if (conn.rateCount > this.limits.floodFramesPerSec) {
        this.closeConn(conn, CloseCode.policy, 'frame flood', 'flood');
      } else {
        this.sendError(conn, null, WsErr.RATE_LIMITED, `more than ${this.limits.framesPerSec} frames per second; slow down`);
      }
      return;
    }
    const job = isBinary ? this.parseBinary(conn, data) : this.parseText(conn, data);
    if (!job) return;
    const spec = (isBinary ? BINARY_COMMANDS : COMMANDS).get(job.cmd);
    if (!spec) {
      // P-F-7: exact names only; the attendance/printer commands of §A5.13 are outside Bindery (the
      // reference names them without their contracts, §C), so they get the unknown-command reply.
      this.sendError(conn, job.reqId, WsErr.UNKNOWN_COMMAND, `unknown command ${job.cmd.slice(0, 64)}`);
      return;
    }
    if (spec.immediate) {
      void this.runJob(conn, spec, job);
      return;
    }
    // P-F-6: one command at a time per connection, in order.
    if (conn.busy) {
      conn.queue ??= [];
      const q = conn.queue;
      if (q.length >= this.limits.maxQueued) {
        this.sendError(conn, job.reqId, WsErr.RATE_LIMITED, 'too many commands waiting; wait for replies');
        return;
      }
      q.push(job);
      return;
    }
    void this.drain(conn, job);
  }

  /** P-F-2/3/4/8: a JSON request, or an error reply (with headers when the req_id is known). */
  private parseText(conn: Connection, data: Buffer): Job | null {
    if (data.length > this.limits.maxTextFrameBytes) {
      this.sendError(conn, null, WsErr.PAYLOAD_TOO_LARGE, `text frames may be at most ${this.limits.maxTextFrameBytes} bytes`);
      return null;
    }
    let v: unknown;
    try {
      v = parseFrameText(data.toString('utf8'));
    } catch {
      this.sendError(conn, null, WsErr.MALFORMED_FRAME, 'the frame is not JSON');
      return null;
    }
    if (!isRequestFrame(v)) {
      // P-PUSH-7: a device's answer to a push is handled, never answered.
      const answer = asPushReply(v);
      if (answer) {
        this.onPushReply(conn, answer);
        return null;
      }
      this.sendError(
        conn,
        reqIdOf(v),
        WsErr.MALFORMED_FRAME,
        'a request is {"cmd": string, "headers": {"req_id": string}, "body"?: object}',
      );
      return null;
    }
    return { cmd: v.cmd, reqId: v.headers.req_id, body: v.body ?? {}, data: null };
  }

  /** P-B-2: a binary request (§A1.2), or an error reply. */
  private parseBinary(conn: Connection, data: Buffer): Job | null {
    try {
      const r = decodeBinaryRequest(data, { maxCmd: 64, maxReqId: 256 });
      return { cmd: r.cmd, reqId: r.reqId, body: {}, data: r.data };
    } catch (e) {
      const why = e instanceof BinaryFrameError ? e.message : 'unreadable binary frame';
      this.sendError(conn, null, WsErr.MALFORMED_FRAME, `bad binary frame: ${why}`);
      return null;
    }
  }

  private async drain(conn: Connection, first: Job): Promise<void> {
    conn.busy = true;
    let job: Job | undefined = first;
    while (job && !conn.closed) {
      const spec = (job.data !== null ? BINARY_COMMANDS : COMMANDS).get(job.cmd)!;
      await this.runJob(conn, spec, job);
      job = conn.queue?.shift();
    }
    if (conn.queue?.length === 0) conn.queue = null;
    conn.busy = false;
  }

  private async runJob(conn: Connection, spec: CommandSpec, job: Job): Promise<void> {
    let out: CommandResult;
    if (conn.state < spec.needs) {
      out = missingStep(conn.state);
    } else {
      try {
        out = await spec.run(this, conn, job);
      } catch (err) {
        this.deps.logger.error({ err, cmd: spec.name, sn: conn.device?.sn }, 'gateway command failed');
        out = { errcode: WsErr.INTERNAL, errmsg: 'internal error; retry later' };
      }
    }
    if (conn.closed) return;
    if (out.binary) {
      this.send(conn, out.binary);
      this.countReply(out.errcode);
    } else {
      this.reply(conn, job.reqId, out);
    }
    if (out.after) {
      try {
        await out.after();
      } catch (err) {
        this.deps.logger.error({ err, cmd: spec.name }, 'gateway follow-up failed');
      }
    }
  }

  /** P-F-3: replies echo req_id, carry errcode/errmsg at the top level, and never a cmd. */
  private reply(conn: Connection, reqId: string, r: CommandResult): void {
    const frame =
      r.body === undefined
        ? { headers: { req_id: reqId }, errcode: r.errcode, errmsg: r.errmsg }
        : { headers: { req_id: reqId }, body: r.body, errcode: r.errcode, errmsg: r.errmsg };
    this.send(conn, JSON.stringify(frame));
    this.countReply(r.errcode);
  }

  /** An error reply; without headers when the request's req_id is unknown (P-F-5). */
  sendError(conn: Connection, reqId: string | null, errcode: number, errmsg: string): void {
    const frame = reqId === null ? { errcode, errmsg } : { headers: { req_id: reqId }, errcode, errmsg };
    this.send(conn, JSON.stringify(frame));
    this.countReply(errcode);
  }

  /** P-PUSH-0: a push carries cmd and a cloud-made req_id; body only when it has parameters. False when not written. */
  sendPush(conn: Connection, cmd: string, body: Record<string, unknown> | undefined, reqId: string): boolean {
    const frame = body === undefined ? { cmd, headers: { req_id: reqId } } : { cmd, headers: { req_id: reqId }, body };
    return this.send(conn, JSON.stringify(frame));
  }

  /** Writes a frame; false when the socket is gone (or dropped here for not reading). */
  private send(conn: Connection, data: string | Buffer): boolean {
    const ws = conn.ws;
    if (conn.closed || ws.readyState !== ws.OPEN) return false;
    if (ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.closeConn(conn, CloseCode.slowConsumer, 'not reading replies', 'slow_consumer');
      ws.terminate();
      return false;
    }
    ws.send(data);
    this.metrics.framesOut.inc();
    return true;
  }

  private countReply(errcode: number): void {
    let c = this.replyCounters.get(errcode);
    if (!c) {
      c = this.metrics.replies.labels(String(errcode));
      this.replyCounters.set(errcode, c);
    }
    c.inc();
  }

  // ---- what commands use ---------------------------------------------------------------------

  setState(conn: Connection, state: ConnState): void {
    if (conn.state === state) return;
    this.metrics.byState[conn.state]!.dec();
    this.metrics.byState[state]!.inc();
    conn.state = state;
  }

  /**
   * P-ST-2: the connection now speaks for this device. An older connection of the same SN —
   * here or on another process — is closed (P-CL-4: newest wins).
   */
  async adopt(
    conn: Connection,
    d: { id: number; sn: string; sn_key: string; model_id: string; vendor_id: string },
  ): Promise<void> {
    if (conn.device && conn.device.snKey !== d.sn_key) {
      // The socket switched identity: the old one is released as if it had closed.
      const old = conn.device;
      if (this.bySn.get(old.snKey) === conn) {
        this.bySn.delete(old.snKey);
        this.writer.markOffline(old.id, conn.lastFrameAt);
        this.fact('device.offline', old);
        void this.services.pushes.presence.release(old.snKey, this.nodeId).catch(() => {});
      }
      conn.device = null;
      this.setState(conn, ConnState.Anonymous);
    }
    if (!conn.device) {
      conn.device = {
        id: d.id,
        sn: d.sn,
        snKey: d.sn_key,
        modelId: this.intern(d.model_id),
        vendorId: this.intern(d.vendor_id),
      };
    }
    const prev = this.bySn.get(d.sn_key);
    if (!prev) this.fact('device.online', conn.device);
    this.bySn.set(d.sn_key, conn);
    if (prev && prev !== conn) this.closeConn(prev, CloseCode.replaced, 'replaced by a newer connection', 'replaced');
    if (conn.state < ConnState.Registered) this.setState(conn, ConnState.Registered);
    this.writer.markOnline(d.id, conn.remoteAddr, conn.lastFrameAt, null);
    conn.lastSeenWritten = conn.lastFrameAt;
    try {
      const old = await this.services.pushes.presence.claim(d.sn_key, this.nodeId);
      if (old) await this.deps.bus.publish(nodeTopic(old), { t: 'kick', sn: d.sn_key, by: this.nodeId } satisfies KickMessage);
    } catch (err) {
      this.deps.logger.error({ err, sn: d.sn }, 'presence claim failed');
    }
    // Closed while claiming: undo the claim so pushes don't chase a socket that is gone.
    if (conn.closed && !this.bySn.has(d.sn_key)) {
      await this.services.pushes.presence.release(d.sn_key, this.nodeId).catch(() => {});
    }
  }

  /**
   * Lifecycle facts for webhooks (features/callbacks), from the process that sees them. Never
   * awaited: a listener's database work must not slow or fail the device's frames.
   */
  fact(
    type: 'device.online' | 'device.offline' | 'device.activated',
    d: { sn: string; modelId: string; vendorId: string },
  ): void {
    const at = this.now();
    const e =
      type === 'device.activated'
        ? { type, sn: d.sn, modelId: d.modelId, vendorId: d.vendorId, at }
        : { type, via: 'wss' as const, sn: d.sn, modelId: d.modelId, vendorId: d.vendorId, at };
    void this.services.events.emit(e).catch((err: unknown) => this.deps.logger.error({ err, type }, 'lifecycle event failed'));
  }

  /** Records the first activation of a binding before the device hears of it (finding 9). */
  async recordActivated(deviceId: number): Promise<void> {
    await this.repo.recordActivated(deviceId, this.now());
  }

  /** Records the subscribed device's firmware version with the next state flush. */
  markOnline(conn: Connection, firmwareVersion: string | null): void {
    if (!conn.device || this.bySn.get(conn.device.snKey) !== conn) return;
    this.writer.markOnline(conn.device.id, conn.remoteAddr, conn.lastFrameAt, firmwareVersion);
    conn.lastSeenWritten = conn.lastFrameAt;
  }

  /**
   * P-RATE-3: whether signed attempts for this SN are refused for now. Answered from this
   * process's memory of the limiter's refusals, so a device that signs correctly never waits
   * for a cluster-wide counter.
   */
  attemptsRefused(snKey: string): boolean {
    const until = this.refusedSns.get(snKey);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.refusedSns.delete(snKey);
    return false;
  }

  /**
   * P-RATE-3: counts a failed signed attempt (unknown SN, bad signature) across the cluster and
   * answers `reply`, or RATE_LIMITED once the SN's budget for the minute is gone.
   */
  async failedAttempt(snKey: string, reply: CommandResult): Promise<CommandResult> {
    const rule = { name: 'gw-register', points: this.limits.registerPerMinute, windowSec: 60 };
    const r = await this.deps.limiter.consume(rule, snKey);
    if (r.allowed) return reply;
    this.refusedSns.set(snKey, Date.now() + r.retryAfterMs);
    return REFUSED_ATTEMPT;
  }

  /** P-RATE-4: per-SN limits shared by the cluster (deps.limiter). */
  async allowSn(rule: string, points: number, windowSec: number, snKey: string): Promise<boolean> {
    const r = await this.deps.limiter.consume({ name: rule, points, windowSec }, snKey);
    return r.allowed;
  }

  /**
   * P-SIG-5: a signed request (sn, nonce, timestamp) is accepted again on the connection that
   * first used it (firmware resends after 5 s) but not on another one within its window.
   */
  freshNonce(key: string, conn: Connection): boolean {
    const now = this.now();
    const seen = this.nonces.get(key);
    if (seen && seen.conn !== conn.id && seen.until > now) return false;
    this.nonces.set(key, { conn: conn.id, until: now + 2 * 300_000 });
    return true;
  }

  /** P-PUSH-5: durable commands waiting for this device, once, oldest first, after subscribe. */
  async deliverPending(conn: Connection): Promise<void> {
    const d = conn.device;
    if (!d || conn.closed) return;
    const rows = await this.services.pushes.commands.claimPending(d.id, this.now(), this.nodeId);
    let failed = 0;
    for (const r of rows) {
      const body = r.body === null ? undefined : (JSON.parse(r.body) as Record<string, unknown>);
      if (!this.sendPush(conn, r.cmd, body, r.id)) {
        // P-PUSH-7: claimed but never written (the socket went first); at most once, so it ends failed.
        this.deps.logger.warn({ sn: d.sn, command: r.id }, 'connection closed while delivering a pending command');
        await this.unsent(d.id, r.id);
        failed++;
        continue;
      }
      this.metrics.pushes.inc({ cmd: r.cmd, outcome: 'delivered_on_subscribe' });
    }
    if (rows.length > failed) this.announceCommands(d.sn);
    if (failed > 0) this.announceCommands(d.sn, 'command.failed');
  }

  /** P-PUSH-7: a command this process claimed and could not write ends failed (the cloud gave up; no errcode). */
  private async unsent(deviceId: number, commandId: string): Promise<void> {
    const cmd = await this.services.pushes.commands.fail(commandId, deviceId, this.now(), null, UNSENT_REASON);
    if (cmd !== null) this.metrics.pushes.inc({ cmd, outcome: 'failed' });
  }

  /** P-PUSH-7: a device's answer to a push runs beside the command queue: it has no reply to keep in order. */
  private onPushReply(conn: Connection, r: PushReply): void {
    pushReply
      .run(this, conn, r)
      .catch((err: unknown) =>
        this.deps.logger.error({ err, sn: conn.device?.sn, req: r.reqId.slice(0, 64) }, 'push reply failed'),
      );
  }

  /** Open device pages show command outcomes as they happen (binding/device-live.ts); only when there were any. */
  announceCommands(sn: string, type: 'command.delivered' | 'command.failed' = 'command.delivered'): void {
    announceDeviceChange(this.deps.bus, sn, type, this.now()).catch((err: unknown) =>
      this.deps.logger.warn({ err, sn }, 'device change announce failed'),
    );
  }

  // ---- pushes and cluster messages -----------------------------------------------------------

  /** Delivers a push to a device held here (P-PUSH-3, P-PUSH-5). */
  async deliver(msg: PushMessage): Promise<LocalOutcome> {
    const conn = this.bySn.get(msg.sn);
    if (!conn || conn.closed) return 'absent';
    if (!PRE_LOGIN_PUSHES.has(msg.cmd) && conn.state < ConnState.Subscribed) return 'not_subscribed';
    // The device this push is for (the connection may name another once the claim's await is over).
    const deviceId = conn.device!.id;
    if (msg.commandId) {
      const won = await this.services.pushes.commands.claim(msg.commandId, this.now(), this.nodeId);
      if (!won) return 'already_delivered';
      if (conn.closed) {
        // P-PUSH-7: claimed, then the socket went: it will not be resent, so it ends failed, not delivered.
        await this.unsent(deviceId, msg.commandId);
        this.announceCommands(msg.sn, 'command.failed');
        return 'absent';
      }
      this.announceCommands(msg.sn);
    }
    // A binding change makes any secret the connection remembers stale.
    if (PRE_LOGIN_PUSHES.has(msg.cmd)) conn.secret = null;
    if (!this.sendPush(conn, msg.cmd, msg.body, msg.reqId) && msg.commandId) {
      await this.unsent(deviceId, msg.commandId);
      this.announceCommands(msg.sn, 'command.failed');
    }
    // P-PUSH-2, P-ST-4: the secret died with the binding; the connection is no longer logged in.
    if (msg.cmd === 'push_unbind_corp' && conn.state > ConnState.Registered) this.setState(conn, ConnState.Registered);
    return 'delivered';
  }

  private async onBusMessage(m: unknown): Promise<void> {
    if (typeof m !== 'object' || m === null) return;
    const msg = m as { t?: unknown; sn?: unknown; cmd?: unknown };
    try {
      if (msg.t === 'push' && typeof msg.sn === 'string' && (PUSH_CMDS as readonly unknown[]).includes(msg.cmd)) {
        const outcome = await this.deliver(m as PushMessage);
        this.metrics.pushes.inc({ cmd: String(msg.cmd), outcome: `remote_${outcome}` });
      } else if (msg.t === 'kick' && typeof msg.sn === 'string') {
        const conn = this.bySn.get(msg.sn);
        if (!conn) return;
        // The device may have come back here since the kick was sent: only the holder stays.
        if ((await this.services.pushes.presence.lookup(msg.sn)) === this.nodeId) return;
        this.closeConn(conn, CloseCode.replaced, 'replaced by a newer connection', 'replaced');
      }
    } catch (err) {
      this.deps.logger.error({ err }, 'gateway bus message failed');
    }
  }

  // ---- liveness ------------------------------------------------------------------------------

  /**
   * P-LIVE-1/2: closes connections without a frame for BINDERY_DEVICE_OFFLINE_AFTER seconds,
   * then flushes state. Runs every few seconds; tests call it after moving the clock.
   */
  async sweep(): Promise<void> {
    const now = this.now();
    const idleMs = this.deps.config.deviceOfflineAfterSec * 1000;
    // Deleting the visited element while iterating a Set is safe: no copy of 100 000 entries.
    for (const c of this.all) {
      if (now - c.lastFrameAt >= idleMs) {
        c.ws.terminate();
        this.dispose(c, 'idle');
      }
    }
    for (const [k, v] of this.nonces) if (v.until <= now) this.nonces.delete(k);
    const t = Date.now();
    for (const [k, until] of this.refusedSns) if (until <= t) this.refusedSns.delete(k);
    await this.flush();
    if (++this.sweeps % MAINTENANCE_EVERY === 0) await this.maintain(now, idleMs);
  }

  /** P-LIVE-3: writes collected transitions and last-seen refreshes older than the resolution. */
  async flush(): Promise<void> {
    const touched: Connection[] = [];
    const touches: Array<{ id: number; seen: number }> = [];
    const res = this.limits.lastSeenResolutionMs;
    for (const [, c] of this.bySn) {
      if (c.lastFrameAt - c.lastSeenWritten >= res) {
        touched.push(c);
        touches.push({ id: c.device!.id, seen: c.lastFrameAt });
      }
    }
    await this.writer.flush(touches);
    for (let i = 0; i < touched.length; i++) touched[i]!.lastSeenWritten = touches[i]!.seen;
  }

  /** P-LIVE-4 and retention: stale online rows of dead nodes, old commands and error reports. */
  async maintain(now = this.now(), idleMs = this.deps.config.deviceOfflineAfterSec * 1000): Promise<void> {
    const staleBefore = now - idleMs - this.limits.lastSeenResolutionMs - 2 * this.limits.flushIntervalMs;
    await this.repo.sweepStaleOnline(staleBefore);
    await this.services.pushes.commands.purge(now - 7 * DAY_MS);
    await this.services.deviceLogs.purgeErrors(now - 90 * DAY_MS);
  }

  private intern(s: string): string {
    const have = this.interned.get(s);
    if (have !== undefined) return have;
    this.interned.set(s, s);
    return s;
  }
}

/** Socket listeners shared by every connection of a gateway: no closure per connection. */
function makeListeners(gw: Gateway) {
  return {
    message(this: WebSocket, data: RawData, isBinary: boolean) {
      gw.onFrame((this as GatewaySocket)[CONN], data as Buffer, isBinary);
    },
    close(this: WebSocket) {
      gw.onSocketClose((this as GatewaySocket)[CONN]);
    },
    error(this: WebSocket, err: Error) {
      gw.onSocketError((this as GatewaySocket)[CONN], err);
    },
  };
}

/** P-ST-3: which step is missing, as the code after which firmware restarts its flow (§A7). */
function missingStep(state: ConnState): CommandResult {
  if (state === ConnState.Anonymous) return { errcode: WsErr.NOT_REGISTERED, errmsg: 'not registered; send register first' };
  if (state === ConnState.Registered) return { errcode: WsErr.NOT_ACTIVE, errmsg: 'not active; send active first' };
  return { errcode: WsErr.NOT_LOGIN, errmsg: 'not logged in; send subscribe_corp first' };
}

/** The req_id of something that is not a valid request, when it has one. */
function reqIdOf(v: unknown): string | null {
  if (typeof v !== 'object' || v === null) return null;
  const h = (v as { headers?: unknown }).headers;
  if (typeof h !== 'object' || h === null) return null;
  const id = (h as { req_id?: unknown }).req_id;
  return typeof id === 'string' ? id : null;
}

function remoteAddress(req: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const xff = req.headers['x-forwarded-for'];
    const first = (Array.isArray(xff) ? xff[0] : xff)?.split(',')[0]?.trim();
    if (first) return first.slice(0, 64);
  }
  return (req.socket.remoteAddress ?? '').slice(0, 64);
}
