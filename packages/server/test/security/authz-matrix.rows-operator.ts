import { type MerchantKeyMaterial, makeMerchantKey } from '../../src/features/merchant/merchant.fixtures.js';
import { SYSTEM_CLI } from '../../src/shared/principal.js';
import { EVERYONE_SIGNED_IN, type Who } from './authz-matrix.fixture.js';
import type { Req, Row } from './authz-matrix.rows.js';

/**
 * The matrix, continued: instance health (operators), vendor keys and merchants. Organisation 1 is the world's
 * merchant (w.mchid), so its super admin manages it too (merchant self-service, issue 12); its
 * device admin and members, and organisation 2's admin, do not.
 */
const OP: readonly Who[] = ['operator'];
const SUPER: readonly Who[] = ['operator', 'superAdmin'];
const VA: readonly Who[] = ['operator', 'vendorA'];
const json = (url: string, payload: unknown): Req => ({ url, payload });
const get = (url: string): Req => ({ url });
let merchantKey: MerchantKeyMaterial | undefined;

export const OPERATOR_ROWS: Row[] = [
  // ── instance health ─────────────────────────────────────────────────────
  { op: 'GET /api/v1/instance/health', allow: OP, req: () => get('/api/v1/instance/health') },
  { op: 'GET /api/v1/instance/warnings', allow: OP, req: () => get('/api/v1/instance/warnings') },

  // ── vendors' keys (the operator's vendor page): operators and the vendor itself ──
  { op: 'GET /api/v1/vendors/{vendorId}/keys', allow: VA, req: ({ w }) => get(`/api/v1/vendors/${w.vendorA}/keys`) },

  // ── merchants: operators, and the merchant organisation's super admins for their own ──
  { op: 'GET /api/v1/orgs/{orgId}/merchant', allow: SUPER, req: ({ w }) => get(`/api/v1/orgs/${w.org1}/merchant`) },
  {
    op: 'POST /api/v1/merchants',
    allow: OP,
    req: ({ w }) =>
      json('/api/v1/merchants', { name: 'Shop', mchid: String(1_800_000_000 + w.seq()), merchant_shortname: 'Shop' }),
  },
  { op: 'GET /api/v1/merchants', allow: OP, req: () => get('/api/v1/merchants') },
  // A public key that merchant clients verify replies with: any signed-in principal may fetch it.
  { op: 'GET /api/v1/merchants/platform-key', allow: EVERYONE_SIGNED_IN, req: () => get('/api/v1/merchants/platform-key') },
  { op: 'GET /api/v1/merchants/{mchid}', allow: SUPER, req: ({ w }) => get(`/api/v1/merchants/${w.mchid}`) },
  // The key mode; the short name is operators' only (merchant-self-service.test.ts).
  {
    op: 'PATCH /api/v1/merchants/{mchid}',
    allow: SUPER,
    req: ({ w }) => json(`/api/v1/merchants/${w.mchid}`, { key_mode: 'public_key' }),
  },
  {
    op: 'PUT /api/v1/merchants/{mchid}/apiv3-key',
    allow: SUPER,
    req: ({ w }) => json(`/api/v1/merchants/${w.mchid}/apiv3-key`, { apiv3_key: 'a'.repeat(32) }),
  },
  {
    op: 'POST /api/v1/merchants/{mchid}/sub-merchants',
    allow: SUPER,
    req: ({ w }) =>
      json(`/api/v1/merchants/${w.mchid}/sub-merchants`, {
        name: 'Sub',
        sub_mchid: String(1_700_000_000 + w.seq()),
        sub_merchant_shortname: 'Sub',
      }),
  },
  {
    op: 'PATCH /api/v1/merchants/{mchid}/sub-merchants/{subMchid}',
    allow: SUPER,
    req: ({ w }) => json(`/api/v1/merchants/${w.mchid}/sub-merchants/${w.subMchid}`, { sub_merchant_shortname: 'Sub' }),
  },
  {
    op: 'DELETE /api/v1/merchants/{mchid}/sub-merchants/{subMchid}',
    allow: SUPER,
    req: async ({ w }) => {
      const sub = String(1_600_000_000 + w.seq());
      await w.h.services.merchant.addSubMerchant(SYSTEM_CLI, w.mchid, {
        name: 'Gone',
        sub_mchid: sub,
        sub_merchant_shortname: 'Gone',
      });
      return get(`/api/v1/merchants/${w.mchid}/sub-merchants/${sub}`);
    },
  },
  // An empty key: allowed callers hear what is missing, the others never get that far.
  {
    op: 'POST /api/v1/merchants/{mchid}/keys',
    allow: SUPER,
    req: ({ w }) => json(`/api/v1/merchants/${w.mchid}/keys`, { name: 'k' }),
  },
  { op: 'GET /api/v1/merchants/{mchid}/keys', allow: SUPER, req: ({ w }) => get(`/api/v1/merchants/${w.mchid}/keys`) },
  {
    op: 'DELETE /api/v1/merchants/{mchid}/keys/{serialNo}',
    allow: SUPER,
    req: async ({ w }) => {
      // One RSA key for the run (making one takes a while); each call registers it under a new serial.
      merchantKey ??= makeMerchantKey(w.mchid);
      const serial = `AB${w.seq().toString(16).padStart(8, '0')}`.toUpperCase();
      await w.h.services.merchant.addKey(SYSTEM_CLI, w.mchid, { public_key_pem: merchantKey.publicKeyPem, serial_no: serial });
      return get(`/api/v1/merchants/${w.mchid}/keys/${serial}`);
    },
  },
  {
    op: 'POST /api/v1/merchants/{mchid}/fleet/reindex',
    allow: OP,
    req: ({ w }) => json(`/api/v1/merchants/${w.mchid}/fleet/reindex`, {}),
  },
  // sn.orgIn is organisation 1's, so it is in the merchant's list.
  {
    op: 'POST /api/v1/merchants/{mchid}/inspections/import',
    allow: SUPER,
    req: ({ w }) => ({
      url: `/api/v1/merchants/${w.mchid}/inspections/import`,
      payload: `device_sn,result,inspect_time\n${w.sn.orgIn},SUCCESS,2026-01-01T10:00:00.000+08:00\n`,
      headers: { 'content-type': 'text/csv' },
    }),
  },
];
