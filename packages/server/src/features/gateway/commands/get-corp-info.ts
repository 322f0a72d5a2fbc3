import { WsErr } from '@bindery/protocol';
import { ConnState } from '../connection.js';
import { type CommandSpec, err, ok } from './types.js';

/**
 * `get_corp_info` (§A5.11).
 * P-CMD-get_corp_info-1: needs a subscribed connection; no body.
 * P-CMD-get_corp_info-2: corp_name is the owning organisation's name, or for a personal space
 *   the person's display name.
 */
export const getCorpInfo: CommandSpec = {
  name: 'get_corp_info',
  needs: ConnState.Subscribed,
  async run(gw, conn) {
    const name = await gw.repo.ownerName(conn.device!.id);
    if (name === null) return err(WsErr.NOT_AUTHORIZED, 'the device is not bound');
    return ok({ corp_name: name });
  },
};
