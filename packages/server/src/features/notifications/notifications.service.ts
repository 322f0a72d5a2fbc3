import type { Selectable } from 'kysely';
import type { NotificationsTable } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import type { Principal } from '../../shared/principal.js';

export interface NotificationView {
  id: number;
  /** What happened, e.g. device.bound; the console picks its own (Chinese or English) wording by kind and data. */
  kind: string;
  title: string;
  body: string;
  /** Console path to open, e.g. /devices/SN123. */
  link: string | null;
  data: Record<string, unknown>;
  created_at: string;
  read: boolean;
}

export interface NewNotification {
  kind: string;
  title: string;
  body: string;
  link?: string | null;
  data?: Record<string, unknown>;
}

/** What the live stream receives, on whichever process the user's browser is connected to. */
export type StreamMessage =
  | { t: 'notification'; notification: NotificationView; unread: number }
  | { t: 'unread'; unread: number };

export const userTopic = (userId: string) => `notify.user.${userId}`;

function view(r: Selectable<NotificationsTable>): NotificationView {
  return {
    id: r.id,
    kind: r.kind,
    title: r.title,
    body: r.body,
    link: r.link,
    data: r.data ? (JSON.parse(r.data) as Record<string, unknown>) : {},
    created_at: new Date(r.created_at).toISOString(),
    read: r.read_at !== null,
  };
}

/**
 * The inbox: notifications stored per user, unread counts, marking read, and live delivery.
 * A new notification is published on the cluster bus under the recipient's topic, so the stream
 * of a user connected to any process receives it (and every open tab learns the new unread count).
 */
export class NotificationsService {
  constructor(private readonly deps: Pick<Deps, 'db' | 'clock' | 'bus' | 'logger' | 'metrics'>) {}

  private get db() {
    return this.deps.db.kysely;
  }

  /** Stores one notification per recipient (duplicates dropped), then publishes each live. */
  async notify(userIds: Iterable<string>, n: NewNotification): Promise<void> {
    const recipients = [...new Set(userIds)].filter(Boolean);
    if (recipients.length === 0) return;
    const now = this.deps.clock.now();
    const rows = await this.db
      .insertInto('notifications')
      .values(
        recipients.map((user_id) => ({
          user_id,
          kind: n.kind,
          title: n.title,
          body: n.body,
          link: n.link ?? null,
          data: n.data ? JSON.stringify(n.data) : null,
          created_at: now,
          read_at: null,
        })),
      )
      .returningAll()
      .execute();
    this.deps.metrics.counter('bindery_notifications_total', 'Notifications stored', ['kind']).inc({ kind: n.kind }, rows.length);
    const unread = await this.unreadCounts(recipients);
    await Promise.all(
      rows.map(async (r) => {
        const msg: StreamMessage = { t: 'notification', notification: view(r), unread: unread.get(r.user_id) ?? 0 };
        try {
          await this.deps.bus.publish(userTopic(r.user_id), msg);
        } catch (err) {
          // Stored is what counts: the inbox shows it on the next load even if the live push failed.
          this.deps.logger.warn({ err, user: r.user_id }, 'live notification publish failed');
        }
      }),
    );
  }

  async list(
    actor: Principal,
    q: { unreadOnly?: boolean; before?: number; limit?: number } = {},
  ): Promise<{ notifications: NotificationView[]; unread: number; next_before: number | null }> {
    const userId = requireUser(actor);
    const limit = Math.min(Math.max(Math.floor(q.limit ?? 30), 1), 100);
    let s = this.db.selectFrom('notifications').selectAll().where('user_id', '=', userId);
    if (q.unreadOnly) s = s.where('read_at', 'is', null);
    if (q.before !== undefined) s = s.where('id', '<', q.before);
    const rows = await s
      .orderBy('id', 'desc')
      .limit(limit + 1)
      .execute();
    const pageRows = rows.slice(0, limit);
    return {
      notifications: pageRows.map(view),
      unread: await this.unreadCount(actor),
      next_before: rows.length > limit ? pageRows[pageRows.length - 1]!.id : null,
    };
  }

  /** Notifications newer than `afterId` (oldest first), for a stream resuming with Last-Event-ID. */
  async since(userId: string, afterId: number, limit = 100): Promise<NotificationView[]> {
    const rows = await this.db
      .selectFrom('notifications')
      .selectAll()
      .where('user_id', '=', userId)
      .where('id', '>', afterId)
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map(view);
  }

  async unreadCount(actor: Principal): Promise<number> {
    const userId = requireUser(actor);
    return (await this.unreadCounts([userId])).get(userId) ?? 0;
  }

  private async unreadCounts(userIds: string[]): Promise<Map<string, number>> {
    const rows = await this.db
      .selectFrom('notifications')
      .select((eb) => ['user_id', eb.fn.countAll<number>().as('n')])
      .where('user_id', 'in', userIds)
      .where('read_at', 'is', null)
      .groupBy('user_id')
      .execute();
    return new Map(rows.map((r) => [r.user_id, Number(r.n)]));
  }

  /** Marks some (`ids`) or all of the caller's notifications read; returns the new unread count. */
  async markRead(actor: Principal, input: { ids?: number[]; all?: boolean }): Promise<{ unread: number }> {
    const userId = requireUser(actor);
    if (!input.all && (!Array.isArray(input.ids) || input.ids.length === 0)) fail('VALIDATION_FAILED', 'Give ids, or all: true');
    let u = this.db
      .updateTable('notifications')
      .set({ read_at: this.deps.clock.now() })
      .where('user_id', '=', userId)
      .where('read_at', 'is', null);
    if (!input.all) u = u.where('id', 'in', input.ids!.slice(0, 500));
    await u.execute();
    const unread = await this.unreadCount(actor);
    const msg: StreamMessage = { t: 'unread', unread };
    await this.deps.bus.publish(userTopic(userId), msg).catch((err) => this.deps.logger.warn({ err }, 'unread publish failed'));
    return { unread };
  }

  /** Live messages for one user, from every process; resolves once the subscription is live. */
  async subscribe(userId: string, handler: (m: StreamMessage) => void): Promise<() => Promise<void>> {
    return this.deps.bus.subscribe(userTopic(userId), (m) => handler(m as StreamMessage));
  }
}

function requireUser(actor: Principal): string {
  if (actor.kind !== 'user') fail('FORBIDDEN', 'Notifications belong to signed-in people');
  return actor.userId;
}
