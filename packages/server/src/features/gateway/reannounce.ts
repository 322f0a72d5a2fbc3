import type { Logger } from 'pino';
import type { PresenceRegistry } from './presence.js';

/** SN keys per announce call: a fleet of 100 000 goes in slices, not one giant batch. */
const SLICE = 5000;

/**
 * Finding 8: after Redis comes back (possibly restarted empty) a gateway process says again
 * that it is alive and which devices it holds, so pushes from other processes find them
 * without waiting for the devices to reconnect. Entries other nodes wrote meanwhile are kept.
 */
export async function reannounce(
  presence: PresenceRegistry,
  nodeId: string,
  ttlSec: number,
  held: () => string[],
  logger: Logger,
): Promise<void> {
  if (!presence.announce) return;
  await presence.heartbeat(nodeId, ttlSec);
  const keys = held();
  for (let i = 0; i < keys.length; i += SLICE) await presence.announce(keys.slice(i, i + SLICE), nodeId);
  logger.info({ devices: keys.length }, 'presence re-announced after a Redis reconnect');
}
