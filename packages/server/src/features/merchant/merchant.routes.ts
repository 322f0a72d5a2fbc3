import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, ERRORS, type ErrorCode } from '../../errors.js';
import { redactUrl } from '../../http/redact.js';
import type { Services } from '../../services.js';
import type { MerchantCaller, V3ReplyContext } from './merchant.service.js';
import { AUTH_SCHEME } from './v3-auth.js';

/**
 * The WeChat Pay v3 surface, registered under /v3 in its own encapsulated context: its own body
 * parser (the raw body is part of the signature), error and not-found handlers answering
 * {code, message, detail}, and an onSend hook that signs every reply — errors and 204s too.
 */
interface V3State {
  ctx: V3ReplyContext;
  caller: MerchantCaller | null;
  rawBody: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    v3: V3State | null;
  }
}

const V3_CODES = new Set<ErrorCode>([
  'PARAM_ERROR',
  'INVALID_REQUEST',
  'SIGN_ERROR',
  'NO_AUTH',
  'RESOURCE_NOT_EXISTS',
  'NOT_FOUND',
  'FREQUENCY_LIMITED',
  'SYSTEM_ERROR',
]);

/** Bindery's own codes as the v3 surface names them. */
const AS_V3: Partial<Record<ErrorCode, ErrorCode>> = {
  VALIDATION_FAILED: 'PARAM_ERROR',
  INVALID_SN: 'PARAM_ERROR',
  UNAUTHENTICATED: 'SIGN_ERROR',
  INVALID_CREDENTIALS: 'SIGN_ERROR',
  FORBIDDEN: 'NO_AUTH',
  DEVICE_NOT_FOUND: 'RESOURCE_NOT_EXISTS',
  MERCHANT_NOT_FOUND: 'RESOURCE_NOT_EXISTS',
  RATE_LIMITED: 'FREQUENCY_LIMITED',
  PAYLOAD_TOO_LARGE: 'INVALID_REQUEST',
  UNSUPPORTED_MEDIA_TYPE: 'INVALID_REQUEST',
};

/** v3 JSON never carries null: drop null and undefined members, deeply. */
function withoutNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.filter((x) => x !== null && x !== undefined).map(withoutNulls);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== null && x !== undefined) out[k] = withoutNulls(x);
    return out;
  }
  return v;
}

interface V3Error {
  status: number;
  body: { code: string; message: string; detail?: unknown };
}

function toV3Error(err: FastifyError | AppError, req: FastifyRequest): V3Error {
  const v3 = (code: ErrorCode, message?: string, detail?: unknown): V3Error => ({
    status: ERRORS[code].status,
    body: { code, message: message ?? ERRORS[code].message, ...(detail !== undefined ? { detail: withoutNulls(detail) } : {}) },
  });
  if (err instanceof AppError) {
    const code = V3_CODES.has(err.code) ? err.code : AS_V3[err.code];
    if (code) return v3(code, err.message === ERRORS[err.code].message ? undefined : err.message, err.details);
    if (err.status < 500) return v3('INVALID_REQUEST', err.message, err.details);
  } else if (err.validation) {
    const first = err.validation[0];
    const params = (first?.params ?? {}) as { missingProperty?: string };
    const field = params.missingProperty ?? first?.instancePath.replace(/^\//, '').split('/')[0] ?? '';
    const location = err.validationContext === 'querystring' ? 'query' : (err.validationContext ?? 'query');
    const source = (location === 'query' ? req.query : location === 'params' ? req.params : req.body) as Record<string, unknown>;
    const value = source?.[field];
    return v3('PARAM_ERROR', `Parameter ${field} is invalid: ${field} ${first?.message ?? 'is invalid'}`, {
      field,
      ...(value !== undefined ? { value } : {}),
      issue: `${params.missingProperty ? 'required' : (first?.message ?? 'invalid')}`,
      location: location === 'params' ? 'path' : location,
    });
  } else if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return v3('INVALID_REQUEST', err.message);
  } else if (err.statusCode && err.statusCode < 500) {
    return v3('INVALID_REQUEST', err.message);
  }
  req.log.error({ err }, 'unhandled error on /v3');
  return v3('SYSTEM_ERROR');
}

