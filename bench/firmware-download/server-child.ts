/**
 * The Bindery side of bench:firmware-download, in its own process (as in production, the load
 * generator does not share its event loop): a real app on SQLite with one uploaded image, listening
 * on 127.0.0.1. Tells the parent the port, a device's signed link and where the stored file lies.
 */
import { createReadStream } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { SYSTEM_CLI } from '../../packages/server/src/shared/principal.js';
import { sqliteBackend } from '../../packages/server/src/testing/backends.js';
import { startHarness } from '../../packages/server/src/testing/harness.js';

const dataDir = process.env.BENCH_DATA_DIR!;
const image = process.env.BENCH_IMAGE!;
const h = await startHarness(sqliteBackend, { realClock: true, config: { BINDERY_DATA_DIR: dataDir } });
const s = h.services;
const vendor = await s.vendors.create(SYSTEM_CLI, { name: 'Bench firmware' });
const { model } = await s.models.create(SYSTEM_CLI, vendor.id, { name: 'Bench terminal', product_key: 'pkFwBench' });
const fw = await s.firmware.publishUpload(SYSTEM_CLI, model.model_id, { version: '9.9.9' }, createReadStream(image));
const info = await s.firmware.currentInfo(SYSTEM_CLI, model.model_id, 'BENCH00001');
await h.app.listen({ port: 0, host: '127.0.0.1' });
const port = (h.app.server.address() as AddressInfo).port;
const link = new URL(info!.download_url);
process.send!({
  t: 'ready',
  port,
  path: `${link.pathname}${link.search}`,
  md5: fw.md5sum,
  stored: path.join(dataDir, 'firmware', `${fw.id}.bin`),
  storedName: `${fw.id}.bin`,
});
process.on('message', async (m: { t: string }) => {
  if (m.t === 'stop') {
    await h.close();
    process.exit(0);
  }
});
