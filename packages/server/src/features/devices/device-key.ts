/**
 * A device key (IMEI, MAC) as stored for uniqueness and search: case, ':' and '-' ignored, so
 * `AA:BB:CC…`, `aa-bb-cc…` and `aabbcc…` are the same key.
 */
export function deviceKeyNorm(dk: string): string {
  return dk.toLowerCase().replace(/[:-]/g, '');
}
