import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { snKey } from '@bindery/protocol';
import type { Selectable } from 'kysely';
import { OutboundPolicy, OutboundRefusedError } from '../../adapters/outbound/policy.js';
import type { LimitRule } from '../../adapters/ratelimit/rate-limiter.js';
import type { CallbackEndpointsTable, WebhooksTable } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { AppError, type ErrorCode, fail } from '../../errors.js';
import { audit } from '../../shared/audit.js';
import type { BindMethod, DomainEvent, DomainEvents } from '../../shared/domain-events.js';
import { newId } from '../../shared/ids.js';
import { type Principal, requireVendor } from '../../shared/principal.js';
import type { DeviceRow } from '../devices/devices.repo.js';
import type { DevicesService } from '../devices/devices.service.js';
import type { ModelsService } from '../models/models.service.js';
import type { OrganisationsService } from '../organisations/organisations.service.js';
import { type DeliveryFilters, DeliveryLog, type DeliveryView, type WebhookOwner } from './delivery-log.js';
import { type AttemptResult, type ClaimedRow, Outbox, type OutboxItem, type OutboxOptions } from './outbox.js';
import {
  CALLBACK_TEST_EVENT,
  envelope,
  openCorpId,
  WEBHOOK_EVENTS,
  WEBHOOK_TEST_EVENT,
  type WebhookEvent,
  webhookData,
  webhookTestPayload,
  webhookType,
  wecomMessage,
} from './payloads.js';
import { postWebhook, postWecom, type WecomAttempt } from './transport.js';
import { verifyUnknownSn } from './verify-device.js';
import { type CallbackCredentials, isEncodingAesKey, newCallbackToken, newEncodingAesKey } from './wecom-crypto.js';

/** §B4.1: the bind callback may take 3 s, every other callback 1 s. */
export const BIND_DEADLINE_MS = 3_000;
export const CALLBACK_DEADLINE_MS = 1_000;
export const VERIFY_DEADLINE_MS = 1_000;
export const WEBHOOK_DEADLINE_MS = 5_000;

/** Domain events that become WeCom callbacks to the model URL (the bind callback is synchronous). */
const WECOM_EVENTS = new Set<string>([
  'device.unbound',
  'model.ticket_renewed',
  'device.firmware_requested',
  'device.status_requested',
  'device.user_scan',
]);
const HOOK_CACHE_MS = 5_000;
/**
 * Test events per target (webhook or callback URL) and minute: enough to fix an endpoint by trial,
 * too few to use the server as a load generator against a URL.
 */
export const TEST_EVENT_LIMIT: LimitRule = { name: 'callback_test', points: 10, windowSec: 60 };

export type { DeliveryFilters, DeliveryView, WebhookOwner } from './delivery-log.js';
export { CALLBACK_TEST_EVENT, envelope, openCorpId, WEBHOOK_EVENTS, WEBHOOK_TEST_EVENT, type WebhookEvent } from './payloads.js';

/** The bind errcodes of §B4.3 and what the binder is told. */
const BIND_REFUSALS: Record<number, ErrorCode> = {
  1: 'VENDOR_DEVICE_OFFLINE',
  2: 'VENDOR_DEVICE_ALREADY_BOUND',
  3: 'VENDOR_DEVICE_HAS_DATA',
  4: 'VENDOR_VERIF_CODE_WRONG',
  5: 'VENDOR_DEVICE_NOT_UNBOUND',
};

/** What the services need to issue and take back the bind callback's auth_code (device-tokens). */
export interface AuthCodes {
  issueAuthCode(input: { sn: string; modelId: string }): Promise<string>;
  revokeAuthCode(code: string): Promise<void>;
}

export interface CallbackSettingsView {
  id: string;
  kind: 'model' | 'vendor';
  vendor_id: string;
  model_id: string | null;
  url: string;
  token: string;
  encoding_aes_key: string;
  /** The receiveId / tousername the vendor decrypts with: the model id, or the vendor id for the provider URL. */
  receive_id: string;
  verify_device: boolean;
  updated_at: number;
}

export interface CallbackSettingsInput {
  url: string;
  token?: string;
  encoding_aes_key?: string;
  verify_device?: boolean;
}

