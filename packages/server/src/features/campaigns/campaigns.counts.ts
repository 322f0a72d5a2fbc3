import type { Kysely } from 'kysely';
import type { Database } from '../../adapters/storage/schema.js';
import { type Counts, EXEC_STATES, type ExecState, emptyCounts } from './campaigns.model.js';

/**
 * A campaign's executions by state, stored (campaign_counts, migration 028) so the campaign page
 * reads eight rows instead of counting up to 100 000 executions on every load.
 *
 * Kept in the transaction of every change of execution state, by relative updates (`n = n + k`):
 * devices' reports move executions from gateway processes while the scheduler moves others, and
 * a read-modify-write would lose one of two concurrent changes. Rows are updated in one order
 * (EXEC_STATES') after the execution rows, so two transitions never wait on each other in a cycle.
 */

/** The rows of a new campaign: every state, `queued` holding all its executions. */
export async function initCounts(trx: Kysely<Database>, campaignId: string, queued: number): Promise<void> {
  await trx
    .insertInto('campaign_counts')
    .values(EXEC_STATES.map((state) => ({ campaign_id: campaignId, state, n: state === 'queued' ? queued : 0 })))
    .execute();
}

/** Adds each delta to its state's count; call inside the transaction that changed the executions. */
export async function adjustCounts(
  trx: Kysely<Database>,
  campaignId: string,
  delta: Partial<Record<ExecState, number>>,
): Promise<void> {
  for (const state of EXEC_STATES) {
    const k = delta[state] ?? 0;
    if (k === 0) continue;
    await trx
      .updateTable('campaign_counts')
      .set((eb) => ({ n: eb('n', '+', k) }))
      .where('campaign_id', '=', campaignId)
      .where('state', '=', state)
      .execute();
  }
}

/** One execution moved from `from` to `to`. */
export function moved(from: ExecState, to: ExecState, k = 1): Partial<Record<ExecState, number>> {
  return from === to ? {} : { [from]: -k, [to]: k };
}

export async function readCounts(db: Kysely<Database>, campaignId: string): Promise<Counts> {
  const rows = await db.selectFrom('campaign_counts').select(['state', 'n']).where('campaign_id', '=', campaignId).execute();
  const out = emptyCounts();
  for (const r of rows) out[r.state as ExecState] = Number(r.n);
  return out;
}

/** A fresh COUNT … GROUP BY over the executions: what the stored counts must equal (tests, benchmarks). */
export async function countExecutions(db: Kysely<Database>, campaignId: string): Promise<Counts> {
  const rows = await db
    .selectFrom('campaign_executions')
    .select((eb) => ['state', eb.fn.countAll<string | number>().as('n')])
    .where('campaign_id', '=', campaignId)
    .groupBy('state')
    .execute();
  const out = emptyCounts();
  for (const r of rows) out[r.state as ExecState] = Number(r.n);
  return out;
}
