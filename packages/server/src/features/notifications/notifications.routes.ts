import type { FastifyInstance } from 'fastify';
import { fail } from '../../errors.js';
import { principalOf } from '../../http/auth.js';
import { eventStreams } from '../../http/sse.js';
import type { Services } from '../../services.js';
import type { StreamMessage } from './notifications.service.js';

export { HEARTBEAT_MS } from '../../http/sse.js';

const notificationSchema = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    kind: { type: 'string' },
    title: { type: 'string' },
    body: { type: 'string' },
    link: { type: ['string', 'null'] },
    data: { type: 'object', additionalProperties: true },
    created_at: { type: 'string' },
    read: { type: 'boolean' },
  },
} as const;

export function notificationsRoutes(s: Services) {
  return async function notifications(app: FastifyInstance) {
    const streams = eventStreams(app);

    app.get<{ Querystring: { unread?: boolean; before?: number; limit?: number } }>(
      '/api/v1/notifications',
      {
        schema: {
          tags: ['notifications'],
          summary: 'Your inbox, newest first, with the unread count (page with before=next_before)',
          querystring: {
            type: 'object',
            properties: {
              unread: { type: 'boolean' },
              before: { type: 'integer', minimum: 1 },
              limit: { type: 'integer', minimum: 1, maximum: 100 },
            },
          },
          response: {
            200: {
              type: 'object',
              properties: {
                notifications: { type: 'array', items: notificationSchema },
                unread: { type: 'integer' },
                next_before: { type: ['integer', 'null'] },
              },
            },
          },
        },
      },
      async (req) =>
        s.notifications.list(principalOf(req), {
          unreadOnly: req.query.unread,
          before: req.query.before,
          limit: req.query.limit,
        }),
    );

    app.get(
      '/api/v1/notifications/unread-count',
      {
        schema: {
          tags: ['notifications'],
          summary: 'How many of your notifications are unread',
          response: { 200: { type: 'object', properties: { unread: { type: 'integer' } } } },
        },
      },
      async (req) => ({ unread: await s.notifications.unreadCount(principalOf(req)) }),
    );

    app.post<{ Body: { ids?: number[]; all?: boolean } }>(
      '/api/v1/notifications/read',
      {
        schema: {
          tags: ['notifications'],
          summary: 'Mark notifications read: some by id, or all',
          body: {
            type: 'object',
            properties: { ids: { type: 'array', items: { type: 'integer' }, maxItems: 500 }, all: { type: 'boolean' } },
          },
          response: { 200: { type: 'object', properties: { unread: { type: 'integer' } } } },
        },
      },
      async (req) => s.notifications.markRead(principalOf(req), { ids: req.body?.ids, all: req.body?.all }),
    );

    /**
     * Server-Sent Events: `event: unread` first (the count), then `event: notification` (id = the
     * notification id) as they happen on any process, and `event: unread` when another tab marks
     * some read. A reconnecting EventSource sends Last-Event-ID and gets what it missed.
     */
    app.get<{ Querystring: { since?: number } }>(
      '/api/v1/notifications/stream',
      {
        schema: {
          tags: ['notifications'],
          summary: 'Live notifications as Server-Sent Events (EventSource sends the session cookie)',
          querystring: { type: 'object', properties: { since: { type: 'integer', minimum: 0 } } },
        },
      },
      async (req, reply) => {
        const actor = principalOf(req);
        if (actor.kind !== 'user') fail('FORBIDDEN', 'Notifications belong to signed-in people');
        const userId = actor.userId;
        const lastHeader = Number(req.headers['last-event-id']);
        let lastId = Number.isSafeInteger(lastHeader) && lastHeader > 0 ? lastHeader : (req.query.since ?? null);

        const stream = streams.open(req, reply);
        const write = stream.write;
        const send = (m: StreamMessage) => {
          if (m.t === 'notification') {
            if (lastId !== null && m.notification.id <= lastId) return;
            lastId = m.notification.id;
            write(`id: ${m.notification.id}\nevent: notification\ndata: ${JSON.stringify(m.notification)}\n\n`);
          }
          write(`event: unread\ndata: ${JSON.stringify({ unread: m.unread })}\n\n`);
        };

        // Subscribe before reading the backlog, so nothing published in between is lost; ids dedupe.
        const buffered: StreamMessage[] = [];
        let live = false;
        const unsubscribe = await s.notifications.subscribe(userId, (m) => (live ? send(m) : buffered.push(m)));
        stream.onEnd(() => unsubscribe().catch((err) => req.log.warn({ err }, 'notification stream unsubscribe failed')));

        if (lastId !== null) {
          const unread = await s.notifications.unreadCount(actor);
          for (const n of await s.notifications.since(userId, lastId)) send({ t: 'notification', notification: n, unread });
        }
        send({ t: 'unread', unread: await s.notifications.unreadCount(actor) });
        live = true;
        for (const m of buffered.splice(0)) send(m);
      },
    );
  };
}
