import { WsErr } from '@bindery/protocol';
import { ConnState } from '../connection.js';
import { GATEWAY_PRINCIPAL } from '../principal.js';
import { type CommandSpec, err, ok } from './types.js';

/**
 * `get_firmware_info` (§A5.7).
 * P-CMD-get_firmware_info-1: needs a subscribed connection (P-ST-3); no body.
 * P-CMD-get_firmware_info-2: answers firmware_version, md5sum, size and download_url of the
 *   model's current firmware (P-FW-1); none published → NO_FIRMWARE (600109). An uploaded file's
 *   download_url is signed for this device and expires (firmware/download.ts).
 */
export const getFirmwareInfo: CommandSpec = {
  name: 'get_firmware_info',
  needs: ConnState.Subscribed,
  async run(gw, conn) {
    // A device a firmware campaign told to upgrade gets that campaign's image (features/campaigns).
    const info =
      (await gw.services.campaigns.engine.infoFor(conn.device!)) ??
      (await gw.services.firmware.currentInfo(GATEWAY_PRINCIPAL, conn.device!.modelId, conn.device!.sn));
    if (!info) return err(WsErr.NO_FIRMWARE, 'no firmware is published for this device model');
    return ok({ ...info });
  },
};
