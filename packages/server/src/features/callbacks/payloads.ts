import type { DomainEvent } from '../../shared/domain-events.js';

/**
 * What a delivery says: the WeCom plaintext envelope of §B4.2 and the webhook events with their
 * data, derived from domain events. No I/O; the service decides where each goes.
 */

export const WEBHOOK_EVENTS = [
  'device.registered',
  'device.activated',
  'device.bound',
  'device.unbound',
  'device.online',
  'device.offline',
  'device.firmware_result',
  'device.error_report',
  'device.log_uploaded',
  /** A firmware campaign paused itself (domain event campaign.paused; features/campaigns). */
  'rollout.paused',
] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/**
 * The test event a vendor or an organisation sends to check a webhook (console: "Send test event").
 * Not a device event: it is never filtered by the webhook's `events` and is tried once.
 */
export const WEBHOOK_TEST_EVENT = 'webhook.test';
/**
 * The same for a WeCom-style callback URL. §B4 has no test event, so this is Bindery's own
 * event_type (docs/callbacks.md#test-events); WeCom's vendor code ignores types it does not know.
 */
export const CALLBACK_TEST_EVENT = 'bindery_test';
export const TEST_EVENTS: ReadonlySet<string> = new Set([WEBHOOK_TEST_EVENT, CALLBACK_TEST_EVENT]);

/** A webhook's test event: the envelope of every webhook event, `data` naming the webhook. */
export function webhookTestPayload(
  eventId: string,
  at: number,
  hook: { id: string; owner_type: string; owner_id: string },
): Record<string, unknown> {
  return {
    id: eventId,
    type: WEBHOOK_TEST_EVENT,
    created_at: new Date(at).toISOString(),
    data: { webhook_id: hook.id, owner_type: hook.owner_type, owner_id: hook.owner_id },
  };
}

/** The auth_corpid of §B4.2: an organisation's id; a personal space is `user:<id>`. */
export function openCorpId(type: 'org' | 'user', id: string): string {
  return type === 'org' ? id : `user:${id}`;
}

/** The common plaintext envelope (§B4.2). Model-level events leave out device_sn and auth_corpid. */
export function envelope(
  msgType: 'event' | 'command',
  kind: string,
  b: {
    reqId: string;
    sn?: string;
    createtime: number;
    modelId?: string;
    authCorpid?: string;
    serviceCorpid: string;
    extra?: Record<string, unknown>;
  },
): Record<string, unknown> {
  const base_info: Record<string, unknown> = { req_id: b.reqId };
  if (b.sn !== undefined) base_info.device_sn = b.sn;
  base_info.createtime = b.createtime;
  if (b.modelId !== undefined) base_info.model_id = b.modelId;
  if (b.authCorpid !== undefined) base_info.auth_corpid = b.authCorpid;
  base_info.service_corpid = b.serviceCorpid;
  const body = msgType === 'event' ? { event_type: kind, ...b.extra } : { command_type: kind, ...b.extra };
  return { msg_type: msgType, base_info, [msgType]: body };
}

/** The webhook event a domain event is delivered as (most keep their name). */
export function webhookType(e: DomainEvent): WebhookEvent {
  return (e.type === 'campaign.paused' ? 'rollout.paused' : e.type) as WebhookEvent;
}

export function webhookData(e: DomainEvent): Record<string, unknown> {
  if (e.type === 'campaign.paused') {
    return {
      campaign_id: e.campaignId,
      vendor_id: e.vendorId,
      model_id: e.modelId,
      name: e.name,
      version: e.version,
      criterion: e.criterion,
      reason: e.reason,
      figures: e.figures,
    };
  }
  if (!('sn' in e)) return {};
  const base = { sn: e.sn, model_id: e.modelId, vendor_id: e.vendorId };
  switch (e.type) {
    case 'device.bound':
      return { ...base, owner_type: e.ownerType, owner_id: e.ownerId, method: e.method ?? null, transfer: e.transfer ?? false };
    case 'device.unbound':
      return { ...base, owner_type: e.ownerType, owner_id: e.ownerId, transfer: e.transfer ?? false };
    case 'device.online':
    case 'device.offline':
      return { ...base, via: e.via };
    case 'device.firmware_result':
      return { ...base, oper_id: e.operId, errcode: e.errcode, errmsg: e.errmsg, cur_version: e.curVersion };
    case 'device.error_report':
      return { ...base, report_id: e.reportId };
    case 'device.log_uploaded':
      return { ...base, log_id: e.logId };
    default:
      return base;
  }
}

/**
 * The WeCom callback a domain event becomes (§B4): an event or a command, its kind and fields;
 * null for events that are not WeCom callbacks (the bind callback is synchronous, elsewhere).
 */
export function wecomMessage(
  e: DomainEvent,
): { msgType: 'event' | 'command'; kind: string; extra: Record<string, unknown> } | null {
  let msgType: 'event' | 'command';
  let kind: string;
  let extra: Record<string, unknown> = {};
  switch (e.type) {
    case 'device.unbound':
      // A transfer's unbind is superseded by the new owner's bind callback, already sent.
      if (e.transfer) return null;
      msgType = 'event';
      kind = 'unbind';
      break;
    case 'model.ticket_renewed':
      msgType = 'event';
      kind = 'model_ticket';
      extra = { model_ticket: e.ticket };
      break;
    case 'device.firmware_requested':
      msgType = 'command';
      kind = 'update_firmware';
      extra = { oper_id: e.operId };
      break;
    case 'device.status_requested':
      msgType = 'command';
      kind = 'fetch_device_status';
      break;
    case 'device.user_scan':
      msgType = 'command';
      kind = 'user_scan';
      extra = { oper_id: e.operId, open_userid: e.userId, state: e.state, user_type: e.userType };
      break;
    default:
      return null;
  }
  return { msgType, kind, extra };
}
