import { randomBytes } from 'node:crypto';
import { signRegister } from '@bindery/protocol';
import WebSocket from 'ws';

/** One frame as the device received it: the exact text, its JSON, or the binary bytes. */
export interface Received {
  text?: string;
  json?: Record<string, unknown>;
  binary?: Buffer;
}

export interface Reply {
  headers?: { req_id: string };
  body?: Record<string, unknown>;
  errcode: number;
  errmsg: string;
  cmd?: string;
}

/**
 * A device made of nothing but a raw `ws` socket, for wire tests: it sends exactly what a test
 * writes and keeps exactly what the gateway sent, in order. Replies (frames without `cmd`, and
 * binary frames) are read in arrival order; pushes (frames with `cmd`) are collected apart.
 */
export class WireDevice {
  readonly received: Received[] = [];
  readonly pushes: Array<Record<string, unknown>> = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private readonly replies: Received[] = [];
  private waiters: Array<(r: Received | null) => void> = [];
  private pushWaiters: Array<{ cmd: string; resolve: (p: Record<string, unknown>) => void }> = [];
  private isClosed = false;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const r: Received = isBinary ? { binary: Buffer.from(data) } : { text: data.toString('utf8') };
      if (r.text !== undefined) r.json = JSON.parse(r.text) as Record<string, unknown>;
      this.received.push(r);
      if (r.json && typeof r.json.cmd === 'string') {
        this.pushes.push(r.json);
        for (const w of [...this.pushWaiters]) {
          if (w.cmd === r.json.cmd) {
            this.pushWaiters.splice(this.pushWaiters.indexOf(w), 1);
            w.resolve(r.json);
            break;
          }
        }
        return;
      }
      const w = this.waiters.shift();
      if (w) w(r);
      else this.replies.push(r);
    });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.isClosed = true;
        for (const w of this.waiters.splice(0)) w(null);
        resolve({ code, reason: reason.toString() });
      });
    });
    ws.on('error', () => {});
  }

  static async connect(url: string, protocols?: string | string[]): Promise<WireDevice> {
    const ws = new WebSocket(url, protocols);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new WireDevice(ws);
  }

  get isOpen(): boolean {
    return !this.isClosed && this.ws.readyState === WebSocket.OPEN;
  }

  sendText(text: string): void {
    this.ws.send(text);
  }

  sendJson(frame: unknown): void {
    this.ws.send(JSON.stringify(frame));
  }

  sendBinary(buf: Buffer): void {
    this.ws.send(buf, { binary: true });
  }

  /** The next reply (or binary reply) in arrival order; null when the socket closed first. */
  nextReply(): Promise<Received | null> {
    const r = this.replies.shift();
    if (r) return Promise.resolve(r);
    if (this.isClosed) return Promise.resolve(null);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Sends a request and returns its JSON reply. */
  async request(cmd: string, body?: Record<string, unknown>, reqId = `req_${cmd}`): Promise<Reply> {
    this.sendJson(body === undefined ? { cmd, headers: { req_id: reqId } } : { cmd, headers: { req_id: reqId }, body });
    const r = await this.nextReply();
    if (!r) throw new Error(`socket closed before the reply to ${cmd}`);
    if (!r.json) throw new Error(`binary reply to ${cmd}`);
    return r.json as unknown as Reply;
  }

  /** Resolves with the first push of `cmd` (already received or still to come). */
  push(cmd: string): Promise<Record<string, unknown>> {
    const have = this.pushes.find((p) => p.cmd === cmd);
    if (have) return Promise.resolve(have);
    return new Promise((resolve) => this.pushWaiters.push({ cmd, resolve }));
  }

  close(): Promise<{ code: number; reason: string }> {
    if (!this.isClosed) this.ws.close(1000, 'test done');
    return this.closed;
  }
}

/** A signed register body (P-SIG-1) for `sn` at `nowSec`, with the nonce as a digit string. */
export function registerBody(sn: string, secretNo: string, nowSec: number, nonce = randomNonce()): Record<string, unknown> {
  const timestamp = String(nowSec);
  return { sn, nonce, timestamp, device_signature: signRegister({ sn, timestamp, nonce }, secretNo) };
}

export function randomNonce(): string {
  return BigInt(`0x${randomBytes(8).toString('hex')}`).toString();
}

/** The device side of a flow step: register, then active until `secret`, then subscribe. */
export async function subscribeDevice(
  d: WireDevice,
  sn: string,
  secretNo: string,
  nowSec: number,
  firmwareVersion = '1.0.0',
): Promise<{ activeCode: string; secret: string }> {
  const reg = await d.request('register', registerBody(sn, secretNo, nowSec));
  if (reg.errcode !== 0) throw new Error(`register failed: ${JSON.stringify(reg)}`);
  const activeCode = reg.body!.active_code as string;
  const act = await d.request('active', { active_code: activeCode });
  if (act.errcode !== 0) throw new Error(`active failed: ${JSON.stringify(act)}`);
  const secret = act.body!.secret as string;
  const sub = await d.request('subscribe_corp', { secret, firmware_version: firmwareVersion });
  if (sub.errcode !== 0) throw new Error(`subscribe failed: ${JSON.stringify(sub)}`);
  return { activeCode, secret };
}
