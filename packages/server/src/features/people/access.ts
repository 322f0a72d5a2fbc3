import type { Kysely } from 'kysely';
import type { LimitRule, RateLimiter } from '../../adapters/ratelimit/rate-limiter.js';
import type { Database } from '../../adapters/storage/schema.js';
import { AppError } from '../../errors.js';

/**
 * Ends every way a person is signed in: their console sessions go and their API tokens are
 * revoked. Run inside the caller's transaction (disable, password reset) so it commits with the
 * change that made it necessary.
 */
export async function endAccess(
  trx: Kysely<Database>,
  userId: string,
  now: number,
): Promise<{ sessions_ended: number; tokens_revoked: number }> {
  const ended = await trx.deleteFrom('sessions').where('user_id', '=', userId).executeTakeFirst();
  const revoked = await trx
    .updateTable('api_tokens')
    .set({ revoked_at: now })
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return { sessions_ended: Number(ended.numDeletedRows), tokens_revoked: Number(revoked.numUpdatedRows) };
}

/**
 * Anonymous forms (password-reset preview and completion, self sign-up, invitation preview and
 * accept) are limited per
 * network address, in the shared limiter so the count holds across processes. Tokens are 256-bit,
 * so this is about load and account-creation spam rather than guessing.
 */
export const ANONYMOUS_FORMS = {
  reset: { name: 'form_reset', points: 30, windowSec: 15 * 60 },
  signup: { name: 'form_signup', points: 10, windowSec: 60 * 60 },
  /** Organisation and vendor invitation links: preview and accept share one count. */
  invite: { name: 'form_invite', points: 30, windowSec: 15 * 60 },
} as const satisfies Record<string, LimitRule>;

export async function limitAnonymousForm(limiter: RateLimiter, rule: LimitRule, ip: string | null | undefined): Promise<void> {
  if (!ip) return; // the CLI and in-process calls have no address
  const r = await limiter.consume(rule, ip);
  if (!r.allowed) {
    throw new AppError('RATE_LIMITED', 'Too many attempts from this network; try again later.', {
      retry_after_sec: Math.max(1, Math.ceil(r.retryAfterMs / 1000)),
    });
  }
}
