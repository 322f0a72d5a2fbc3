import type { FastifyInstance } from 'fastify';
import type { EventBus } from '../../adapters/bus/event-bus.js';
import { principalOf } from '../../http/auth.js';
import { eventStreams } from '../../http/sse.js';
import type { Services } from '../../services.js';
import type { DomainEvents, DomainEventType } from '../../shared/domain-events.js';

/**
 * A device page that keeps itself current (issue 12): whatever changes a device — presence, firmware,
 * binding, shares, error reports, logs, commands sent to it — is announced on the cluster bus under the
 * device's topic, by the process where it happened; every process holding an open page for it passes
 * the word on as a Server-Sent Event, and the page reloads what it shows. Only the kind of change
 * travels: the page reads the facts through the same permission-checked API as before.
 */
const LIVE_EVENTS = [
  'device.bound',
  'device.unbound',
  'device.activated',
  'device.online',
  'device.offline',
  'device.firmware_requested',
  'device.firmware_result',
  'device.status_requested',
  'device.error_report',
  'device.log_uploaded',
  'device.shared',
  'device.unshared',
] as const satisfies readonly DomainEventType[];

export const deviceTopic = (sn: string) => `device.live.${sn.toLowerCase()}`;

export interface DeviceLiveMessage {
  type: string;
  at: number;
}

/** Domain events of a device become one bus message on its topic (after their transaction committed). */
export function registerDeviceLive(events: DomainEvents, bus: EventBus): void {
  for (const type of LIVE_EVENTS) {
    events.on(type, async (e) => {
      await bus.publish(deviceTopic(e.sn), { type: e.type, at: e.at } satisfies DeviceLiveMessage);
    });
  }
}

/** Announces a change that is not a domain event (a command queued or delivered). */
export async function announceDeviceChange(bus: EventBus, sn: string, type: string, at: number): Promise<void> {
  await bus.publish(deviceTopic(sn), { type, at } satisfies DeviceLiveMessage);
}

export function deviceLiveRoutes(s: Services, bus: EventBus) {
  return async function deviceLive(app: FastifyInstance) {
    const streams = eventStreams(app);

    app.get<{ Params: { sn: string } }>(
      '/api/v1/devices/:sn/events',
      {
        schema: {
          tags: ['binding'],
          summary: "A device's changes as Server-Sent Events (`event: changed`), for those who may see its page",
          params: { type: 'object', required: ['sn'], properties: { sn: { type: 'string', maxLength: 64 } } },
        },
      },
      async (req, reply) => {
        const actor = principalOf(req);
        // The same check as the page itself: no page, no stream (404 for a device one may not see).
        const card = await s.management.card(actor, req.params.sn);
        const stream = streams.open(req, reply);
        const unsubscribe = await bus.subscribe(deviceTopic(card.sn), (m) => {
          const msg = m as DeviceLiveMessage;
          stream.write(`event: changed\ndata: ${JSON.stringify({ type: msg.type, at: msg.at })}\n\n`);
        });
        stream.onEnd(() => unsubscribe().catch((err) => req.log.warn({ err }, 'device stream unsubscribe failed')));
        stream.write(`event: ready\ndata: ${JSON.stringify({ sn: card.sn })}\n\n`);
      },
    );
  };
}