const v3Security = { security: [] };
const errorRef = {
  type: 'object',
  properties: { code: { type: 'string' }, message: { type: 'string' }, detail: { type: 'object', additionalProperties: true } },
} as const;
const s = (description: string) => ({ type: 'string', description }) as const;

const deviceSchema = {
  type: 'object',
  properties: {
    device_sn: s('Device serial number'),
    camera_sn: s('Camera serial number (omitted when unknown)'),
    device_category_code: s('Category code (seed 002)'),
    device_category: s('Category name'),
    device_class_code: s('Class code (seed 002)'),
    device_class: s('Class name'),
    device_model: s("The model's name"),
    app_scene_code: s('App-scene code'),
    app_scene: s('App-scene name'),
    operating_system: s('ANDROID / LINUX / WINDOWS'),
    activation_status: { type: 'string', enum: ['ACTIVATED', 'INACTIVATED'] },
    activation_time: s('RFC 3339 with milliseconds, China time'),
    mchid: s("The merchant's mchid"),
    merchant_shortname: s("The merchant's short name"),
    sub_mchid: s("The sub-merchant's mchid, for a sub-merchant's device"),
    sub_merchant_shortname: s("The sub-merchant's short name"),
  },
} as const;

const pageSchema = {
  type: 'object',
  properties: {
    data: { type: 'array', items: deviceSchema },
    offset: { type: 'integer' },
    limit: { type: 'integer' },
    total_count: { type: 'integer' },
    links: { type: 'object', properties: { next: { type: 'string' }, prev: { type: 'string' }, self: { type: 'string' } } },
  },
} as const;

const inspectionSchema = {
  type: 'object',
  properties: {
    device_sn: { type: 'string' },
    wired_mac: { type: 'string' },
    wireless_mac: { type: 'string' },
    bluetooth_mac: { type: 'string' },
    app_version: { type: 'string' },
    camera_sn: { type: 'string' },
    imei: { type: 'string' },
    result: { type: 'string', enum: ['SUCCESS', 'WARN', 'FAIL'] },
    errors: { type: 'array', items: { type: 'string' } },
    warnings: { type: 'array', items: { type: 'string' } },
    inspect_time: { type: 'string' },
  },
} as const;

const AUTH_NOTE = `Signed with \`Authorization: ${AUTH_SCHEME} mchid="…",nonce_str="…",timestamp="…",serial_no="…",signature="…"\` (docs/merchant-api.md); every reply carries Wechatpay-Timestamp/Nonce/Serial/Signature.`;

