import type { AddressInfo } from 'node:net';
import { decodeBinaryRequest, encodeBinaryReply, parseFrameText } from '@bindery/protocol';
import { type WebSocket, WebSocketServer } from 'ws';

/** A frame the device sent: text frames parsed (nonce/timestamp kept as their wire text), binary ones decoded. */
export interface PeerFrame {
  cmd: string;
  reqId: string;
  body?: Record<string, unknown>;
  /** The exact text on the wire, for checks on encoding. */
  raw: string;
  binary?: { data: Buffer };
  socket: WebSocket;
}

/**
 * A real `ws` server on 127.0.0.1 that a test scripts frame by frame: it records what the device
 * sends and answers only what the test tells it to. Used for the SDK's own tests, where the
 * device runs on ManualTime and every answer is under the test's control.
 */
export class ScriptedPeer {
  private readonly wss: WebSocketServer;
  private readonly frames: PeerFrame[] = [];
  private frameWaiters: Array<(f: PeerFrame) => void> = [];
  private readonly conns: WebSocket[] = [];
  private connWaiters: Array<(ws: WebSocket) => void> = [];
  /** When set, every new connection is closed at once (a server refusing service). */
  refuse = false;
  connections = 0;

  private constructor(wss: WebSocketServer) {
    this.wss = wss;
    wss.on('connection', (ws) => {
      this.connections++;
      if (this.refuse) {
        ws.close(1013, 'try again later');
        return;
      }
      ws.on('message', (data, isBinary) => this.onMessage(ws, data as Buffer, isBinary));
      const w = this.connWaiters.shift();
      if (w) w(ws);
      else this.conns.push(ws);
    });
  }

  static async start(): Promise<ScriptedPeer> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    return new ScriptedPeer(wss);
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.wss.address() as AddressInfo).port}/`;
  }

  private onMessage(ws: WebSocket, data: Buffer, isBinary: boolean): void {
    let f: PeerFrame;
    if (isBinary) {
      const r = decodeBinaryRequest(data);
      f = { cmd: r.cmd, reqId: r.reqId, raw: '', binary: { data: r.data }, socket: ws };
    } else {
      const raw = data.toString('utf8');
      const j = parseFrameText(raw) as { cmd: string; headers: { req_id: string }; body?: Record<string, unknown> };
      f = { cmd: j.cmd, reqId: j.headers.req_id, raw, socket: ws, ...(j.body ? { body: j.body } : {}) };
    }
    const w = this.frameWaiters.shift();
    if (w) w(f);
    else this.frames.push(f);
  }

  /** The next connection the device opens. */
  nextConnection(): Promise<WebSocket> {
    const c = this.conns.shift();
    if (c) return Promise.resolve(c);
    return new Promise((r) => this.connWaiters.push(r));
  }

  /** The next frame the device sends. */
  next(): Promise<PeerFrame> {
    const f = this.frames.shift();
    if (f) return Promise.resolve(f);
    return new Promise((r) => this.frameWaiters.push(r));
  }

  /** The next frame, which must be `cmd`. */
  async expect(cmd: string): Promise<PeerFrame> {
    const f = await this.next();
    if (f.cmd !== cmd) throw new Error(`expected ${cmd}, the device sent ${f.cmd} (${f.raw})`);
    return f;
  }

  /** The next frame `cmd` sent on `ws`, skipping frames of other connections and heartbeats. */
  async expectOn(ws: WebSocket, cmd: string): Promise<PeerFrame> {
    for (;;) {
      const f = await this.next();
      if (f.socket !== ws || (f.cmd === 'ping' && cmd !== 'ping')) continue;
      if (f.cmd !== cmd) throw new Error(`expected ${cmd}, the device sent ${f.cmd} (${f.raw})`);
      return f;
    }
  }

  /** Frames received and not yet taken. */
  buffered(): readonly PeerFrame[] {
    return this.frames;
  }

  reply(to: PeerFrame, errcode = 0, body?: Record<string, unknown>, errmsg = errcode === 0 ? 'ok' : 'error'): void {
    to.socket.send(JSON.stringify({ headers: { req_id: to.reqId }, ...(body ? { body } : {}), errcode, errmsg }));
  }

  replyBinary(to: PeerFrame, data: Buffer): void {
    to.socket.send(encodeBinaryReply(to.reqId, data), { binary: true });
  }

  push(ws: WebSocket, cmd: string, body?: Record<string, unknown>, reqId = `push-${cmd}`): void {
    ws.send(JSON.stringify({ cmd, headers: { req_id: reqId }, ...(body ? { body } : {}) }));
  }

  sendRaw(ws: WebSocket, data: string | Buffer): void {
    ws.send(data, { binary: typeof data !== 'string' });
  }

  async close(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    await new Promise<void>((r) => this.wss.close(() => r()));
  }
}
