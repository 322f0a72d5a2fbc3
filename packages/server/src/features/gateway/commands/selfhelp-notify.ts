import { WsErr } from '@bindery/protocol';
import { ConnState } from '../connection.js';
import { newPushReqId } from '../pushes.service.js';
import { type CommandSpec, err, ok } from './types.js';

/**
 * `selfhelp_notify` (§A5.12), a debugging aid.
 * P-CMD-selfhelp_notify-1: needs a subscribed connection; body data (string).
 * P-CMD-selfhelp_notify-2: after the reply, the same connection gets the push
 *   `push_selfhelp_notify` with body {data} (the reference leaves the name open; this one
 *   follows the push_* pattern).
 */
export const selfhelpNotify: CommandSpec = {
  name: 'selfhelp_notify',
  needs: ConnState.Subscribed,
  run(gw, conn, job) {
    const data = job.body.data;
    if (typeof data !== 'string') return err(WsErr.INVALID_PARAM, 'data must be a string');
    return {
      ...ok(),
      after: () => {
        gw.sendPush(conn, 'push_selfhelp_notify', { data }, newPushReqId());
      },
    };
  },
};
