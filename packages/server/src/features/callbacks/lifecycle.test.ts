import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { type GatewayHarness, startGatewayHarness } from '../gateway/gateway.testkit.js';
import { subscribeDevice, WireDevice } from '../gateway/wire-device.js';

/**
 * Lifecycle webhooks from their real sources: registration, binding, a WSS device's connect,
 * `active`, `error_report`, `upload_log`-less disconnect — emitted on the gateway process without
 * holding up the device's frames.
 */
describe.each(storageBackends())('lifecycle webhooks from the gateway on $backend.name', ({ backend, skip }) => {
  let g: GatewayHarness;
  let server: Server;
  let url = '';
  const got: Array<{ type: string; data: { sn: string } }> = [];

  beforeAll(async () => {
    if (skip) return;
    // The webhook receiver listens on 127.0.0.1, which the outbound policy refuses unless allowed.
    g = await startGatewayHarness(backend, { config: { BINDERY_OUTBOUND_ALLOW: '127.0.0.1/32' } });
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        got.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    await g?.close();
  });

  /** Fire-and-forget emitters finish on their own time; deliver until the expected events arrived. */
  async function deliverUntil(sn: string, n: number): Promise<string[]> {
    for (let i = 0; i < 500; i++) {
      await g.h.services.callbacks.outbox.runOnce();
      const mine = got.filter((e) => e.data.sn === sn);
      if (mine.length >= n) return mine.map((e) => e.type);
      await new Promise((r) => setTimeout(r, 20));
    }
    return got.filter((e) => e.data.sn === sn).map((e) => e.type);
  }

  it.skipIf(skip)('registered, bound, online, activated, error_report and offline reach the vendor webhook', async () => {
    await g.h.services.callbacks.createWebhook(SYSTEM_CLI, { type: 'vendor', id: g.vendorId }, { url });
    const sn = 'LIFE0001';
    const secretNo = await g.addDevice(sn);
    await g.bind(sn);
    const d = await WireDevice.connect(g.url);
    await subscribeDevice(d, sn, secretNo, g.nowSec());
    expect((await d.request('error_report', { errcode: 17, errmsg: 'jammed' })).errcode).toBe(0);
    await d.close();
    const types = await deliverUntil(sn, 6);
    expect(types.slice(0, 2)).toEqual(['device.registered', 'device.bound']);
    expect([...types].sort()).toEqual(
      ['device.activated', 'device.bound', 'device.error_report', 'device.offline', 'device.online', 'device.registered'].sort(),
    );
    const report = got.find((e) => e.type === 'device.error_report' && e.data.sn === sn)!;
    expect(report.data).toMatchObject({ sn, model_id: g.modelId, vendor_id: g.vendorId, report_id: expect.any(String) });
    expect(got.find((e) => e.type === 'device.online' && e.data.sn === sn)!.data).toMatchObject({ via: 'wss' });
  });
});
