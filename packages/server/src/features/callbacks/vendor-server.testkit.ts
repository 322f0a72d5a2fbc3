import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
// The vendor side decrypts with an implementation the server does not share.
import { decrypt, encrypt, getSignature } from '@wecom/crypto';

/** One callback as the vendor saw it: checked and opened with @wecom/crypto. */
export interface ReceivedCallback {
  path: string;
  query: Record<string, string>;
  tousername: string;
  signatureOk: boolean;
  receiveId: string;
  message: Record<string, unknown>;
}

export type VendorBehaviour =
  | { kind: 'ok' }
  | { kind: 'encrypted-reply'; reply: Record<string, unknown> }
  | { kind: 'plain-reply'; reply: Record<string, unknown> }
  | { kind: 'http-error'; status: number }
  | { kind: 'hang'; ms: number }
  | { kind: 'close' };

/**
 * A vendor's callback server on 127.0.0.1: it verifies msg_signature and decrypts every body with
 * the npm @wecom/crypto package, records what it got, and answers as told (per request, so a test
 * can make it refuse, hang or be down).
 */
export class VendorServer {
  readonly received: ReceivedCallback[] = [];
  /** Requests that reached the server at all, including those it refused. */
  hits = 0;
  behave: (msg: ReceivedCallback) => VendorBehaviour | Promise<VendorBehaviour> = () => ({ kind: 'ok' });
  private server: Server | null = null;
  url = '';

  constructor(
    readonly token: string,
    readonly encodingAesKey: string,
  ) {}

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/callback`;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }

  messages(filter?: (m: Record<string, unknown>) => boolean): Record<string, unknown>[] {
    return this.received.map((r) => r.message).filter((m) => !filter || filter(m));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.hits++;
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const u = new URL(req.url ?? '/', 'http://x');
    const query = Object.fromEntries(u.searchParams.entries());
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { tousername: string; encrypt: string };
    const signatureOk = getSignature(this.token, query.timestamp!, query.nonce!, body.encrypt) === query.msg_signature;
    const opened = decrypt(this.encodingAesKey, body.encrypt);
    const got: ReceivedCallback = {
      path: u.pathname,
      query,
      tousername: body.tousername,
      signatureOk,
      receiveId: opened.id,
      message: JSON.parse(opened.message) as Record<string, unknown>,
    };
    const b = await this.behave(got);
    if (b.kind === 'close') {
      req.socket.destroy();
      return;
    }
    if (b.kind === 'http-error') {
      res.writeHead(b.status).end('down');
      return;
    }
    if (b.kind === 'hang') {
      await new Promise((r) => setTimeout(r, b.ms));
      // The caller gave up meanwhile: nothing was acknowledged.
      if (req.socket.destroyed) return;
    }
    // Only what the vendor acknowledged counts as received.
    this.received.push(got);
    if (b.kind === 'encrypted-reply') {
      const enc = encrypt(this.encodingAesKey, JSON.stringify(b.reply), opened.id);
      const timestamp = String(Math.floor(Date.now() / 1000));
      const nonce = 'n0nce';
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ encrypt: enc, msgsignature: getSignature(this.token, timestamp, nonce, enc), timestamp, nonce }));
      return;
    }
    if (b.kind === 'plain-reply') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(b.reply));
      return;
    }
    res.writeHead(200).end('success');
  }
}
