/**
 * Direct-access error codes. The 6000xx values in the first block are the ones real firmware
 * reacts to (§A7); the second block is Bindery's own, taken from unused 6001xx numbers for the
 * cases the reference leaves open. docs/protocol.md lists each with its meaning.
 */
export const WsErr = {
  OK: 0,
  REGISTERED: 600002,
  INVALID_ACTIVE_CODE: 600003,
  NOT_AUTHORIZED: 600004,
  KEEP_ALIVE_REGISTERED: 600012,
  NOT_REGISTERED: 600014,
  NOT_ACTIVE: 600016,
  NOT_LOGIN: 600020,
  SUBSCRIBED: 600045,
  ACTIVED: 600053,
  HAS_SUBSCRIBED: 600054,
  // Bindery's own
  BAD_SIGNATURE: 600100,
  STALE_TIMESTAMP: 600101,
  UNKNOWN_SN: 600102,
  NOT_YET_BOUND: 600103,
  RATE_LIMITED: 600104,
  MALFORMED_FRAME: 600105,
  UNKNOWN_COMMAND: 600106,
  SECRET_NO_REFUSED: 600107,
  PAYLOAD_TOO_LARGE: 600108,
  NO_FIRMWARE: 600109,
  INTERNAL: 600110,
  INVALID_PARAM: 600111,
} as const;

export type WsErrCode = (typeof WsErr)[keyof typeof WsErr];

/** Codes after which the real firmware (and the SDK) restarts its whole flow (§A2). */
export const RESTART_FLOW_CODES: readonly number[] = [
  WsErr.NOT_AUTHORIZED,
  WsErr.NOT_REGISTERED,
  WsErr.NOT_ACTIVE,
  WsErr.NOT_LOGIN,
];
