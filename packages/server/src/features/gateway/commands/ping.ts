import { ConnState } from '../connection.js';
import { type CommandSpec, ok } from './types.js';

/**
 * P-CMD-ping-1: answered in every state (Lombo pings from connect time, before login).
 * P-CMD-ping-2: like every frame it only refreshes the in-memory last-frame time; the stored
 * last_seen_at follows in batches (P-LIVE-3).
 */
export const ping: CommandSpec = {
  name: 'ping',
  needs: ConnState.Anonymous,
  immediate: true,
  run: () => ok(),
};
