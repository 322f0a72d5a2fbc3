import { hostname } from 'node:os';
import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { newId } from '../../shared/ids.js';

export type TargetKind = 'model' | 'vendor' | 'webhook';
export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

/** One event for one target, as it is queued. */
export interface OutboxItem {
  /** Chosen by the caller when the payload must name it (WeCom req_id, webhook id). */
  id?: string;
  targetKind: TargetKind;
  /** callback_endpoints.id or webhooks.id. */
  targetId: string;
  vendorId: string | null;
  orgId: string | null;
  /** The device the event is about, or null for model-level events. */
  sn: string | null;
  /** Model-level events queue behind one another per model. */
  modelId?: string | null;
  eventType: string;
  payload: unknown;
  /** Its own ordering key instead of target + device (a test event queues behind nothing). */
  orderingKey?: string;
  /** How long failed attempts are retried, from the first attempt (default the outbox's; 0 = one attempt). */
  retryForMs?: number;
}

/** What one attempt came to. */
export interface AttemptResult {
  ok: boolean;
  httpStatus: number | null;
  errcode: number | null;
  error: string | null;
  /** Anything of the reply worth keeping (user_scan's online_status). */
  reply?: string | null;
  /** The target is gone: no point retrying. */
  permanent?: boolean;
  durationMs: number;
}

/** Sends one queued row to its target; never throws. */
export type DeliverFn = (row: ClaimedRow) => Promise<AttemptResult>;

export interface ClaimedRow {
  seq: number;
  id: string;
  targetKind: TargetKind;
  targetId: string;
  eventType: string;
  sn: string | null;
  payload: unknown;
  createdAt: number;
}

export interface OutboxOptions {
  /** First retry delay; it doubles per failure up to maxDelayMs. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Retries go on at least this long after the event, then the row is failed. */
  retryForMs?: number;
  /** How long a claimed row is left to one process before another may take it over. */
  leaseMs?: number;
  /** Rows claimed per round (also the parallelism of one runOnce). */
  batch?: number;
}

export const OUTBOX_DEFAULTS: Required<OutboxOptions> = {
  baseDelayMs: 1_000,
  maxDelayMs: 10 * 60_000,
  retryForMs: 24 * 3_600_000,
  leaseMs: 60_000,
  batch: 20,
};

export interface RunStats {
  delivered: number;
  retried: number;
  failed: number;
}

type Db = Kysely<Database> | Transaction<Database>;

/** The delay before retry number `failures` (1 after the first failure): 1 s, 2 s, 4 s … capped. */
export function backoffMs(
  failures: number,
  o: Pick<Required<OutboxOptions>, 'baseDelayMs' | 'maxDelayMs'> = OUTBOX_DEFAULTS,
): number {
  const exp = Math.min(30, Math.max(0, failures - 1));
  return Math.min(o.maxDelayMs, o.baseDelayMs * 2 ** exp);
}

/** Delivery order key: one target, one device (or one model for model-level events). */
export function orderingKey(item: Pick<OutboxItem, 'targetId' | 'sn' | 'modelId'>): string {
  if (item.sn) return `${item.targetId}|sn:${item.sn.toLowerCase()}`;
  return `${item.targetId}|model:${item.modelId ?? ''}`;
}

/**
 * The durable outbox behind every vendor callback and webhook. Rows are written right after the
 * change commits (domain events) and delivered by `runOnce()`, which any number of processes on
 * one database may run at the same time:
 *
 * - only the oldest pending row of an ordering key (target + device) is eligible, so a device's
 *   next event waits until the earlier one is delivered or given up;
 * - a process claims a row with a conditional update (status pending and no live lease), so two
 *   processes never send the same attempt; a crashed process's lease simply runs out;
 * - a failure schedules the next attempt with exponential backoff (1 s doubling, capped at
 *   10 min) and the row is failed once it has been retried for 24 h.
 *
 * Time comes from deps.clock (tests move a ManualClock); the loop in `start()` only decides how
 * often to look.
 */
