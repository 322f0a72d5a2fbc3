import { ConnState } from '../connection.js';
import { type CommandSpec, ok } from './types.js';

/** P-CMD-get_timestamp-1: the server's unix seconds as a JSON number, in every state, no body needed. */
export const getTimestamp: CommandSpec = {
  name: 'get_timestamp',
  needs: ConnState.Anonymous,
  immediate: true,
  run: (gw) => ok({ timestamp: Math.floor(gw.now() / 1000) }),
};
