import { APP_SCENES, isValidSn, OPERATING_SYSTEMS } from '@bindery/protocol';
import { deviceKeyNorm } from '../devices/device-key.js';

/**
 * The cell rules of a relation file, as pure functions: each returns the stored value or a
 * sentence saying what is wrong. docs/relations.md lists the same rules.
 */
export type Checked<T> = { ok: true; value: T } | { ok: false; message: string };

const ok = <T>(value: T): Checked<T> => ({ ok: true, value });
const bad = <T>(message: string): Checked<T> => ({ ok: false, message });

/** IMEI (15 digits), MAC (with or without `:`/`-`) or any other module id: tolerant by design. */
export const DEVICE_KEY_RE = /^[0-9A-Za-z:-]{1,64}$/;
/** What Excel writes for a long number in a General-format cell: 8.61234E+14. */
const SCIENTIFIC_RE = /^[0-9](\.[0-9]+)?E\+[0-9]+$/i;

/**
 * The key device keys are unique under: lower case, separators dropped, so the MAC
 * `AA:BB:CC:00:11:22` and `aabbcc001122` are one device key.
 */
export { deviceKeyNorm };

export function checkDeviceKey(v: string): Checked<{ key: string; norm: string }> {
  if (v === '') return bad('DeviceKey is required');
  if (SCIENTIFIC_RE.test(v)) {
    return bad(
      'DeviceKey looks like a number Excel shortened (scientific notation); format the column as Text and enter it again',
    );
  }
  if (!DEVICE_KEY_RE.test(v)) return bad('DeviceKey must be 1–64 characters of 0-9, A-Z, a-z, ":" and "-" (an IMEI or a MAC)');
  const norm = deviceKeyNorm(v);
  if (norm === '') return bad('DeviceKey must contain a letter or a digit');
  return ok({ key: v, norm });
}

export function checkSn(v: string): Checked<string> {
  if (SCIENTIFIC_RE.test(v)) {
    return bad('The SN looks like a number Excel shortened (scientific notation); format the column as Text and enter it again');
  }
  if (!isValidSn(v)) return bad('The SN must be 1–128 characters of 0-9, A-Z, a-z');
  return ok(v);
}

export const DEVICE_NAME_MAX = 128;

export function checkDeviceName(v: string): Checked<string> {
  // Code points, not UTF-16 units; only a long string needs counting.
  if (v.length > DEVICE_NAME_MAX && [...v].length > DEVICE_NAME_MAX)
    return bad(`The device name must be at most ${DEVICE_NAME_MAX} characters`);
  if (/[\u0000-\u001f\u007f]/.test(v)) return bad('The device name must be on one line, without control characters');
  return ok(v);
}

/**
 * An X.509 certificate's SHA-1 fingerprint: 40 hex digits, stored in lower case without
 * separators. The colon-separated form openssl prints (`AB:CD:…`) is accepted too.
 */
export function checkFingerprint(v: string): Checked<string> {
  const compact = /^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){19}$/.test(v) ? v.replace(/:/g, '') : v;
  if (!/^[0-9A-Fa-f]{40}$/.test(compact)) {
    return bad('The certificate fingerprint must be a SHA-1: 40 hex digits (colons between pairs allowed)');
  }
  return ok(compact.toLowerCase());
}

export function checkCameraSn(v: string): Checked<string> {
  if (v.length > 64 && [...v].length > 64) return bad('The camera SN must be at most 64 characters');
  return ok(v);
}

export function checkAppSceneCode(v: string): Checked<string> {
  if (!Object.hasOwn(APP_SCENES, v)) return bad(`The app scene code must be one of ${Object.keys(APP_SCENES).join(', ')}`);
  return ok(v);
}

export function checkOperatingSystem(v: string): Checked<string> {
  const up = v.toUpperCase();
  if (!(OPERATING_SYSTEMS as readonly string[]).includes(up)) {
    return bad(`The operating system must be one of ${OPERATING_SYSTEMS.join(', ')}`);
  }
  return ok(up);
}
