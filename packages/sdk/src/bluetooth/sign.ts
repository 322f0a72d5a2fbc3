import { createHash } from 'node:crypto';
import {
  type Advertisement,
  BT_DEVICE_ID_BYTES,
  BT_SIGN_BYTES,
  type BtStatus,
  btSignInput,
  encodeAdvertisement,
} from '@bindery/protocol/bluetooth';

const md5 = (text: string): Buffer => createHash('md5').update(text, 'utf8').digest();

/** BT-4: the high 64 bits of MD5(seed ‖ decimal(nonce)) as 16 lowercase hex characters; seed = SecretNo. */
export function btSign(seed: string, nonce: number): string {
  return md5(btSignInput(seed, nonce)).subarray(0, BT_SIGN_BYTES).toString('hex');
}

/** BT-2: the advert's device id: the first 11 bytes of MD5(SN), 22 lowercase hex characters. */
export function btDeviceId(sn: string): string {
  return md5(sn).subarray(0, BT_DEVICE_ID_BYTES).toString('hex');
}

export interface AdvertisingDevice {
  sn: string;
  /** The seed of the sign (BT-4); needed for check-in adverts. */
  secretNo?: string;
  /** The nonce of this advert (check-in only). */
  nonce?: number;
  status?: Partial<BtStatus>;
  /** `checkin` (0xED, signed) when a SecretNo is given, else `plain` (0xEE). */
  kind?: 'plain' | 'checkin';
}

/** The manufacturer data a device advertises (after the company id, BT-2). */
export function advertisement(d: AdvertisingDevice): Uint8Array<ArrayBuffer> {
  const kind = d.kind ?? (d.secretNo ? 'checkin' : 'plain');
  const status: BtStatus = { lowBattery: false, bindState: 'unbound', ...d.status };
  const a: Advertisement = { kind, deviceId: btDeviceId(d.sn), status };
  if (kind === 'checkin') {
    if (!d.secretNo) throw new Error('a check-in advertisement needs the SecretNo');
    a.nonce = d.nonce ?? 0;
    a.sign = btSign(d.secretNo, a.nonce);
  } else {
    // §A9: a device without check-in advertises status 0x02 (unbound, battery fine)
    a.status = { lowBattery: false, bindState: 'unbound' };
  }
  return encodeAdvertisement(a);
}
