import type { FastifyInstance } from 'fastify';
import { principalOf } from '../../http/auth.js';
import type { Services } from '../../services.js';
import { type CallbackSettingsInput, type DeliveryFilters, WEBHOOK_EVENTS, type WebhookOwner } from './callbacks.service.js';

const settingsBody = (withVerify: boolean) =>
  ({
    type: 'object',
    required: ['url'],
    additionalProperties: false,
    properties: {
      url: { type: 'string', minLength: 1, maxLength: 2048 },
      token: { type: 'string', pattern: '^[A-Za-z0-9]{1,32}$', description: 'Generated when absent' },
      encoding_aes_key: { type: 'string', pattern: '^[A-Za-z0-9+/]{43}$', description: 'Generated when absent' },
      ...(withVerify
        ? { verify_device: { type: 'boolean', description: 'Ask this URL about unknown SNs typed on the bind page' } }
        : {}),
    },
  }) as const;

const webhookBody = {
  type: 'object',
  required: ['url'],
  additionalProperties: false,
  properties: {
    url: { type: 'string', minLength: 1, maxLength: 2048 },
    events: { type: 'array', items: { type: 'string', enum: [...WEBHOOK_EVENTS] }, nullable: true },
  },
} as const;

const deliveryQuery = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['pending', 'delivered', 'failed'] },
    event_type: { type: 'string', maxLength: 64 },
    sn: { type: 'string', maxLength: 128 },
    cursor: { type: 'string', maxLength: 64 },
    limit: { type: 'integer', minimum: 1, maximum: 200 },
  },
} as const;

const nullableInt = { type: ['integer', 'null'] } as const;
const nullableString = { type: ['string', 'null'] } as const;

/** Response shapes (so the console's generated types know them); times are epoch milliseconds. */
const webhookSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    owner_type: { type: 'string', enum: ['vendor', 'org'] },
    owner_id: { type: 'string' },
    url: { type: 'string' },
    events: { type: ['array', 'null'], items: { type: 'string', enum: [...WEBHOOK_EVENTS] } },
    created_at: { type: 'integer' },
    disabled_at: nullableInt,
  },
  required: ['id', 'owner_type', 'owner_id', 'url', 'events', 'created_at', 'disabled_at'],
} as const;

const deliverySchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    vendor_id: nullableString,
    org_id: nullableString,
    target: { type: 'object', properties: { kind: { type: 'string' }, id: { type: 'string' } }, required: ['kind', 'id'] },
    event_type: { type: 'string' },
    sn: nullableString,
    status: { type: 'string', enum: ['pending', 'delivered', 'failed'] },
    attempts: { type: 'integer' },
    next_attempt_at: nullableInt,
    created_at: { type: 'integer' },
    finished_at: nullableInt,
    last_http_status: nullableInt,
    last_error: nullableString,
    reply: {},
    redelivery_of: nullableString,
    attempt_log: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          at: { type: 'integer' },
          http_status: nullableInt,
          errcode: nullableInt,
          error: nullableString,
          duration_ms: { type: 'integer' },
        },
        required: ['at', 'http_status', 'errcode', 'error', 'duration_ms'],
      },
    },
  },
  required: [
    'id',
    'target',
    'event_type',
    'sn',
    'status',
    'attempts',
    'next_attempt_at',
    'created_at',
    'finished_at',
    'last_http_status',
    'last_error',
    'redelivery_of',
    'attempt_log',
  ],
} as const;

/** A test event's answer: the queued delivery (pending), to follow with GET /api/v1/deliveries/{id}. */
const testResponse = {
  202: { type: 'object', properties: { delivery: deliverySchema }, required: ['delivery'] },
} as const;

