import type { Who } from './authz-matrix.fixture.js';
import type { Row } from './authz-matrix.rows.js';

/** The matrix, continued (issue 14 item 6): fleet dashboards — the vendor's (read), an organisation's super admins'. */
export const FLEET_STATS_ROWS: Row[] = [
  {
    op: 'GET /api/v1/vendors/{vendorId}/fleet-stats',
    allow: ['operator', 'vendorA'] as readonly Who[],
    req: ({ w }) => ({ url: `/api/v1/vendors/${w.vendorA}/fleet-stats?days=7` }),
  },
  {
    op: 'GET /api/v1/orgs/{orgId}/fleet-stats',
    allow: ['operator', 'superAdmin'] as readonly Who[],
    req: ({ w }) => ({ url: `/api/v1/orgs/${w.org1}/fleet-stats` }),
  },
];
