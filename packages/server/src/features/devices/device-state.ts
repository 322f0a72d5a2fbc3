import type { ExpressionBuilder } from 'kysely';
import type { Database } from '../../adapters/storage/schema.js';

/**
 * A device's life as its vendor sees it (issue 13, item 3), derived from the columns that record
 * each step, so it can never drift from them: registered (SN stored) → activated (it reached the
 * gateway or the cloud API) → bound (someone owns it) → online (bound and connected now).
 * An unbound device that is connected stays `activated`; the `online` filter finds it.
 * The database keeps the same rule as the `fleet_state` column (migration 026), for the list's filter.
 * (The legacy `devices.state` column is not read: it said "registered" forever.)
 */
export const DEVICE_STATES = ['registered', 'activated', 'bound', 'online'] as const;
export type DeviceState = (typeof DEVICE_STATES)[number];

export function deviceState(d: { owner_id: string | null; activated_at: number | null; online: number }): DeviceState {
  if (d.owner_id !== null) return d.online === 1 ? 'online' : 'bound';
  return d.activated_at !== null ? 'activated' : 'registered';
}

/**
 * The state filter of the fleet list: the `fleet_state` column, which the database computes by the
 * rule above (migration 026) and indexes with the vendor or model and the SN key.
 */
export function stateCondition(eb: ExpressionBuilder<Database, 'devices'>, state: DeviceState) {
  return eb('fleet_state', '=', state);
}
