import type { Who } from './authz-matrix.fixture.js';
import type { Row } from './authz-matrix.rows.js';

/**
 * The matrix, continued (issue 13 item 4): a batch's label PDFs on their own. Vendor A's people
 * follow VENDOR_ROUTE_CAPS ('batches': its admin and production, as for the zip; not engineers).
 */
const VA: readonly Who[] = ['operator', 'vendorA'];

export const VENDOR_GAPS_ROWS: Row[] = [
  {
    op: 'GET /api/v1/batches/{batchId}/labels-a4.pdf',
    allow: VA,
    req: ({ w }) => ({ url: `/api/v1/batches/${w.batchA}/labels-a4.pdf` }),
  },
  {
    op: 'GET /api/v1/batches/{batchId}/labels-roll.pdf',
    allow: VA,
    req: ({ w }) => ({ url: `/api/v1/batches/${w.batchA}/labels-roll.pdf` }),
  },
];
