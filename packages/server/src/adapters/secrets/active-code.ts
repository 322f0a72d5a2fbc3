import { createHash } from 'node:crypto';
import type { SecretBox } from './secret-box.js';

/**
 * Finding 10: a device's active_code is a credential (it trades for the device secret), so the
 * database holds only its SHA-256 (`devices.active_code`, looked up by `active`) and a sealed
 * copy (`devices.active_code_enc`, so `register` can answer the same code again, P-CMD-register-4).
 */
export function hashActiveCode(code: string): string {
  return createHash('sha256').update(code, 'utf8').digest('hex');
}

export function activeCodeColumns(box: SecretBox, code: string): { active_code: string; active_code_enc: string } {
  return { active_code: hashActiveCode(code), active_code_enc: box.seal(code) };
}