export class Outbox {
  private readonly o: Required<OutboxOptions>;
  private readonly worker = `${hostname()}:${process.pid}:${newId('w', 8)}`;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<RunStats> | null = null;
  private stopped = true;
  private kicked = false;

  constructor(
    private readonly deps: Pick<Deps, 'db' | 'clock' | 'secrets' | 'logger'>,
    private readonly deliver: DeliverFn,
    opts: OutboxOptions = {},
  ) {
    this.o = { ...OUTBOX_DEFAULTS, ...opts };
  }

  private get db() {
    return this.deps.db.kysely;
  }

  /**
   * A row that has not been tried yet: due now, retried until the give-up time. The row's retry
   * window is give_up_at − created_at (counted again from its first attempt).
   */
  private freshState(now: number, retryForMs = this.o.retryForMs) {
    return {
      status: 'pending',
      attempts: 0,
      next_attempt_at: now,
      give_up_at: now + Math.max(0, retryForMs),
      lease_owner: null,
      lease_until: null,
      created_at: now,
      finished_at: null,
      last_http_status: null,
      last_error: null,
      reply: null,
    } as const;
  }

  /** Queues items (inside the caller's transaction when one is given). Returns their ids. */
  async enqueue(items: OutboxItem[], trx: Db = this.db): Promise<string[]> {
    if (!items.length) return [];
    const now = this.deps.clock.now();
    const rows = items.map((i) => ({
      id: i.id ?? newId('dlv'),
      vendor_id: i.vendorId,
      org_id: i.orgId,
      target_kind: i.targetKind,
      target_id: i.targetId,
      ordering_key: i.orderingKey ?? orderingKey(i),
      sn: i.sn,
      event_type: i.eventType,
      payload_enc: this.deps.secrets.seal(JSON.stringify(i.payload)),
      ...this.freshState(now, i.retryForMs),
      redelivery_of: null,
    }));
    await trx.insertInto('outbox').values(rows).execute();
    this.kick();
    return rows.map((r) => r.id);
  }

  /**
   * Records a delivery made synchronously elsewhere (the bind callback) so it shows in the log
   * like any other; it is never retried by the worker.
   */
  async record(item: OutboxItem, result: AttemptResult): Promise<string> {
    const now = this.deps.clock.now();
    const id = item.id ?? newId('dlv');
    await this.db.transaction().execute(async (trx) => {
      const r = await trx
        .insertInto('outbox')
        .values({
          id,
          vendor_id: item.vendorId,
          org_id: item.orgId,
          target_kind: item.targetKind,
          target_id: item.targetId,
          // Its own key: a finished row never blocks anything, but keep it out of the device's queue.
          ordering_key: `${orderingKey(item)}|sync`,
          sn: item.sn,
          event_type: item.eventType,
          payload_enc: this.deps.secrets.seal(JSON.stringify(item.payload)),
          status: result.ok ? 'delivered' : 'failed',
          attempts: 1,
          next_attempt_at: now,
          give_up_at: now,
          lease_owner: null,
          lease_until: null,
          created_at: now,
          finished_at: now,
          last_http_status: result.httpStatus,
          last_error: result.error,
          reply: result.reply ?? null,
          redelivery_of: null,
        })
        .returning('seq')
        .executeTakeFirstOrThrow();
      await this.insertAttempt(trx, r.seq, now, result);
    });
    return id;
  }

  /**
   * Queues a finished (or failed) delivery again, as a new row at the end of its device's queue;
   * `retryForMs` as for enqueue (a test event is tried once again).
   */
  async redeliver(id: string, retryForMs?: number): Promise<string> {
    const r = await this.db.selectFrom('outbox').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    const now = this.deps.clock.now();
    const newRowId = newId('dlv');
    await this.db
      .insertInto('outbox')
      .values({
        id: newRowId,
        vendor_id: r.vendor_id,
        org_id: r.org_id,
        target_kind: r.target_kind,
        target_id: r.target_id,
        ordering_key: r.ordering_key.replace(/\|sync$/, ''),
        sn: r.sn,
        event_type: r.event_type,
        payload_enc: r.payload_enc,
        ...this.freshState(now, retryForMs),
        redelivery_of: r.id,
      })
      .execute();
    this.kick();
    return newRowId;
  }