export function merchantV3Routes(svc: Services) {
  return async function merchantV3(app: FastifyInstance) {
    app.decorateRequest('v3', null);
    // The signature covers the body exactly as sent, so keep it as text before parsing.
    app.removeContentTypeParser('application/json');
    app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
      const text = String(body);
      if (req.v3) req.v3.rawBody = text;
      if (text === '') return done(null, undefined);
      try {
        done(null, JSON.parse(text));
      } catch {
        done(new AppError('INVALID_REQUEST', 'The body is not valid JSON'), undefined);
      }
    });

    app.addHook('onRequest', async (req) => {
      const asked = req.headers['wechatpay-serial'];
      req.v3 = {
        ctx: { keyMode: 'public_key', ...(typeof asked === 'string' ? { requestedSerial: asked } : {}) },
        caller: null,
        rawBody: '',
      };
    });

    app.addHook('onSend', async (req, reply, payload) => {
      let body: string;
      if (payload === null || payload === undefined) body = '';
      else if (typeof payload === 'string') body = payload;
      else if (Buffer.isBuffer(payload)) body = payload.toString('utf8');
      else throw new Error('a /v3 reply must not be streamed: it could not be signed');
      const sig = await svc.merchant.signReply(body, req.v3?.ctx ?? { keyMode: 'public_key' });
      reply.header('Request-ID', req.id);
      reply.header('Wechatpay-Timestamp', sig.timestamp);
      reply.header('Wechatpay-Nonce', sig.nonce);
      reply.header('Wechatpay-Serial', sig.serial);
      reply.header('Wechatpay-Signature', sig.signature);
      reply.header('Wechatpay-Signature-Type', AUTH_SCHEME);
      return payload === null || payload === undefined ? payload : body;
    });

    app.setErrorHandler((err: FastifyError | AppError, req, reply) => {
      const e = toV3Error(err, req);
      return reply.status(e.status).send(e.body);
    });
    app.setNotFoundHandler((req, reply) =>
      reply.status(404).send({ code: 'NOT_FOUND', message: `No route ${req.method} ${redactUrl(req.url.split('?')[0] ?? '')}` }),
    );

    /** Runs before schema validation: a request is authenticated before its parameters are judged. */
    const authenticate = async (req: FastifyRequest, _reply: FastifyReply) => {
      const state = req.v3!;
      state.caller = await svc.merchant.authenticate(
        {
          method: req.method,
          url: req.raw.url ?? req.url,
          authorization: req.headers.authorization,
          body: state.rawBody,
          // Limits count per endpoint (seed 002 rules 20000730/20000731): the route that matched.
          endpoint: `${req.method} ${req.routeOptions.url ?? ''}`,
        },
        state.ctx,
      );
    };
    const caller = (req: FastifyRequest) => req.v3!.caller!;

    app.get<{ Querystring: { limit: number; offset: number } }>(
      '/iotmanage/devices',
      {
        config: { access: 'external' },
        preValidation: authenticate,
        // A HEAD reply would carry the signature of a body it does not send.
        exposeHeadRoute: false,
        schema: {
          tags: ['merchant v3'],
          summary: "A page of the merchant's devices (WeChat Pay v3 iotmanage)",
          description: `limit 1–100 and offset are required. ${AUTH_NOTE}`,
          ...v3Security,
          querystring: {
            type: 'object',
            required: ['limit', 'offset'],
            properties: {
              limit: { type: 'integer', minimum: 1, maximum: 100 },
              offset: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
            },
          },
          response: { 200: pageSchema, '4xx': errorRef, '5xx': errorRef },
        },
      },
      async (req) => svc.merchant.listDevices(caller(req), req.query.offset, req.query.limit),
    );

    app.get<{ Params: { device_sn: string } }>(
      '/iotmanage/device-inspections/:device_sn',
      {
        config: { access: 'external' },
        preValidation: authenticate,
        // A HEAD reply would carry the signature of a body it does not send.
        exposeHeadRoute: false,
        schema: {
          tags: ['merchant v3'],
          summary: "A device's factory inspection record (WeChat Pay v3 iotmanage)",
          description: `Only for devices in the calling merchant's fleet. ${AUTH_NOTE}`,
          ...v3Security,
          params: { type: 'object', properties: { device_sn: { type: 'string' } } },
          response: { 200: inspectionSchema, '4xx': errorRef, '5xx': errorRef },
        },
      },
      async (req) => svc.inspections.forMerchant(caller(req), req.params.device_sn),
    );

    app.get(
      '/certificates',
      {
        config: { access: 'external' },
        preValidation: authenticate,
        // A HEAD reply would carry the signature of a body it does not send.
        exposeHeadRoute: false,
        schema: {
          tags: ['merchant v3'],
          summary: "The platform certificate, encrypted with AES-256-GCM under the merchant's APIv3 key",
          description: `For clients in platform-certificate mode. ${AUTH_NOTE}`,
          ...v3Security,
          response: { '4xx': errorRef, '5xx': errorRef },
        },
      },
      async (req) => svc.merchant.certificates(caller(req)),
    );
  };
}