export interface WebhookView {
  id: string;
  owner_type: 'vendor' | 'org';
  owner_id: string;
  url: string;
  events: WebhookEvent[] | null;
  created_at: number;
  disabled_at: number | null;
}

/** A callback or webhook URL as it may be saved: the outbound policy's refusals are OUTBOUND_URL_REFUSED. */
async function validUrl(policy: OutboundPolicy, u: unknown): Promise<string> {
  if (typeof u !== 'string' || u.length > 2048)
    fail('VALIDATION_FAILED', 'url must be an http(s) URL of at most 2048 characters');
  // Malformed input stays a validation error; the policy refuses well-formed URLs it will not reach.
  let parsed: URL;
  try {
    parsed = new URL(u);
  } catch {
    fail('VALIDATION_FAILED', 'url must be an absolute http(s) URL');
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') fail('VALIDATION_FAILED', 'url must use http or https');
  try {
    return (await policy.checkForSave(u)).toString();
  } catch (e) {
    if (e instanceof OutboundRefusedError) {
      fail('OUTBOUND_URL_REFUSED', `The server may not send requests to this URL: ${e.reason}`, { reason: e.reason });
    }
    throw e;
  }
}

function sec(ms: number): number {
  return Math.floor(ms / 1000);
}

/**
 * A WeCom test event proves that the URL answers and the vendor holds the same keys, so it is
 * judged tolerantly: any 2xx in time is delivered — an errcode (a vendor that refuses event types
 * it does not know) or a body that is not JSON stays in the log — except an encrypted reply that
 * does not verify, which shows the vendor's Token or EncodingAESKey differ.
 */
function judgeTestReply(r: WecomAttempt): AttemptResult {
  if (r.ok || r.timedOut || r.httpStatus === null || r.httpStatus < 200 || r.httpStatus > 299) return r;
  if (r.vendorReply?.kind === 'invalid' && r.vendorReply.wrongKeys) return r;
  return { ...r, ok: true };
}

/**
 * Vendor callbacks (§B4) and signed webhooks: the settings, the domain events that become
 * deliveries, the synchronous bind callback and verify_device, and the delivery log. Delivery
 * itself is the outbox's (outbox.ts); the crypto is wecom-crypto.ts.
 */
export class CallbacksService {
  readonly outbox: Outbox;
  readonly deliveries: DeliveryLog;
  /**
   * Reply deadlines (§B4.1). The bind's 3 s is the contract; the others are ours to choose, and a
   * test on a loaded machine may widen them.
   */
  readonly deadlines = {
    bindMs: BIND_DEADLINE_MS,
    callbackMs: CALLBACK_DEADLINE_MS,
    verifyMs: VERIFY_DEADLINE_MS,
    webhookMs: WEBHOOK_DEADLINE_MS,
  };
  /**
   * Active webhooks, cached briefly: lifecycle events (every connect and disconnect) must not
   * cost a query each when nobody listens. Another process sees a new webhook within HOOK_CACHE_MS.
   */
  private hooks: { until: number; rows: Selectable<WebhooksTable>[] } | null = null;
  /**
   * Every request this service makes goes through this policy (adapters/outbound). Public so a
   * test can give it a lookup seam; the allow-list is BINDERY_OUTBOUND_ALLOW.
   */
  outbound: OutboundPolicy;

  constructor(
    private readonly deps: Pick<Deps, 'db' | 'clock' | 'secrets' | 'logger' | 'config' | 'limiter'>,
    private readonly ctx: {
      models: ModelsService;
      devices: DevicesService;
      orgs: OrganisationsService;
      events: DomainEvents;
      authCodes: AuthCodes;
    },
    opts: OutboxOptions = {},
  ) {
    this.outbound = new OutboundPolicy({ allow: deps.config.outboundAllow });
    this.outbox = new Outbox(deps, (row) => this.deliver(row), opts);
    this.deliveries = new DeliveryLog(deps.db.kysely, deps.clock, this.outbox, (actor, owner) =>
      this.requireWebhookOwner(actor, owner),
    );
    this.listen(ctx.events);
  }

  private get db() {
    return this.deps.db.kysely;
  }

  // ── settings ──────────────────────────────────────────────────────────────

  private view(r: Selectable<CallbackEndpointsTable>): CallbackSettingsView {
    return {
      id: r.id,
      kind: r.kind as 'model' | 'vendor',
      vendor_id: r.vendor_id,
      model_id: r.model_id,
      url: r.url,
      token: this.deps.secrets.open(r.token_enc),
      encoding_aes_key: this.deps.secrets.open(r.aes_key_enc),
      receive_id: r.kind === 'model' ? r.model_id! : r.vendor_id,
      verify_device: r.verify_device === 1,
      updated_at: r.updated_at,
    };
  }

  private async endpoint(id: string): Promise<Selectable<CallbackEndpointsTable> | undefined> {
    return this.db.selectFrom('callback_endpoints').selectAll().where('id', '=', id).executeTakeFirst();
  }

  private credentials(r: Selectable<CallbackEndpointsTable>): CallbackCredentials {
    const v = this.view(r);
    return { token: v.token, encodingAesKey: v.encoding_aes_key, receiveId: v.receive_id };
  }

  async getModelCallback(actor: Principal, modelId: string): Promise<CallbackSettingsView> {
    await this.ctx.models.getRow(actor, modelId, 'integrations');
    const r = await this.endpoint(`model:${modelId}`);
    if (!r) fail('CALLBACK_NOT_SET', 'This model has no callback URL');
    return this.view(r);
  }

  async putModelCallback(actor: Principal, modelId: string, input: CallbackSettingsInput): Promise<CallbackSettingsView> {
    const m = await this.ctx.models.getRow(actor, modelId, 'integrations');
    if (input.verify_device !== undefined)
      fail('VALIDATION_FAILED', 'verify_device is a setting of the provider URL (the vendor)');
    return this.putEndpoint(actor, { id: `model:${modelId}`, kind: 'model', vendorId: m.vendor_id, modelId }, input);
  }

  async deleteModelCallback(actor: Principal, modelId: string): Promise<void> {
    await this.ctx.models.getRow(actor, modelId, 'integrations');
    await this.deleteEndpoint(actor, `model:${modelId}`);
  }

  private async requireVendorRow(actor: Principal, vendorId: string): Promise<void> {
    const v = await this.db.selectFrom('vendors').select('id').where('id', '=', vendorId).executeTakeFirst();
    if (!v) fail('VENDOR_NOT_FOUND');
    requireVendor(actor, vendorId, 'integrations');
  }

  async getVendorCallback(actor: Principal, vendorId: string): Promise<CallbackSettingsView> {
    await this.requireVendorRow(actor, vendorId);
    const r = await this.endpoint(`vendor:${vendorId}`);
    if (!r) fail('CALLBACK_NOT_SET', 'This vendor has no provider callback URL');
    return this.view(r);
  }

  async putVendorCallback(actor: Principal, vendorId: string, input: CallbackSettingsInput): Promise<CallbackSettingsView> {
    await this.requireVendorRow(actor, vendorId);
    return this.putEndpoint(actor, { id: `vendor:${vendorId}`, kind: 'vendor', vendorId, modelId: null }, input);
  }

  async deleteVendorCallback(actor: Principal, vendorId: string): Promise<void> {
    await this.requireVendorRow(actor, vendorId);
    await this.deleteEndpoint(actor, `vendor:${vendorId}`);
  }

  private async putEndpoint(
    actor: Principal,
    at: { id: string; kind: 'model' | 'vendor'; vendorId: string; modelId: string | null },
    input: CallbackSettingsInput,
  ): Promise<CallbackSettingsView> {
    const url = await validUrl(this.outbound, input.url);
    const cur = await this.endpoint(at.id);
    const token = input.token ?? (cur ? this.deps.secrets.open(cur.token_enc) : newCallbackToken());
    if (!/^[A-Za-z0-9]{1,32}$/.test(token)) fail('VALIDATION_FAILED', 'token must be 1–32 letters or digits');
    const key = input.encoding_aes_key ?? (cur ? this.deps.secrets.open(cur.aes_key_enc) : newEncodingAesKey());
    if (!isEncodingAesKey(key)) fail('VALIDATION_FAILED', 'encoding_aes_key must be 43 base64 characters (32 bytes)');
    const now = this.deps.clock.now();
    const values = {
      id: at.id,
      kind: at.kind,
      vendor_id: at.vendorId,
      model_id: at.modelId,
      url,
      token_enc: this.deps.secrets.seal(token),
      aes_key_enc: this.deps.secrets.seal(key),
      verify_device: (input.verify_device ?? cur?.verify_device === 1) ? 1 : 0,
      created_at: cur?.created_at ?? now,
      updated_at: now,
    };
    await this.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('callback_endpoints')
        .values(values)
        .onConflict((oc) =>
          oc.column('id').doUpdateSet({
            url: values.url,
            token_enc: values.token_enc,
            aes_key_enc: values.aes_key_enc,
            verify_device: values.verify_device,
            updated_at: now,
          }),
        )
        .execute();
      await audit(trx, now, actor, 'callback.set', at.id, { url, verify_device: values.verify_device === 1 });
    });
    return this.view((await this.endpoint(at.id))!);
  }

  private async deleteEndpoint(actor: Principal, id: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const r = await trx.deleteFrom('callback_endpoints').where('id', '=', id).executeTakeFirst();
      if (Number(r.numDeletedRows) !== 1) fail('CALLBACK_NOT_SET');
      await audit(trx, this.deps.clock.now(), actor, 'callback.delete', id);
    });
  }

  // ── webhooks ──────────────────────────────────────────────────────────────

  private async requireWebhookOwner(actor: Principal, owner: WebhookOwner): Promise<void> {
    if (owner.type === 'vendor') return this.requireVendorRow(actor, owner.id);
    if (owner.type === 'org') {
      const ctx = await this.ctx.orgs.context(actor, owner.id);
      this.ctx.orgs.requireSuperAdmin(ctx);
      return;
    }
    fail('VALIDATION_FAILED', 'owner must be a vendor or an organisation');
  }

  /** The secret is returned this once; it is stored sealed (the server must sign with it). */
  async createWebhook(
    actor: Principal,
    owner: WebhookOwner,
    input: { url: string; events?: string[] | null },
  ): Promise<{ webhook: WebhookView; secret: string }> {
    await this.requireWebhookOwner(actor, owner);
    const url = await validUrl(this.outbound, input.url);
    let events: WebhookEvent[] | null = null;
    if (input.events !== undefined && input.events !== null) {
      if (!Array.isArray(input.events) || input.events.some((e) => !WEBHOOK_EVENTS.includes(e as WebhookEvent))) {
        fail('VALIDATION_FAILED', `events must be a list of: ${WEBHOOK_EVENTS.join(', ')}`);
      }
      events = [...new Set(input.events as WebhookEvent[])];
    }
    const secret = `whsec_${randomBytes(24).toString('base64url')}`;
    const now = this.deps.clock.now();
    const id = newId('whk');
    await this.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('webhooks')
        .values({
          id,
          owner_type: owner.type,
          owner_id: owner.id,
          url,
          secret_enc: this.deps.secrets.seal(secret),
          events: events ? JSON.stringify(events) : null,
          created_by: actor.kind === 'user' ? `user:${actor.userId}` : actor.kind,
          created_at: now,
          disabled_at: null,
        })
        .execute();
      await audit(
        trx,
        now,
        actor,
        'webhook.create',
        `webhook:${id}`,
        { owner_type: owner.type, owner_id: owner.id, url, events },
        owner.type === 'org' ? owner.id : null,
      );
    });
    this.hooks = null;
    return {
      webhook: { id, owner_type: owner.type, owner_id: owner.id, url, events, created_at: now, disabled_at: null },
      secret,
    };
  }

  async listWebhooks(actor: Principal, owner: WebhookOwner): Promise<WebhookView[]> {
    await this.requireWebhookOwner(actor, owner);
    const rows = await this.db
      .selectFrom('webhooks')
      .selectAll()
      .where('owner_type', '=', owner.type)
      .where('owner_id', '=', owner.id)
      .where('disabled_at', 'is', null)
      .orderBy('created_at')
      .execute();
    return rows.map((r) => ({
      id: r.id,
      owner_type: r.owner_type as 'vendor' | 'org',
      owner_id: r.owner_id,
      url: r.url,
      events: r.events ? (JSON.parse(r.events) as WebhookEvent[]) : null,
      created_at: r.created_at,
      disabled_at: r.disabled_at,
    }));
  }

  /** Disables a webhook (kept for its delivery log); queued deliveries to it are failed. */
  async deleteWebhook(actor: Principal, id: string): Promise<void> {
    const w = await this.db.selectFrom('webhooks').selectAll().where('id', '=', id).executeTakeFirst();
    if (!w || w.disabled_at !== null) fail('WEBHOOK_NOT_FOUND');
    await this.requireWebhookOwner(actor, { type: w.owner_type as 'vendor' | 'org', id: w.owner_id });
    const now = this.deps.clock.now();
    await this.db.transaction().execute(async (trx) => {
      await trx.updateTable('webhooks').set({ disabled_at: now }).where('id', '=', id).execute();
      await audit(trx, now, actor, 'webhook.delete', `webhook:${id}`, undefined, w.owner_type === 'org' ? w.owner_id : null);
    });
    this.hooks = null;
  }

  // ── test events ───────────────────────────────────────────────────────────

  /** Sends a webhook its test event (`webhook.test`); the answer is the queued delivery. */
  async testWebhook(actor: Principal, id: string): Promise<DeliveryView> {
    const w = await this.db.selectFrom('webhooks').selectAll().where('id', '=', id).executeTakeFirst();
    if (!w || w.disabled_at !== null) fail('WEBHOOK_NOT_FOUND');
    const owner: WebhookOwner = { type: w.owner_type as 'vendor' | 'org', id: w.owner_id };
    await this.requireWebhookOwner(actor, owner);
    const now = this.deps.clock.now();
    return this.sendTest(actor, w.url, {
      id: newId('dlv'),
      targetKind: 'webhook',
      targetId: w.id,
      vendorId: owner.type === 'vendor' ? owner.id : null,
      orgId: owner.type === 'org' ? owner.id : null,
      sn: null,
      eventType: WEBHOOK_TEST_EVENT,
      payload: webhookTestPayload(newId('evt'), now, w),
    });
  }

  /** Sends the model's callback URL a test event (`bindery_test`), sealed like every callback. */
  async testModelCallback(actor: Principal, modelId: string): Promise<DeliveryView> {
    await this.ctx.models.getRow(actor, modelId, 'integrations');
    const ep = await this.endpoint(`model:${modelId}`);
    if (!ep) fail('CALLBACK_NOT_SET', 'This model has no callback URL');
    return this.testEndpoint(actor, ep);
  }

  /** Sends the vendor's provider general URL a test event (`bindery_test`). */
  async testVendorCallback(actor: Principal, vendorId: string): Promise<DeliveryView> {
    await this.requireVendorRow(actor, vendorId);
    const ep = await this.endpoint(`vendor:${vendorId}`);
    if (!ep) fail('CALLBACK_NOT_SET', 'This vendor has no provider callback URL');
    return this.testEndpoint(actor, ep);
  }

  private testEndpoint(actor: Principal, ep: Selectable<CallbackEndpointsTable>): Promise<DeliveryView> {
    const id = newId('dlv');
    const model = ep.kind === 'model' ? ep.model_id : null;
    // A model-level envelope (no device, no owner), like model_ticket.
    const payload = envelope('event', CALLBACK_TEST_EVENT, {
      reqId: id,
      createtime: sec(this.deps.clock.now()),
      modelId: model ?? undefined,
      serviceCorpid: ep.vendor_id,
    });
    return this.sendTest(actor, ep.url, {
      id,
      targetKind: ep.kind as 'model' | 'vendor',
      targetId: ep.id,
      vendorId: ep.vendor_id,
      orgId: null,
      sn: null,
      modelId: model,
      eventType: CALLBACK_TEST_EVENT,
      payload,
    });
  }

  /**
   * Queues one test delivery through the outbox, so the usual path sends it (the outbound policy,
   * the deadlines, the delivery log) and the request never waits on the target. It queues behind
   * nothing and is tried once. A URL the policy refuses now is refused here, before anything is
   * queued; each target takes TEST_EVENT_LIMIT.
   */
  private async sendTest(actor: Principal, url: string, item: OutboxItem & { id: string }): Promise<DeliveryView> {
    await validUrl(this.outbound, url);
    const lim = await this.deps.limiter.consume(TEST_EVENT_LIMIT, item.targetId);
    if (!lim.allowed) {
      fail('RATE_LIMITED', `At most ${TEST_EVENT_LIMIT.points} test events a minute to one URL; retry later`, {
        retry_after_sec: Math.max(1, Math.ceil(lim.retryAfterMs / 1000)),
      });
    }
    const now = this.deps.clock.now();
    const webhook = item.targetKind === 'webhook';
    await this.db.transaction().execute(async (trx) => {
      await this.outbox.enqueue([{ ...item, orderingKey: `${item.targetId}|test:${item.id}`, retryForMs: 0 }], trx);
      await audit(
        trx,
        now,
        actor,
        webhook ? 'webhook.test' : 'callback.test',
        webhook ? `webhook:${item.targetId}` : item.targetId,
        { delivery_id: item.id, url },
        webhook ? item.orgId : null,
      );
    });
    return this.deliveries.get(actor, item.id);
  }

  // ── the delivery log (delivery-log.ts) ───────────────────────────────────

  listDeliveries(actor: Principal, owner: WebhookOwner, f: DeliveryFilters = {}) {
    return this.deliveries.list(actor, owner, f);
  }

  getDelivery(actor: Principal, id: string): Promise<DeliveryView> {
    return this.deliveries.get(actor, id);
  }

  /** Sends a delivery again (a new row behind the device's other events); returns the new one. */
  redeliver(actor: Principal, id: string): Promise<DeliveryView> {
    return this.deliveries.redeliver(actor, id);
  }

  // ── delivering one row ────────────────────────────────────────────────────

  private async deliver(row: ClaimedRow): Promise<AttemptResult> {
    const now = this.deps.clock.now();
    if (row.targetKind === 'webhook') {
      const w = await this.db.selectFrom('webhooks').selectAll().where('id', '=', row.targetId).executeTakeFirst();
      if (!w || w.disabled_at !== null) {
        return { ok: false, permanent: true, httpStatus: null, errcode: null, error: 'the webhook was removed', durationMs: 0 };
      }
      return postWebhook(
        this.outbound,
        w.url,
        this.deps.secrets.open(w.secret_enc),
        { id: (row.payload as { id: string }).id, body: JSON.stringify(row.payload) },
        { timestampSec: sec(now), timeoutMs: this.deadlines.webhookMs },
      );
    }
    const ep = await this.endpoint(row.targetId);
    if (!ep) {
      return {
        ok: false,
        permanent: true,
        httpStatus: null,
        errcode: null,
        error: 'the callback URL was removed',
        durationMs: 0,
      };
    }
    const test = row.eventType === CALLBACK_TEST_EVENT;
    const r = await postWecom(this.outbound, ep.url, this.credentials(ep), JSON.stringify(row.payload), {
      timestampSec: sec(now),
      // A test of the provider URL gets verify_device's deadline: what its real events would get.
      timeoutMs:
        row.eventType === 'bind'
          ? this.deadlines.bindMs
          : test && ep.kind === 'vendor'
            ? this.deadlines.verifyMs
            : this.deadlines.callbackMs,
    });
    return test ? judgeTestReply(r) : r;
  }

  // ── the synchronous bind callback (§B4.1/§B4.3) ───────────────────────────

  /**
   * Tells the model's callback URL about a bind before it commits, with the 3 s deadline. The
   * vendor's errcode 1–5 (or any other non-zero) refuses the bind with the matching reason; no
   * answer in time, a network error or an HTTP error refuses it too. Returns what to call if the
   * bind fails afterwards (the auth_code is revoked), or null when the model has no callback URL.
   */
  async beforeBind(input: {
    device: DeviceRow;
    owner: { type: 'org' | 'user'; id: string };
    verifCode: string | null;
    method: BindMethod;
  }): Promise<(() => Promise<void>) | null> {
    const d = input.device;
    const ep = await this.endpoint(`model:${d.model_id}`);
    if (!ep) return null;
    // The vendor must hear of the device's earlier events (an unbind) before this bind.
    if (!(await this.outbox.drain({ targetId: ep.id, sn: d.sn }))) {
      throw new AppError('VENDOR_NO_ANSWER', undefined, { reason: 'earlier events for this device are still undelivered' });
    }
    const code = await this.ctx.authCodes.issueAuthCode({ sn: d.sn, modelId: d.model_id });
    const revoke = async () => {
      try {
        await this.ctx.authCodes.revokeAuthCode(code);
      } catch (err) {
        this.deps.logger.error({ err, sn: d.sn }, 'could not revoke the auth_code of a failed bind');
      }
    };
    const now = this.deps.clock.now();
    const id = newId('dlv');
    const payload = envelope('event', 'bind', {
      reqId: id,
      sn: d.sn,
      createtime: sec(now),
      modelId: d.model_id,
      authCorpid: openCorpId(input.owner.type, input.owner.id),
      serviceCorpid: d.vendor_id,
      extra: { auth_code: code, verif_code: input.verifCode ?? '' },
    });
    let r: Awaited<ReturnType<typeof postWecom>>;
    try {
      r = await postWecom(this.outbound, ep.url, this.credentials(ep), JSON.stringify(payload), {
        timestampSec: sec(now),
        timeoutMs: this.deadlines.bindMs,
      });
    } catch (err) {
      await revoke();
      throw err;
    }
    const item: OutboxItem = {
      id,
      targetKind: 'model',
      targetId: ep.id,
      vendorId: d.vendor_id,
      orgId: input.owner.type === 'org' ? input.owner.id : null,
      sn: d.sn,
      modelId: d.model_id,
      eventType: 'bind',
      payload,
    };
    try {
      await this.outbox.record(item, r);
    } catch (err) {
      this.deps.logger.error({ err, sn: d.sn }, 'could not log the bind callback');
    }
    if (r.ok) return revoke;
    await revoke();
    if (r.errcode !== null && r.errcode !== 0) {
      const code = BIND_REFUSALS[r.errcode];
      if (code) throw new AppError(code, undefined, { vendor_errcode: r.errcode });
      throw new AppError('VENDOR_REFUSED_BIND', `The device's vendor refused the bind (errcode ${r.errcode})`, {
        vendor_errcode: r.errcode,
      });
    }
    if (r.vendorReply?.kind === 'invalid') throw new AppError('VENDOR_BAD_REPLY', undefined, { reason: r.error });
    throw new AppError('VENDOR_NO_ANSWER', undefined, { http_status: r.httpStatus, reason: r.error });
  }

  // ── verify_device (provider URL) ──────────────────────────────────────────

  /**
   * An SN typed on the bind page that nobody registered: the vendors with verify_device on are
   * asked whether it is theirs (verify-device.ts). Returns whether the SN is now registered.
   */
  async verifyUnknownSn(sn: string, modelId?: string): Promise<boolean> {
    return verifyUnknownSn(
      {
        db: this.db,
        clock: this.deps.clock,
        logger: this.deps.logger,
        outbox: this.outbox,
        devices: this.ctx.devices,
        send: (ep, plaintext, timestampSec) =>
          postWecom(this.outbound, ep.url, this.credentials(ep), plaintext, { timestampSec, timeoutMs: this.deadlines.verifyMs }),
      },
      sn,
      modelId,
    );
  }

  // ── domain events → the outbox ────────────────────────────────────────────

  private listen(events: DomainEvents): void {
    const on = <T extends DomainEvent['type']>(type: T) => events.on(type, (e) => this.enqueueFor(e as DomainEvent));
    on('device.unbound');
    on('device.bound');
    on('model.ticket_renewed');
    on('device.firmware_requested');
    on('device.status_requested');
    on('device.user_scan');
    on('device.registered');
    on('device.activated');
    on('device.online');
    on('device.offline');
    on('device.firmware_result');
    on('device.error_report');
    on('device.log_uploaded');
    on('campaign.paused');
  }

  private async activeHooks(): Promise<Selectable<WebhooksTable>[]> {
    const t = performance.now();
    if (this.hooks && this.hooks.until > t) return this.hooks.rows;
    const rows = await this.db
      .selectFrom('webhooks')
      .selectAll()
      .where('disabled_at', 'is', null)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    this.hooks = { until: t + HOOK_CACHE_MS, rows };
    return rows;
  }

  /** Turns one domain event into outbox rows: the model URL's callback and every matching webhook. */
  async enqueueFor(e: DomainEvent): Promise<void> {
    const type = webhookType(e);
    const hooks = WEBHOOK_EVENTS.includes(type)
      ? (await this.activeHooks()).filter(
          (h) =>
            (h.owner_type === 'org' || (h.owner_type === 'vendor' && h.owner_id === e.vendorId)) &&
            (!h.events || (JSON.parse(h.events) as string[]).includes(type)),
        )
      : [];
    if (!WECOM_EVENTS.has(e.type) && hooks.length === 0) return;
    const items: OutboxItem[] = [];
    const owner = await this.ownerFor(e);
    const wecom = await this.wecomFor(e, owner);
    if (wecom) items.push(wecom);
    items.push(...this.webhooksFor(e, owner, hooks));
    if (items.length) await this.outbox.enqueue(items);
  }

  /** The device's owner at the time of the event (from the event when it says, else the device row). */
  private async ownerFor(e: DomainEvent): Promise<{ type: 'org' | 'user'; id: string } | null> {
    if (e.type === 'device.bound' || e.type === 'device.unbound') return { type: e.ownerType, id: e.ownerId };
    if (!('sn' in e) || e.type === 'device.registered') return null;
    const d = await this.db
      .selectFrom('devices')
      .select(['owner_type', 'owner_id'])
      .where('sn_key', '=', snKey(e.sn))
      .executeTakeFirst();
    if (!d?.owner_id || !d.owner_type) return null;
    return { type: d.owner_type as 'org' | 'user', id: d.owner_id };
  }

  private async wecomFor(e: DomainEvent, owner: { type: 'org' | 'user'; id: string } | null): Promise<OutboxItem | null> {
    const m = wecomMessage(e);
    if (!m) return null;
    const { msgType, kind, extra } = m;
    const ep = await this.endpoint(`model:${e.modelId}`);
    if (!ep) return null;
    const id = newId('dlv');
    const sn = 'sn' in e ? e.sn : null;
    const payload = envelope(msgType, kind, {
      reqId: id,
      sn: sn ?? undefined,
      createtime: sec(e.at),
      modelId: e.modelId,
      authCorpid: owner ? openCorpId(owner.type, owner.id) : undefined,
      serviceCorpid: e.vendorId,
      extra,
    });
    return {
      id,
      targetKind: 'model',
      targetId: ep.id,
      vendorId: e.vendorId,
      orgId: owner?.type === 'org' ? owner.id : null,
      sn,
      modelId: e.modelId,
      eventType: kind,
      payload,
    };
  }

  /** The vendor's hooks, and the owning organisation's when an organisation owns the device. */
  private webhooksFor(
    e: DomainEvent,
    owner: { type: 'org' | 'user'; id: string } | null,
    hooks: Selectable<WebhooksTable>[],
  ): OutboxItem[] {
    if (!('sn' in e) && e.type !== 'campaign.paused') return [];
    const type = webhookType(e);
    const data = webhookData(e);
    const items: OutboxItem[] = [];
    for (const h of hooks) {
      if (h.owner_type === 'org' && !(owner?.type === 'org' && owner.id === h.owner_id)) continue;
      const id = newId('evt');
      items.push({
        id: newId('dlv'),
        targetKind: 'webhook',
        targetId: h.id,
        vendorId: h.owner_type === 'vendor' ? h.owner_id : null,
        orgId: h.owner_type === 'org' ? h.owner_id : null,
        sn: 'sn' in e ? e.sn : null,
        eventType: type,
        payload: { id, type, created_at: new Date(e.at).toISOString(), data },
      });
    }
    return items;
  }
}
