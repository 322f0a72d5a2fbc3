import { createHash } from 'node:crypto';
import type { Device } from './device.js';

/** How a simulated upgrade can go wrong, so every abort path of a campaign can be driven (issue 14 item 5). */
export interface UpgradeOptions {
  /** Share [0, 1] of upgrades whose install fails: the device reboots on its old version. */
  failureRate?: number;
  /** Share of upgrades that brick the device: it never comes back. */
  brickRate?: number;
  /**
   * Share of upgrades whose download arrives corrupted every time: each MD5 check fails with an
   * error_report, the device downloads again up to MD5_ATTEMPTS times, then stays on its version.
   */
  wrongMd5Rate?: number;
  /** How long "installing" takes before the reboot (ms). */
  installMs?: number;
  /** Throttles the download to this many bytes per second (slow links). */
  bytesPerSec?: number;
  /** The connection drops after this many bytes once; the download resumes with a Range request. */
  interruptAfterBytes?: number;
  /** Reboot time after install (ms). */
  rebootMs?: number;
  random?: () => number;
  fetch?: typeof fetch;
}

export type UpgradeOutcome = 'upgraded' | 'failed_install' | 'bricked' | 'wrong_md5' | 'error';

/** errcode of the error_report sent when a downloaded image fails its MD5 check. */
export const MD5_MISMATCH_ERRCODE = 7001;
/** Downloads a device makes of one image before it gives up on a failing MD5 (one error_report each). */
export const MD5_ATTEMPTS = 3;

/**
 * Makes a simulated device upgrade as firmware does: on `push_update_firmware` it asks
 * `get_firmware_info`, downloads the image (resuming with `Range` after a drop), checks the MD5,
 * "installs" for a while, reboots and subscribes with the new version. Returns a detach function;
 * `onOutcome` hears how each attempt ended.
 */
export function attachUpgrader(
  device: Device,
  opts: UpgradeOptions = {},
  onOutcome?: (o: { sn: string; outcome: UpgradeOutcome; version?: string; error?: string }) => void,
): () => void {
  const random = opts.random ?? Math.random;
  const doFetch = opts.fetch ?? fetch;
  let busy = false;
  const run = async () => {
    if (busy) return; // a repeated push while upgrading changes nothing
    busy = true;
    const report = (outcome: UpgradeOutcome, extra: { version?: string; error?: string } = {}) =>
      onOutcome?.({ sn: device.sn, outcome, ...extra });
    try {
      const info = await device.getFirmwareInfo();
      // One draw decides the fate, so rates add up as configured.
      const r = random();
      const brick = opts.brickRate ?? 0;
      const failure = brick + (opts.failureRate ?? 0);
      const wrongMd5 = failure + (opts.wrongMd5Rate ?? 0);
      let verified = false;
      for (let attempt = 1; attempt <= MD5_ATTEMPTS && !verified; attempt++) {
        let bytes = await download(doFetch, info.download_url, info.size, opts);
        if (r >= failure && r < wrongMd5) bytes = corrupt(bytes);
        verified = createHash('md5').update(bytes).digest('hex') === info.md5sum.toLowerCase();
        if (!verified) {
          const msg = `firmware ${info.firmware_version}: md5 mismatch (download ${attempt} of ${MD5_ATTEMPTS})`;
          await device.errorReport(MD5_MISMATCH_ERRCODE, msg).catch(() => {});
        }
      }
      if (!verified) {
        report('wrong_md5', { version: info.firmware_version });
        return;
      }
      await sleep(opts.installMs ?? 0);
      if (r < brick) {
        device.stop();
        report('bricked', { version: info.firmware_version });
        return;
      }
      if (r < failure) {
        device.reboot(opts.rebootMs ?? 0);
        report('failed_install', { version: info.firmware_version });
        return;
      }
      device.setFirmwareVersion(info.firmware_version);
      device.reboot(opts.rebootMs ?? 0);
      report('upgraded', { version: info.firmware_version });
    } catch (e) {
      report('error', { error: e instanceof Error ? e.message : String(e) });
    } finally {
      busy = false;
    }
  };
  const listener = () => void run();
  device.on('push_update_firmware', listener);
  return () => device.off('push_update_firmware', listener);
}

/** GET with Range resumes: up to 5 tries, each continuing where the last stopped. */
async function download(doFetch: typeof fetch, url: string, size: number, opts: UpgradeOptions): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  let interrupted = false;
  for (let attempt = 0; attempt < 5 && got < size; attempt++) {
    const res = await doFetch(url, got > 0 ? { headers: { range: `bytes=${got}-` } } : {});
    if (got > 0 && res.status !== 206) {
      // The server ignored the range: start over.
      chunks.length = 0;
      got = 0;
    }
    if (!res.ok || !res.body) throw new Error(`download failed: HTTP ${res.status}`);
    const reader = res.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        const b = Buffer.from(value);
        chunks.push(b);
        got += b.length;
        if (opts.bytesPerSec) await sleep((b.length * 1000) / opts.bytesPerSec);
        if (opts.interruptAfterBytes !== undefined && !interrupted && got >= opts.interruptAfterBytes && got < size) {
          interrupted = true;
          await reader.cancel();
          break;
        }
      }
    } finally {
      reader.releaseLock();
    }
  }
  if (got !== size) throw new Error(`download ended at ${got} of ${size} bytes`);
  return Buffer.concat(chunks);
}

function corrupt(b: Buffer): Buffer {
  const c = Buffer.from(b);
  if (c.length > 0) c[c.length >> 1] = (c[c.length >> 1]! ^ 0xff) & 0xff;
  return c;
}

function sleep(ms: number): Promise<void> {
  return ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
}
