import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import { type CheckedTarget, type OutboundPolicy, OutboundRefusedError, OutboundUnresolvedError } from './policy.js';

/**
 * Why a request failed, in words safe for a delivery log that vendors and organisation admins
 * read: a refusal with its reason, the status, or one of a few fixed phrases. Socket error texts
 * (ECONNREFUSED 10.0.0.5:6379, certificate names) never leave this module.
 */
export class OutboundError extends Error {
  constructor(
    readonly kind: 'refused' | 'unresolved' | 'timeout' | 'connection',
    message: string,
  ) {
    super(message);
    this.name = 'OutboundError';
  }
}

export const OUTBOUND_REFUSED = 'OUTBOUND_URL_REFUSED';

export interface OutboundRequest {
  method: 'POST' | 'GET';
  headers?: Record<string, string>;
  body?: string;
  /** For the whole exchange: connect, send, and read the reply. */
  timeoutMs: number;
  /** Reply bytes read at most; the rest is dropped. */
  maxBytes: number;
}

export interface OutboundReply {
  status: number;
  body: string;
  /** The address connected to: the one the policy checked. */
  address: string;
}

/** A lookup that answers with the checked address only, so the connection cannot be re-pointed by DNS. */
function pinnedLookup(t: CheckedTarget): LookupFunction {
  return (_hostname, options, cb) => {
    if (options.all) (cb as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [t]);
    else cb(null, t.address, t.family);
  };
}

/**
 * Sends one request to a URL the policy permits, connecting to the address it checked (no second
 * resolution, so no DNS rebinding between check and connect). Redirects are not followed; a fresh
 * connection is used every time (a pooled socket would skip the check). Throws OutboundError.
 */
export async function outboundRequest(policy: OutboundPolicy, rawUrl: string, r: OutboundRequest): Promise<OutboundReply> {
  let target: CheckedTarget;
  try {
    target = await policy.check(rawUrl);
  } catch (e) {
    if (e instanceof OutboundRefusedError) throw new OutboundError('refused', `${OUTBOUND_REFUSED}: ${e.reason}`);
    if (e instanceof OutboundUnresolvedError) throw new OutboundError('unresolved', e.message);
    throw new OutboundError('connection', 'connection failed');
  }
  const send = target.url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<OutboundReply>((resolve, reject) => {
    let settled = false;
    const done = (err: OutboundError | null, reply?: OutboundReply) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(reply!);
    };
    const req = send(
      target.url,
      {
        method: r.method,
        headers: { ...r.headers, ...(r.body !== undefined ? { 'content-length': String(Buffer.byteLength(r.body)) } : {}) },
        agent: false,
        lookup: pinnedLookup(target),
        // The TLS name is the URL's host (not the address), as https.request does by default.
      },
      (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          if (size >= r.maxBytes) return;
          chunks.push(c.subarray(0, r.maxBytes - size));
          size += Math.min(c.length, r.maxBytes - size);
          if (size >= r.maxBytes) {
            done(null, { status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), address: target.address });
            res.destroy();
          }
        });
        res.on('end', () =>
          done(null, { status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), address: target.address }),
        );
        res.on('error', () => done(new OutboundError('connection', 'connection failed')));
      },
    );
    const timer = setTimeout(() => {
      done(new OutboundError('timeout', 'timed out'));
      req.destroy();
    }, r.timeoutMs);
    req.on('error', () => done(new OutboundError('connection', 'connection failed')));
    req.end(r.body);
  });
}
