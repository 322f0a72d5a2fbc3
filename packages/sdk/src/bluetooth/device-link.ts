import type { Device } from '../device.js';
import type { DeviceState } from '../events.js';
import { VirtualPeripheral, type VirtualPeripheralOptions } from './peripheral.js';

/** States in which the device holds a registered WSS connection: the cloud is reachable. */
const ONLINE: ReadonlySet<DeviceState> = new Set(['active', 'subscribe', 'ready']);

/**
 * A device that starts offline and comes online once provisioned over Bluetooth: the peripheral
 * signs with the device's SecretNo; a joined `set_wifi` starts the Device's WSS flow, and the
 * Device's state is reported back to the app as the cloud state (BT-9 `status.cloud`).
 * The Device must not be started by the caller.
 */
export function provisionableDevice(
  device: Device,
  o: Omit<VirtualPeripheralOptions, 'sn' | 'secretNo'> & { secretNo?: string },
): VirtualPeripheral {
  const secretNo = o.secretNo ?? device.credentials.secretNo;
  if (!secretNo) throw new Error(`device ${device.sn} needs its SecretNo to sign Bluetooth proofs (BT-4)`);
  const p = new VirtualPeripheral({
    ...o,
    sn: device.sn,
    secretNo,
    onProvisioned: (wifi) => {
      o.onProvisioned?.(wifi);
      device.start();
    },
  });
  device.on('state', ({ to }) => p.setCloud(ONLINE.has(to) ? 'online' : 'offline'));
  device.on('push_bind_corp', () => {
    p.bindState = 'bound';
  });
  device.on('push_unbind_corp', () => {
    p.bindState = 'unbound';
  });
  return p;
}
