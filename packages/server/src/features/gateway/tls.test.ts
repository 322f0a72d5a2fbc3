import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { storageBackends } from '../../testing/backends.js';
import { makeCert } from '../../testing/tls-cert.js';
import { type GatewayHarness, startGatewayHarness } from './gateway.testkit.js';

const certDir = mkdtempSync(path.join(tmpdir(), 'bindery-tls-'));
const pair = makeCert(certDir);
if (!pair) console.warn('[bindery tests] TLS gateway suite skipped: no openssl to make a certificate');
afterAll(() => rmSync(certDir, { recursive: true, force: true }));

/** P-F-1: with BINDERY_TLS_CERT/KEY the same port serves HTTPS and the gateway over WSS. */
describe.each(storageBackends())('gateway over TLS on $backend.name', ({ backend, skip: dbSkip }) => {
  const skip = dbSkip ?? (pair ? undefined : 'no openssl');
  let g: GatewayHarness;
  beforeAll(async () => {
    if (skip) return;
    g = await startGatewayHarness(backend, { config: { BINDERY_TLS_CERT: pair!.cert, BINDERY_TLS_KEY: pair!.key } });
  });
  afterAll(async () => {
    await g?.close();
  });

  it.skipIf(skip)('answers over wss:// and refuses plain ws:// on the same port', async () => {
    const wss = g.url.replace('ws://', 'wss://');
    const ws = new WebSocket(`${wss}/`, 'protocol', { rejectUnauthorized: false });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const reply = new Promise<string>((resolve) => ws.once('message', (d) => resolve(d.toString())));
    ws.send('{"cmd":"ping","headers":{"req_id":"tls"}}');
    expect(await reply).toBe('{"headers":{"req_id":"tls"},"errcode":0,"errmsg":"ok"}');
    ws.close();

    const plain = new WebSocket(`${g.url}/`);
    const failed = await new Promise<boolean>((resolve) => {
      plain.once('open', () => resolve(false));
      plain.once('error', () => resolve(true));
    });
    expect(failed).toBe(true);
  });
});
