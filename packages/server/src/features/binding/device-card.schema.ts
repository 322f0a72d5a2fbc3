import { DEVICE_ACTIONS } from '../organisations/permissions.js';

/**
 * The device card's JSON schema: one row of "my devices" and of an organisation's device list (which
 * adds the departments that see it). Declared on both routes so the console's types are generated
 * from it rather than kept by hand.
 */
const nullableString = { type: ['string', 'null'] } as const;

const cardProperties = {
  sn: { type: 'string' },
  model_id: { type: 'string' },
  model_name: { type: 'string' },
  remark_name: nullableString,
  default_name: { type: 'string' },
  online: { type: 'boolean' },
  last_seen_at: nullableString,
  firmware_version: nullableString,
  owner: {
    type: 'object',
    required: ['type', 'id', 'name'],
    properties: { type: { type: 'string', enum: ['org', 'user'] }, id: { type: 'string' }, name: { type: 'string' } },
  },
  bound_at: nullableString,
  bound_by: {
    type: ['object', 'null'],
    required: ['user_id', 'display_name'],
    properties: { user_id: { type: 'string' }, display_name: { type: 'string' } },
  },
  my_actions: { type: 'array', items: { type: 'string', enum: [...DEVICE_ACTIONS] } },
} as const;

const cardRequired = [
  'sn',
  'model_id',
  'model_name',
  'remark_name',
  'default_name',
  'online',
  'last_seen_at',
  'firmware_version',
  'owner',
  'bound_at',
  'bound_by',
  'my_actions',
] as const;

export const deviceCard = {
  type: 'object',
  // The card may grow; what is listed here is what the console may rely on.
  additionalProperties: true,
  required: cardRequired,
  properties: cardProperties,
} as const;

/** An organisation's card: the departments whose members see the device. */
export const orgDeviceCard = {
  ...deviceCard,
  required: [...cardRequired, 'departments'],
  properties: {
    ...cardProperties,
    departments: {
      type: 'array',
      items: { type: 'object', required: ['id', 'name'], properties: { id: { type: 'string' }, name: { type: 'string' } } },
    },
  },
} as const;

/** A page of cards and the cursor of the next one (null on the last). */
export function devicePageOf<T extends object>(card: T) {
  return {
    type: 'object',
    required: ['devices', 'next_cursor'],
    properties: { devices: { type: 'array', items: card }, next_cursor: nullableString },
  } as const;
}
