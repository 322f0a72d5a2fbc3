import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqliteBackend } from '../../testing/backends.js';
import { bearer, type Harness, startHarness } from '../../testing/harness.js';

/**
 * Issue 11, "a zip counts as downloaded though the client got half of it": a batch download is
 * counted only once the response finished (every byte handed to the client's connection), never
 * when the zip writer merely got its last byte into the server's buffers. Real HTTP over a
 * listening socket: the client controls exactly how much it reads.
 */

const HEAVY = { timeout: 300_000 };
const DEVICES = 2500; // a zip of ~9 MB: far more than the socket and stream buffers hold

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('batch download counting (issue 11)', () => {
  let h: Harness;
  let key: string;
  let batchId: string;
  let base: string;
  const serverSockets: Socket[] = [];
  /** When set, the next connection stalls once this many bytes were written to it. */
  let stallAt: number | null = null;
  /** Bytes the stalled connection held back. */
  let held = 0;

  beforeAll(async () => {
    h = await startHarness(sqliteBackend);
    const api = (url: string, token: string, payload: object) =>
      h.app.inject({ method: 'POST', url, headers: bearer(token), payload });
    const v = (await api('/api/v1/vendors', h.operatorToken, { name: 'Acme' })).json().vendor.id;
    key = (await api(`/api/v1/vendors/${v}/keys`, h.operatorToken, { name: 'factory' })).json().token;
    const m = (await api(`/api/v1/vendors/${v}/models`, key, { name: 'Lock', product_key: 'pkdl' })).json().model.model_id;
    batchId = (
      await api(`/api/v1/models/${m}/batches`, key, { count: DEVICES, pattern: { kind: 'counter', prefix: 'DL', width: 6 } })
    ).json().batch.id;
    h.app.server.on('connection', (s: Socket) => {
      serverSockets.push(s);
      const at = stallAt;
      stallAt = null;
      if (at === null) return;
      // From `at` on, writes are held back and reported as not accepted, as when the client stops
      // reading and the connection's buffers are full: http waits for a 'drain' that never comes.
      let written = 0;
      const write = s.write.bind(s) as (...args: unknown[]) => boolean;
      s.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
        if (written >= at) {
          held += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
          return false;
        }
        written += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
        return write(chunk, ...rest);
      }) as typeof s.write;
    });
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
  }, HEAVY.timeout);
  afterAll(async () => {
    for (const s of serverSockets) s.destroy();
    await h?.close();
  });

  const downloaded = async () =>
    (await h.app.inject({ method: 'GET', url: `/api/v1/batches/${batchId}`, headers: bearer(key) })).json().batch.counts
      .downloaded as number;

  /** Polls until `f` gives the same value for `quietMs` (the server has stopped moving). */
  async function settle(f: () => number, quietMs = 600): Promise<number> {
    let last = f();
    let since = Date.now();
    for (;;) {
      await sleep(50);
      const v = f();
      if (v !== last) {
        last = v;
        since = Date.now();
      } else if (Date.now() - since >= quietMs) return v;
    }
  }

  async function until(f: () => Promise<boolean>): Promise<void> {
    while (!(await f())) await sleep(50);
  }

  /** Starts a download whose body the test reads by hand; resolves with the response, paused. */
  function open(): Promise<{ res: http.IncomingMessage; req: http.ClientRequest; server: Socket }> {
    return new Promise((resolve, reject) => {
      const before = serverSockets.length;
      const req = http.get(`${base}/api/v1/batches/${batchId}/download`, { headers: bearer(key), agent: false }, (res) => {
        res.pause();
        resolve({ res, req, server: serverSockets[before]! });
      });
      req.on('error', reject);
    });
  }

  async function full(): Promise<{ body: number; wire: number }> {
    const { res, server } = await open();
    let body = 0;
    res.on('data', (c: Buffer) => {
      body += c.length;
    });
    res.resume();
    await new Promise<void>((resolve) => res.on('end', resolve));
    await new Promise<void>((resolve) => (server.destroyed ? resolve() : server.once('close', resolve)));
    return { body, wire: server.bytesWritten };
  }

  it(
    'a client that goes away before the last bytes is not counted, even when the zip was completely written into the server buffers',
    HEAVY,
    async () => {
      // A complete download counts once, after the response ended.
      expect(await downloaded()).toBe(0);
      const whole = await full();
      expect(whole.body).toBeGreaterThan(4_000_000);
      await until(async () => (await downloaded()) === 1);

      // Now a connection that stalls ~400 KB before the end, as when the client stops reading.
      // That tail fits in the route's stream buffers, so the zip writer has ended its output; the
      // response has not finished, and then the client goes away.
      stallAt = whole.wire - 400 * 1024;
      const { res, req, server } = await open();
      res.resume();
      await until(async () => held > 0);
      await settle(() => held);
      expect(server.bytesWritten, 'the response has not been handed over whole').toBeLessThan(whole.wire);
      // The old rule counted here: the zip writer's output had ended.
      expect(await downloaded()).toBe(1);

      req.destroy();
      await new Promise<void>((resolve) => (server.destroyed ? resolve() : server.once('close', resolve)));
      await sleep(300);
      expect(await downloaded()).toBe(1);

      // And the next complete download counts again.
      await full();
      await until(async () => (await downloaded()) === 2);
      await sleep(300);
      expect(await downloaded()).toBe(2);
    },
  );
});
