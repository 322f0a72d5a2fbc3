import type { Who } from './authz-matrix.fixture.js';
import type { Ctx, Row } from './authz-matrix.rows.js';

/** The matrix, continued (issue 13 items 6 and 7): the pairing station; the versions a model's fleet runs. */
const VA: readonly Who[] = ['operator', 'vendorA'];
/** One idempotency key per principal and run, so the effect can look for its log row. */
const keyOf = (c: Ctx) => {
  c.state.t ??= String(Date.now());
  return `matrix-${c.who}-${c.state.t}`;
};

export const PAIRING_ROWS: Row[] = [
  {
    op: 'POST /api/v1/vendors/{vendorId}/pairing/pairs',
    allow: VA,
    // An unknown label: allowed principals get a refusal (200) and no device changes.
    req: (c) => ({
      url: `/api/v1/vendors/${c.w.vendorA}/pairing/pairs`,
      payload: {
        idempotency_key: keyOf(c),
        shift_id: 'matrix',
        station: 'matrix',
        model_id: c.w.modelA,
        device_key: '860000000009999',
        label: 'NOSUCHSN0001',
      },
    }),
    effect: async (c) => {
      const row = await c.w.h.deps.db.kysely
        .selectFrom('pairings')
        .select('outcome')
        .where('idem_key', '=', keyOf(c))
        .executeTakeFirst();
      if (VA.includes(c.who) && row?.outcome !== 'refused') return 'allowed, but no refusal was logged';
      if (!VA.includes(c.who) && row) return 'refused, but the pair was logged';
      return null;
    },
  },
  {
    op: 'GET /api/v1/models/{modelId}/firmware/fleet',
    allow: VA,
    req: ({ w }) => ({ url: `/api/v1/models/${w.modelA}/firmware/fleet` }),
  },
  {
    op: 'GET /api/v1/vendors/{vendorId}/pairing/shifts/{shiftId}',
    allow: VA,
    req: ({ w }) => ({ url: `/api/v1/vendors/${w.vendorA}/pairing/shifts/matrix` }),
  },
  {
    op: 'GET /api/v1/vendors/{vendorId}/pairing/shifts/{shiftId}/relations.csv',
    allow: VA,
    req: ({ w }) => ({ url: `/api/v1/vendors/${w.vendorA}/pairing/shifts/matrix/relations.csv?lang=en` }),
  },
];
