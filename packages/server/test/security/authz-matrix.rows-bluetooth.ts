import { USERS } from './authz-matrix.fixture.js';
import type { Row } from './authz-matrix.rows.js';

/**
 * The matrix, continued (issue 15 item 1): Bluetooth discovery. Only signed-in people identify
 * devices and hold tickets (vendor keys: 403). The requests carry a malformed proof and an unknown
 * ticket, so allowed principals get a coded 400 and nobody's lockout counter moves.
 */
export const BLUETOOTH_ROWS: Row[] = [
  {
    op: 'POST /api/v1/bluetooth/identity',
    allow: USERS,
    req: () => ({ url: '/api/v1/bluetooth/identity', payload: { proof: 'AQIDBA==' } }),
  },
  {
    op: 'GET /api/v1/bluetooth/tickets/{ticket}/status',
    allow: USERS,
    req: () => ({ url: '/api/v1/bluetooth/tickets/no-such-ticket/status' }),
  },
  { op: 'GET /hw/f', allow: 'public', req: () => ({ url: '/hw/f?t=bt' }) },
];
