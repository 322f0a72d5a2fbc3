import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SYSTEM_CLI } from '../../shared/principal.js';
import type { TestBackend } from '../../testing/backends.js';
import { type Harness, startHarness } from '../../testing/harness.js';

export interface GatewayHarness {
  h: Harness;
  /** ws://127.0.0.1:<port> */
  url: string;
  dataDir: string;
  vendorId: string;
  modelId: string;
  /** A shared-seed model, for get_secret_no. */
  seedModelId: string;
  seedSecretNo: string;
  orgId: string;
  /** Registers an SN under the plain model (or the seed model) and returns its SecretNo. */
  addDevice(sn: string, opts?: { seed?: boolean }): Promise<string>;
  bind(sn: string): Promise<void>;
  unbind(sn: string): Promise<void>;
  nowSec(): number;
  close(): Promise<void>;
}

/**
 * A real app listening on 127.0.0.1 with its gateway, on a real database, with a vendor, two
 * models and an organisation to bind to. Only time is injected (h.clock).
 */
export async function startGatewayHarness(
  backend: TestBackend,
  opts: { config?: Record<string, string>; realClock?: boolean } = {},
): Promise<GatewayHarness> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'bindery-gw-'));
  const h = await startHarness(backend, {
    config: { BINDERY_DATA_DIR: dataDir, ...opts.config },
    realClock: opts.realClock,
  });
  await h.app.listen({ port: 0, host: '127.0.0.1' });
  const port = (h.app.server.address() as AddressInfo).port;
  const s = h.services;
  const vendor = await s.vendors.create(SYSTEM_CLI, { name: 'Gateway Test Vendor' });
  const { model } = await s.models.create(SYSTEM_CLI, vendor.id, { name: 'Face Terminal' });
  const seeded = await s.models.create(SYSTEM_CLI, vendor.id, { name: 'Seeded Terminal', shared_seed: true });
  const orgId = `org_gw${Date.now().toString(36)}`;
  await h.deps.db.kysely
    .insertInto('organisations')
    .values({ id: orgId, name: 'Acme Corp', parent_id: null, mchid: null, merchant_shortname: null, created_at: 0 })
    .execute();
  return {
    h,
    url: `ws://127.0.0.1:${port}`,
    dataDir,
    vendorId: vendor.id,
    modelId: model.model_id,
    seedModelId: seeded.model.model_id,
    seedSecretNo: seeded.seed_secret_no!,
    orgId,
    async addDevice(sn, o = {}) {
      const r = await s.devices.register(SYSTEM_CLI, o.seed ? seeded.model.model_id : model.model_id, sn);
      return r.secret_no;
    },
    async bind(sn) {
      await s.binding.bind(SYSTEM_CLI, sn, { type: 'org', id: orgId });
    },
    async unbind(sn) {
      await s.binding.unbind(SYSTEM_CLI, sn);
    },
    nowSec: () => Math.floor(h.deps.clock.now() / 1000),
    async close() {
      await h.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