  /**
   * Delivers everything that is due, round after round (a delivered row makes its successor
   * eligible), until a round finds nothing. Safe to run concurrently in several processes.
   */
  async runOnce(maxRounds = 1000): Promise<RunStats> {
    const stats: RunStats = { delivered: 0, retried: 0, failed: 0 };
    for (let round = 0; round < maxRounds; round++) {
      const claimed = await this.claim();
      if (!claimed.length) break;
      await Promise.all(claimed.map((row) => this.attempt(row, stats)));
    }
    return stats;
  }

  /**
   * Delivers the pending rows of one ordering key now, oldest first, ignoring their backoff (the
   * bind callback must not overtake a device's earlier events). True when none is left pending.
   */
  async drain(key: Pick<OutboxItem, 'targetId' | 'sn' | 'modelId'>): Promise<boolean> {
    const k = orderingKey(key);
    const stats: RunStats = { delivered: 0, retried: 0, failed: 0 };
    for (;;) {
      const now = this.deps.clock.now();
      const head = await this.db
        .selectFrom('outbox')
        .select('seq')
        .where('ordering_key', '=', k)
        .where('status', '=', 'pending')
        .orderBy('seq')
        .limit(1)
        .executeTakeFirst();
      if (!head) return true;
      const [row] = await this.claimRows([head.seq], now);
      // Another process holds it right now: the device's queue is not clear.
      if (!row) return false;
      const before = stats.delivered + stats.failed;
      await this.attempt(row, stats);
      if (stats.delivered + stats.failed === before) return false;
    }
  }

  private async claim(): Promise<ClaimedRow[]> {
    const now = this.deps.clock.now();
    const candidates = await this.db
      .selectFrom('outbox as o')
      .select(['o.seq'])
      .where('o.status', '=', 'pending')
      .where('o.next_attempt_at', '<=', now)
      .where((eb) => eb.or([eb('o.lease_until', 'is', null), eb('o.lease_until', '<', now)]))
      .where((eb) =>
        eb.not(
          eb.exists(
            eb
              .selectFrom('outbox as p')
              .select('p.seq')
              .whereRef('p.ordering_key', '=', 'o.ordering_key')
              .where('p.status', '=', 'pending')
              .whereRef('p.seq', '<', 'o.seq'),
          ),
        ),
      )
      .orderBy('o.seq')
      .limit(this.o.batch)
      .execute();
    return this.claimRows(
      candidates.map((c) => c.seq),
      now,
    );
  }

  private async claimRows(seqs: number[], now: number): Promise<ClaimedRow[]> {
    const out: ClaimedRow[] = [];
    for (const seq of seqs) {
      const u = await this.db
        .updateTable('outbox')
        .set({ lease_owner: this.worker, lease_until: now + this.o.leaseMs })
        .where('seq', '=', seq)
        .where('status', '=', 'pending')
        .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
        .executeTakeFirst();
      if (Number(u.numUpdatedRows) !== 1) continue;
      const r = await this.db.selectFrom('outbox').selectAll().where('seq', '=', seq).executeTakeFirstOrThrow();
      let payload: unknown;
      try {
        payload = JSON.parse(this.deps.secrets.open(r.payload_enc));
      } catch (err) {
        this.deps.logger.error({ err, delivery: r.id }, 'outbox payload does not open; failing it');
        await this.finish(r.seq, 'failed', now, {
          ok: false,
          httpStatus: null,
          errcode: null,
          error: 'payload unreadable',
          durationMs: 0,
        });
        continue;
      }
      out.push({
        seq: r.seq,
        id: r.id,
        targetKind: r.target_kind as TargetKind,
        targetId: r.target_id,
        eventType: r.event_type,
        sn: r.sn,
        payload,
        createdAt: r.created_at,
      });
    }
    return out;
  }