/** Callback URLs, webhooks and the delivery log (docs/callbacks.md). */
export function callbacksRoutes(s: Services) {
  return async function callbacks(app: FastifyInstance) {
    const c = s.callbacks;

    app.get<{ Params: { modelId: string } }>(
      '/api/v1/models/:modelId/callback',
      { schema: { tags: ['callbacks'], summary: "The model's callback URL, Token and EncodingAESKey (§B4.1)" } },
      async (req) => ({ callback: await c.getModelCallback(principalOf(req), req.params.modelId) }),
    );
    app.put<{ Params: { modelId: string }; Body: CallbackSettingsInput }>(
      '/api/v1/models/:modelId/callback',
      {
        schema: {
          tags: ['callbacks'],
          summary: "Set the model's callback URL; Token and EncodingAESKey are generated unless given",
          body: settingsBody(false),
        },
      },
      async (req) => ({ callback: await c.putModelCallback(principalOf(req), req.params.modelId, req.body) }),
    );
    app.delete<{ Params: { modelId: string } }>(
      '/api/v1/models/:modelId/callback',
      { schema: { tags: ['callbacks'], summary: "Remove the model's callback URL (nothing more is queued for it)" } },
      async (req, reply) => {
        await c.deleteModelCallback(principalOf(req), req.params.modelId);
        return reply.status(204).send();
      },
    );

    app.post<{ Params: { modelId: string } }>(
      '/api/v1/models/:modelId/callback/test',
      {
        schema: {
          tags: ['callbacks'],
          summary: "Send the model's callback URL a test event (bindery_test, sealed like every callback; tried once)",
          response: testResponse,
        },
      },
      async (req, reply) => reply.status(202).send({ delivery: await c.testModelCallback(principalOf(req), req.params.modelId) }),
    );

    app.get<{ Params: { vendorId: string } }>(
      '/api/v1/vendors/:vendorId/callback',
      { schema: { tags: ['callbacks'], summary: "The vendor's provider general URL (verify_device)" } },
      async (req) => ({ callback: await c.getVendorCallback(principalOf(req), req.params.vendorId) }),
    );
    app.put<{ Params: { vendorId: string }; Body: CallbackSettingsInput }>(
      '/api/v1/vendors/:vendorId/callback',
      {
        schema: {
          tags: ['callbacks'],
          summary: "Set the vendor's provider general URL and the verify_device switch",
          body: settingsBody(true),
        },
      },
      async (req) => ({ callback: await c.putVendorCallback(principalOf(req), req.params.vendorId, req.body) }),
    );
    app.delete<{ Params: { vendorId: string } }>(
      '/api/v1/vendors/:vendorId/callback',
      { schema: { tags: ['callbacks'], summary: "Remove the vendor's provider general URL" } },
      async (req, reply) => {
        await c.deleteVendorCallback(principalOf(req), req.params.vendorId);
        return reply.status(204).send();
      },
    );

    app.post<{ Params: { vendorId: string } }>(
      '/api/v1/vendors/:vendorId/callback/test',
      {
        schema: {
          tags: ['callbacks'],
          summary: "Send the vendor's provider general URL a test event (bindery_test; tried once)",
          response: testResponse,
        },
      },
      async (req, reply) =>
        reply.status(202).send({ delivery: await c.testVendorCallback(principalOf(req), req.params.vendorId) }),
    );

    const owners: Array<{ prefix: string; param: 'vendorId' | 'orgId'; type: WebhookOwner['type']; who: string }> = [
      { prefix: '/api/v1/vendors/:vendorId', param: 'vendorId', type: 'vendor', who: "a vendor's devices" },
      { prefix: '/api/v1/organisations/:orgId', param: 'orgId', type: 'org', who: "an organisation's devices (super admins)" },
    ];
    for (const o of owners) {
      const owner = (params: Record<string, string>): WebhookOwner => ({ type: o.type, id: params[o.param]! });
      app.post<{ Params: Record<string, string>; Body: { url: string; events?: string[] | null } }>(
        `${o.prefix}/webhooks`,
        {
          schema: {
            tags: ['callbacks'],
            summary: `Register a signed JSON webhook for ${o.who}; the secret is shown once`,
            body: webhookBody,
            response: {
              201: {
                type: 'object',
                properties: { webhook: webhookSchema, secret: { type: 'string' } },
                required: ['webhook', 'secret'],
              },
            },
          },
        },
        async (req, reply) => reply.status(201).send(await c.createWebhook(principalOf(req), owner(req.params), req.body)),
      );
      app.get<{ Params: Record<string, string> }>(
        `${o.prefix}/webhooks`,
        {
          schema: {
            tags: ['callbacks'],
            summary: `List the webhooks of ${o.who}`,
            response: {
              200: { type: 'object', properties: { webhooks: { type: 'array', items: webhookSchema } }, required: ['webhooks'] },
            },
          },
        },
        async (req) => ({ webhooks: await c.listWebhooks(principalOf(req), owner(req.params)) }),
      );
      app.get<{ Params: Record<string, string>; Querystring: DeliveryFilters }>(
        `${o.prefix}/deliveries`,
        {
          schema: {
            tags: ['callbacks'],
            summary: 'The delivery log, newest first, with every attempt (filters: status, event_type, sn; cursor paging)',
            querystring: deliveryQuery,
            response: {
              200: {
                type: 'object',
                properties: { deliveries: { type: 'array', items: deliverySchema }, next_cursor: nullableString },
                required: ['deliveries', 'next_cursor'],
              },
            },
          },
        },
        async (req) => c.listDeliveries(principalOf(req), owner(req.params), req.query),
      );
    }

    app.post<{ Params: { sn: string } }>(
      '/api/v1/devices/:sn/actions/fetch-status',
      {
        schema: {
          tags: ['callbacks'],
          summary: 'Ask a device behind a vendor cloud for fresh status (the fetch_device_status callback)',
        },
      },
      async (req, reply) => reply.status(202).send(await s.management.requestStatus(principalOf(req), req.params.sn)),
    );

    app.delete<{ Params: { id: string } }>(
      '/api/v1/webhooks/:id',
      { schema: { tags: ['callbacks'], summary: 'Remove a webhook; its queued deliveries fail' } },
      async (req, reply) => {
        await c.deleteWebhook(principalOf(req), req.params.id);
        return reply.status(204).send();
      },
    );
    app.post<{ Params: { id: string } }>(
      '/api/v1/webhooks/:id/test',
      {
        schema: {
          tags: ['callbacks'],
          summary: 'Send a webhook (a vendor’s or an organisation’s) a test event (webhook.test; tried once)',
          response: testResponse,
        },
      },
      async (req, reply) => reply.status(202).send({ delivery: await c.testWebhook(principalOf(req), req.params.id) }),
    );
    app.get<{ Params: { id: string } }>(
      '/api/v1/deliveries/:id',
      {
        schema: {
          tags: ['callbacks'],
          summary: 'One delivery with every attempt',
          response: { 200: { type: 'object', properties: { delivery: deliverySchema }, required: ['delivery'] } },
        },
      },
      async (req) => ({ delivery: await c.getDelivery(principalOf(req), req.params.id) }),
    );
    app.post<{ Params: { id: string } }>(
      '/api/v1/deliveries/:id/redeliver',
      {
        schema: {
          tags: ['callbacks'],
          summary: 'Send a finished or failed delivery again (queued behind the device’s other events)',
          response: { 202: { type: 'object', properties: { delivery: deliverySchema }, required: ['delivery'] } },
        },
      },
      async (req, reply) => reply.status(202).send({ delivery: await c.redeliver(principalOf(req), req.params.id) }),
    );
  };
}
