import { randomBytes } from 'node:crypto';

let seq = 0;

/**
 * Ids that sort in creation order — clock time, then a per-process sequence, then randomness —
 * so "oldest first" holds even for rows made in the same millisecond (durable commands keep
 * their order; log retention drops the right files). Public ids ask for more randomness.
 */
export function sortableId(prefix: string, now: number, randomLen = 5): string {
  seq = (seq + 1) % 36 ** 4;
  return `${prefix}_${Math.max(0, Math.floor(now)).toString(36).padStart(9, '0')}${seq.toString(36).padStart(4, '0')}${randomBytes(randomLen).toString('hex')}`;
}