  private async attempt(row: ClaimedRow, stats: RunStats): Promise<void> {
    let result: AttemptResult;
    try {
      result = await this.deliver(row);
    } catch (err) {
      result = { ok: false, httpStatus: null, errcode: null, error: (err as Error).message ?? String(err), durationMs: 0 };
    }
    const now = this.deps.clock.now();
    const cur = await this.db
      .selectFrom('outbox')
      .select(['attempts', 'give_up_at', 'created_at'])
      .where('seq', '=', row.seq)
      .executeTakeFirstOrThrow();
    // The retry window (the row's own, see freshState) starts with the first attempt: time spent
    // queued behind the device's earlier events does not count against an event.
    if (cur.attempts === 0) cur.give_up_at = Math.max(cur.give_up_at, now + (cur.give_up_at - cur.created_at));
    if (result.ok) {
      await this.finish(row.seq, 'delivered', now, result);
      stats.delivered++;
    } else if (result.permanent || now >= cur.give_up_at) {
      await this.finish(row.seq, 'failed', now, result);
      stats.failed++;
    } else {
      const failures = cur.attempts + 1;
      await this.db.transaction().execute(async (trx) => {
        await trx
          .updateTable('outbox')
          .set({
            attempts: failures,
            next_attempt_at: Math.min(now + backoffMs(failures, this.o), cur.give_up_at),
            give_up_at: cur.give_up_at,
            lease_owner: null,
            lease_until: null,
            last_http_status: result.httpStatus,
            last_error: result.error,
          })
          .where('seq', '=', row.seq)
          .where('lease_owner', '=', this.worker)
          .execute();
        await this.insertAttempt(trx, row.seq, now, result);
      });
      stats.retried++;
    }
  }

  private async finish(seq: number, status: DeliveryStatus, now: number, result: AttemptResult): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('outbox')
        .set((eb) => ({
          status,
          attempts: eb('attempts', '+', 1),
          finished_at: now,
          lease_owner: null,
          lease_until: null,
          last_http_status: result.httpStatus,
          last_error: result.error,
          reply: result.reply ?? null,
        }))
        .where('seq', '=', seq)
        .where('lease_owner', '=', this.worker)
        .execute();
      await this.insertAttempt(trx, seq, now, result);
    });
  }

  private async insertAttempt(trx: Db, seq: number, now: number, r: AttemptResult): Promise<void> {
    await trx
      .insertInto('delivery_attempts')
      .values({
        outbox_seq: seq,
        at: now,
        http_status: r.httpStatus,
        errcode: r.errcode,
        error: r.error ? r.error.slice(0, 500) : null,
        duration_ms: Math.max(0, Math.round(r.durationMs)),
      })
      .execute();
  }

  // ── the loop (main.ts) ─────────────────────────────────────────────────────

  /** Polls every `pollMs` and right after an enqueue on this process. */
  start(pollMs = 1_000): void {
    if (!this.stopped) return;
    this.stopped = false;
    const tick = async () => {
      this.timer = null;
      if (this.stopped) return;
      this.kicked = false;
      this.running = this.runOnce().catch((err) => {
        this.deps.logger.error({ err }, 'outbox run failed');
        return { delivered: 0, retried: 0, failed: 0 };
      });
      await this.running;
      this.running = null;
      if (!this.stopped) this.timer = setTimeout(tick, this.kicked ? 0 : pollMs);
    };
    this.timer = setTimeout(tick, 0);
    this.tick = tick;
  }

  private tick: (() => Promise<void>) | null = null;

  private kick(): void {
    if (this.stopped) return;
    this.kicked = true;
    if (this.timer && this.tick && !this.running) {
      clearTimeout(this.timer);
      this.timer = setTimeout(this.tick, 0);
    }
  }

  /** Stops polling and waits for the round in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.running) await this.running;
  }
}
