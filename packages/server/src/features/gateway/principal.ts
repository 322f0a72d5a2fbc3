import type { Principal } from '../../shared/principal.js';

/**
 * The gateway acting for a device that proved who it is (signature, active_code or secret).
 * Services it calls treat it as the system.
 */
export const GATEWAY_PRINCIPAL: Principal = { kind: 'system', name: 'gateway' };
