import { sql } from 'kysely';
import type { Deps } from '../../deps.js';
import type { DomainEvent, DomainEvents } from '../../shared/domain-events.js';
import { newToken, sha256Hex } from '../../shared/ids.js';
import { TICKET_RENEW_MS, TICKET_VALID_MS } from '../models/models.service.js';

const JOB_PREFIX = 'model_ticket:';
/** Claims older than this many periods are of no use to anyone. */
const KEEP_CLAIM_PERIODS = 6;

/**
 * §B1: every model's model_ticket is renewed every 10 minutes and valid for 30, so the previous
 * two stay usable while vendors switch to the newest. Time is cut into periods of TICKET_RENEW_MS;
 * the process that inserts the (model, period) claim renews that model for that period, in the
 * same transaction as the new ticket, so several processes renew each model once per period.
 * Each renewal emits model.ticket_renewed (delivered as the model_ticket callback).
 */
export class TicketRenewal {
  constructor(
    private readonly deps: Pick<Deps, 'db' | 'clock' | 'secrets'>,
    private readonly events: DomainEvents,
  ) {}

  /** One pass over every model; returns how many this process renewed. */
  async runOnce(now = this.deps.clock.now()): Promise<number> {
    const db = this.deps.db.kysely;
    const period = Math.floor(now / TICKET_RENEW_MS);
    // Only models nobody has renewed yet this period: a tick is one query when there is nothing to do.
    const models = await db
      .selectFrom('models')
      .select(['model_id', 'vendor_id'])
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('job_claims')
              .select('job_claims.job')
              .where('job_claims.period', '=', period)
              .where('job_claims.job', '=', sql<string>`${JOB_PREFIX} || models.model_id`),
          ),
        ),
      )
      .orderBy('model_id')
      .execute();
    const renewed: DomainEvent[] = [];
    for (const m of models) {
      const ticket = newToken(48);
      const won = await db.transaction().execute(async (trx) => {
        const claim = await trx
          .insertInto('job_claims')
          .values({ job: `${JOB_PREFIX}${m.model_id}`, period, claimed_at: now })
          .onConflict((oc) => oc.columns(['job', 'period']).doNothing())
          .executeTakeFirst();
        if (Number(claim.numInsertedOrUpdatedRows ?? 0) !== 1) return false;
        await trx
          .insertInto('model_tickets')
          .values({
            ticket_hash: sha256Hex(ticket),
            ticket_enc: this.deps.secrets.seal(ticket),
            model_id: m.model_id,
            issued_at: now,
            expires_at: now + TICKET_VALID_MS,
          })
          .execute();
        await trx.deleteFrom('model_tickets').where('model_id', '=', m.model_id).where('expires_at', '<', now).execute();
        return true;
      });
      if (won) {
        renewed.push({
          type: 'model.ticket_renewed',
          modelId: m.model_id,
          vendorId: m.vendor_id,
          ticket,
          expiresAt: now + TICKET_VALID_MS,
          at: now,
        });
      }
    }
    await db
      .deleteFrom('job_claims')
      .where('job', 'like', `${JOB_PREFIX}%`)
      .where('period', '<', period - KEEP_CLAIM_PERIODS)
      .execute();
    for (const e of renewed) await this.events.emit(e);
    return renewed.length;
  }
}
