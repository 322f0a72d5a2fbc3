import type { Kysely, Selectable } from 'kysely';
import type { Database, OutboxTable } from '../../adapters/storage/schema.js';
import { fail } from '../../errors.js';
import { audit } from '../../shared/audit.js';
import type { Clock } from '../../shared/clock.js';
import { canActForVendor, type Principal } from '../../shared/principal.js';
import type { Outbox } from './outbox.js';
import { TEST_EVENTS } from './payloads.js';

/** Whose deliveries: a vendor's (callbacks and its webhooks) or an organisation's webhooks. */
export interface WebhookOwner {
  type: 'vendor' | 'org';
  id: string;
}

export interface DeliveryFilters {
  status?: string;
  event_type?: string;
  sn?: string;
  cursor?: string;
  limit?: number;
}

export interface AttemptView {
  at: number;
  http_status: number | null;
  errcode: number | null;
  error: string | null;
  duration_ms: number;
}

export interface DeliveryView {
  id: string;
  vendor_id: string | null;
  org_id: string | null;
  target: { kind: string; id: string };
  event_type: string;
  sn: string | null;
  status: string;
  attempts: number;
  next_attempt_at: number | null;
  created_at: number;
  finished_at: number | null;
  last_http_status: number | null;
  last_error: string | null;
  reply: unknown;
  redelivery_of: string | null;
  attempt_log: AttemptView[];
}

/**
 * The delivery log: every callback and webhook delivery with its attempts, filtered and paged,
 * and redelivery by hand. Who may see a delivery is the webhook owner's rule (CallbacksService).
 */
export class DeliveryLog {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly clock: Clock,
    private readonly outbox: Outbox,
    private readonly requireOwner: (actor: Principal, owner: WebhookOwner) => Promise<void>,
  ) {}

  /** A vendor's deliveries (callbacks and its webhooks), newest first, with every attempt. */
  async list(
    actor: Principal,
    owner: WebhookOwner,
    f: DeliveryFilters = {},
  ): Promise<{ deliveries: DeliveryView[]; next_cursor: string | null }> {
    await this.requireOwner(actor, owner);
    const limit = Math.max(1, Math.min(200, Math.floor(Number(f.limit ?? 50)) || 50));
    let q = this.db
      .selectFrom('outbox')
      .selectAll()
      .where(owner.type === 'vendor' ? 'vendor_id' : 'org_id', '=', owner.id);
    if (owner.type === 'org') q = q.where('target_kind', '=', 'webhook');
    if (f.status) {
      if (!['pending', 'delivered', 'failed'].includes(f.status))
        fail('VALIDATION_FAILED', 'status must be pending, delivered or failed');
      q = q.where('status', '=', f.status);
    }
    if (f.event_type) q = q.where('event_type', '=', f.event_type);
    if (f.sn) q = q.where((eb) => eb(eb.fn<string>('lower', ['sn']), '=', String(f.sn).toLowerCase()));
    if (f.cursor) {
      const c = Number(Buffer.from(f.cursor, 'base64url').toString('utf8'));
      if (!Number.isSafeInteger(c) || c <= 0) fail('VALIDATION_FAILED', 'cursor is invalid');
      q = q.where('seq', '<', c);
    }
    const rows = await q
      .orderBy('seq', 'desc')
      .limit(limit + 1)
      .execute();
    const page = rows.slice(0, limit);
    const views = await this.views(page);
    const next = rows.length > limit ? Buffer.from(String(page.at(-1)!.seq)).toString('base64url') : null;
    return { deliveries: views, next_cursor: next };
  }

  private async views(present: Selectable<OutboxTable>[]): Promise<DeliveryView[]> {
    if (!present.length) return [];
    const attempts = await this.db
      .selectFrom('delivery_attempts')
      .selectAll()
      .where(
        'outbox_seq',
        'in',
        present.map((r) => r.seq),
      )
      .orderBy('id')
      .execute();
    const by = new Map<number, AttemptView[]>();
    for (const a of attempts) {
      const list = by.get(a.outbox_seq) ?? [];
      list.push({ at: a.at, http_status: a.http_status, errcode: a.errcode, error: a.error, duration_ms: a.duration_ms });
      by.set(a.outbox_seq, list);
    }
    return present.map((r) => {
      let reply: unknown = null;
      if (r.reply) {
        try {
          reply = JSON.parse(r.reply);
        } catch {
          reply = r.reply;
        }
      }
      return {
        id: r.id,
        vendor_id: r.vendor_id,
        org_id: r.org_id,
        target: { kind: r.target_kind, id: r.target_id },
        event_type: r.event_type,
        sn: r.sn,
        status: r.status,
        attempts: r.attempts,
        next_attempt_at: r.status === 'pending' ? r.next_attempt_at : null,
        created_at: r.created_at,
        finished_at: r.finished_at,
        last_http_status: r.last_http_status,
        last_error: r.last_error,
        reply,
        redelivery_of: r.redelivery_of,
        attempt_log: by.get(r.seq) ?? [],
      };
    });
  }

  private rowById(id: string) {
    return this.db.selectFrom('outbox').selectAll().where('id', '=', id).executeTakeFirst();
  }

  private async requireAccess(actor: Principal, id: string) {
    const r = await this.rowById(id);
    if (!r) fail('DELIVERY_NOT_FOUND');
    const mayVendor = r.vendor_id !== null && canActForVendor(actor, r.vendor_id, 'integrations');
    if (!mayVendor) {
      if (r.org_id === null || r.target_kind !== 'webhook') fail('DELIVERY_NOT_FOUND');
      try {
        await this.requireOwner(actor, { type: 'org', id: r.org_id });
      } catch {
        fail('DELIVERY_NOT_FOUND');
      }
    }
    return r;
  }

  async get(actor: Principal, id: string): Promise<DeliveryView> {
    const r = await this.requireAccess(actor, id);
    return (await this.views([r]))[0]!;
  }

  /** Sends a delivery again (a new row behind the device's other events); returns the new one. */
  async redeliver(actor: Principal, id: string): Promise<DeliveryView> {
    const r = await this.requireAccess(actor, id);
    if (r.status === 'pending') fail('VALIDATION_FAILED', 'This delivery is still being attempted');
    // A test event is tried once again, like when it was sent.
    const newId = await this.outbox.redeliver(r.id, TEST_EVENTS.has(r.event_type) ? 0 : undefined);
    const org = r.target_kind === 'webhook' ? r.org_id : null;
    await audit(this.db, this.clock.now(), actor, 'callback.redeliver', `delivery:${r.id}`, { new_id: newId }, org);
    return this.get(actor, newId);
  }
}
