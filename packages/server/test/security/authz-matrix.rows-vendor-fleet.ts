import { SYSTEM_CLI } from '../../src/shared/principal.js';
import type { Who } from './authz-matrix.fixture.js';
import type { Ctx, Req, Row } from './authz-matrix.rows.js';

/** The matrix, continued (issue 13, items 2–3): the vendor's fleet in bulk and archived models. */
const VA: readonly Who[] = ['operator', 'vendorA'];
const json = (url: string, payload: unknown): Req => ({ url, payload });
const get = (url: string): Req => ({ url });
/** A model of vendor A made for one request, so archiving it changes no other row's world. */
const freshModel = async (c: Ctx) =>
  (await c.w.h.services.models.create(SYSTEM_CLI, c.w.vendorA, { name: `Archive ${c.w.next()}` })).model.model_id;

export const VENDOR_FLEET_ROWS: Row[] = [
  {
    op: 'POST /api/v1/models/{modelId}/devices/bulk',
    allow: VA,
    req: ({ w }) => json(`/api/v1/models/${w.modelA}/devices/bulk`, { sns: [`MB${w.next()}`, `MB${w.next()}`] }),
  },
  {
    op: 'GET /api/v1/vendors/{vendorId}/devices/qr-sheet',
    allow: VA,
    req: ({ w }) => get(`/api/v1/vendors/${w.vendorA}/devices/qr-sheet?sns=${w.sn.orgIn}`),
  },
  {
    op: 'PUT /api/v1/models/{modelId}/archived',
    allow: VA,
    req: async (c) => json(`/api/v1/models/${await freshModel(c)}/archived`, { archived: true }),
  },
];
