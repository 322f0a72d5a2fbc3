/**
 * The gateway's tunables, with the values docs/protocol.md states. Tests may change them on a
 * running gateway (`app.gateway.limits`); they are read on every use.
 */
export interface GatewayLimits {
  /** P-RATE-1: frames per connection per second beyond which frames get RATE_LIMITED. */
  framesPerSec: number;
  /** P-RATE-2: frames per connection per second beyond which the connection is closed (1008). */
  floodFramesPerSec: number;
  /** P-RATE-2: commands waiting behind a running one; more get RATE_LIMITED. */
  maxQueued: number;
  /** P-F-8: largest text frame that is parsed; larger ones get PAYLOAD_TOO_LARGE. */
  maxTextFrameBytes: number;
  /** P-CMD-upload_log-2: largest log file stored; larger ones get PAYLOAD_TOO_LARGE. */
  maxLogBytes: number;
  /** P-CMD-upload_log-3: uploaded logs kept per device (oldest removed first). */
  logsKeptPerDevice: number;
  /** P-RATE-3: register / get_secret_no attempts per SN per minute, cluster-wide. */
  registerPerMinute: number;
  /** P-RATE-4: log uploads per SN per hour, cluster-wide. */
  uploadsPerHour: number;
  /** P-RATE-4: error reports stored per SN per hour, cluster-wide. */
  errorReportsPerHour: number;
  /** P-LIVE-3: batched online/last-seen writes are flushed this often. */
  flushIntervalMs: number;
  /** P-LIVE-1: idle connections are looked for this often. */
  sweepIntervalMs: number;
  /** P-LIVE-3: a device's stored last_seen_at is refreshed when it is older than this. */
  lastSeenResolutionMs: number;
  /** P-CL-3: presence heartbeat period and time to live. */
  presenceHeartbeatSec: number;
  presenceTtlSec: number;
  /** P-PUSH-5: default and longest life of a durable command. */
  commandTtlSec: number;
  maxCommandTtlSec: number;
}

export const MIB = 1024 * 1024;

export function defaultLimits(): GatewayLimits {
  return {
    framesPerSec: 30,
    floodFramesPerSec: 150,
    maxQueued: 64,
    maxTextFrameBytes: 64 * 1024,
    maxLogBytes: 4 * MIB,
    logsKeptPerDevice: 20,
    registerPerMinute: 30,
    uploadsPerHour: 30,
    errorReportsPerHour: 120,
    flushIntervalMs: 2000,
    sweepIntervalMs: 5000,
    lastSeenResolutionMs: 30_000,
    presenceHeartbeatSec: 10,
    presenceTtlSec: 30,
    commandTtlSec: 86_400,
    maxCommandTtlSec: 30 * 86_400,
  };
}

/**
 * P-F-8: the WebSocket layer's own ceiling (ws `maxPayload`), fixed when the gateway starts.
 * Twice the log limit, so an oversized log still gets a PAYLOAD_TOO_LARGE reply and the
 * connection stays; only beyond this does ws close the connection (1009).
 */
export const MAX_PAYLOAD_BYTES = 8 * MIB + 64 * 1024;
