import type { ExpressionBuilder } from 'kysely';
import type { Database } from '../../adapters/storage/schema.js';

/**
 * A device's life as its vendor sees it (issue 13, item 3), derived from the columns that record
 * each step, so it can never drift from them: registered (SN stored) → activated (it reached the
 * gateway or the cloud API) → bound (someone owns it) → online (bound and connected now).
 * An unbound device that is connected stays `activated`; the `online` filter finds it.
 * (The legacy `devices.state` column is not read: it said "registered" forever.)
 */
export const DEVICE_STATES = ['registered', 'activated', 'bound', 'online'] as const;
export type DeviceState = (typeof DEVICE_STATES)[number];

export function deviceState(d: { owner_id: string | null; activated_at: number | null; online: number }): DeviceState {
  if (d.owner_id !== null) return d.online === 1 ? 'online' : 'bound';
  return d.activated_at !== null ? 'activated' : 'registered';
}

/** The same rule as a WHERE condition, for the fleet list's state filter. */
export function stateCondition(eb: ExpressionBuilder<Database, 'devices'>, state: DeviceState) {
  switch (state) {
    case 'registered':
      return eb.and([eb('owner_id', 'is', null), eb('activated_at', 'is', null)]);
    case 'activated':
      return eb.and([eb('owner_id', 'is', null), eb('activated_at', 'is not', null)]);
    case 'bound':
      return eb.and([eb('owner_id', 'is not', null), eb('online', '=', 0)]);
    case 'online':
      return eb.and([eb('owner_id', 'is not', null), eb('online', '=', 1)]);
  }
}
