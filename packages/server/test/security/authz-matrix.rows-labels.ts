import type { Who } from './authz-matrix.fixture.js';
import type { Row } from './authz-matrix.rows.js';

/** The matrix, continued (issue 13 item 4): a label batch's preview. */
const VA: readonly Who[] = ['operator', 'vendorA'];

export const LABELS_ROWS: Row[] = [
  {
    op: 'GET /api/v1/batches/{batchId}/preview.svg',
    allow: VA,
    req: ({ w }) => ({ url: `/api/v1/batches/${w.batchA}/preview.svg` }),
  },
];
