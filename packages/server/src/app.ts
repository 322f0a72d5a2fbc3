import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import helmet from '@fastify/helmet';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import type { Deps } from './deps.js';
import { AppError } from './errors.js';
import { accountsRoutes } from './features/accounts/accounts.routes.js';
import { auditRoutes } from './features/audit/audit.routes.js';
import { bindingRoutes } from './features/binding/binding.routes.js';
import { deviceLiveRoutes } from './features/binding/device-live.js';
import { orgDevicesRoutes } from './features/binding/org-devices.routes.js';
import { bluetoothRoutes } from './features/bluetooth/bluetooth.routes.js';
import { callbacksRoutes } from './features/callbacks/callbacks.routes.js';
import { campaignsRoutes } from './features/campaigns/campaigns.routes.js';
import { cloudApiRoutes } from './features/cloud-api/cloud-api.routes.js';
import { consoleRoutes, isConsolePath } from './features/console/console.routes.js';
import { deviceLogsRoutes } from './features/device-logs/device-logs.routes.js';
import { devicesRoutes } from './features/devices/devices.routes.js';
import { firmwareRoutes } from './features/firmware/firmware.routes.js';
import { fleetStatsRoutes } from './features/fleet-stats/fleet-stats.routes.js';
import { attachGateway } from './features/gateway/gateway.js';
import { gatewayRoutes } from './features/gateway/gateway.routes.js';
import { instanceRoutes } from './features/instance/instance.routes.js';
import { instanceSettingsRoutes } from './features/instance-settings/instance-settings.routes.js';
import { sendConsoleShell } from './features/landing/console-shell.js';
import { landingRoutes } from './features/landing/landing.routes.js';
import { merchantV3Routes } from './features/merchant/merchant.routes.js';
import { merchantAdminRoutes } from './features/merchant/merchant-admin.routes.js';
import { modelsRoutes } from './features/models/models.routes.js';
import { notificationsRoutes } from './features/notifications/notifications.routes.js';
import { organisationsRoutes } from './features/organisations/organisations.routes.js';
import { pairingRoutes } from './features/pairing/pairing.routes.js';
import { accountsAdminRoutes } from './features/people/accounts-admin.routes.js';
import { peopleRoutes } from './features/people/people.routes.js';
import { productionRoutes } from './features/production/production.routes.js';
import { relationsRoutes } from './features/relations/relations.routes.js';
import { thirdPartyRoutes } from './features/third-party/third-party.routes.js';
import { vendorsRoutes } from './features/vendors/vendors.routes.js';
import { registerGate, wecomShaped } from './http/gate.js';
import { redactUrl } from './http/redact.js';
import { DOCS_CSP, helmetOptions } from './http/security-headers.js';
import { buildServices, type Services } from './services.js';

export interface BuiltApp {
  app: FastifyInstance;
  services: Services;
}

export const API_VERSION = '0.1.0';

/**
 * The whole HTTP surface, from adapters. Never listens: main.ts does, tests use inject().
 * Features register their routes as plugins; everything cross-cutting lives here.
 */
export async function buildApp(deps: Deps, services: Services = buildServices(deps)): Promise<BuiltApp> {
  const tls = deps.config.tls;
  // One server carries HTTP and (when a certificate is configured) TLS for the WSS gateway too.
  const app = Fastify({
    ...(tls ? { https: { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) } } : {}),
    loggerInstance: deps.logger as FastifyBaseLogger,
    trustProxy: deps.config.trustProxy,
    bodyLimit: 2 * 1024 * 1024,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: true } },
  });
  app.decorateRequest('principal', null);

  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
  });
  // Security headers first, so that even the gate's refusals carry them (finding 1).
  await app.register(helmet, helmetOptions(tls !== null));
  // One gate for every route, decided on the route that matched (http/gate.ts); before any route.
  registerGate(app, {
    publicUrl: deps.config.publicUrl,
    authenticateToken: (token) => services.accounts.authenticate(token),
    people: services.people,
  });

  const httpRequests = deps.metrics.counter('bindery_http_requests_total', 'HTTP requests', ['method', 'route', 'status']);
  const httpDuration = deps.metrics.histogram(
    'bindery_http_request_seconds',
    'HTTP request duration',
    ['method', 'route'],
    [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
  );
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    httpRequests.inc({ method: req.method, route, status: String(reply.statusCode) });
    httpDuration.observe({ method: req.method, route }, reply.elapsedTime / 1000);
  });

  app.setErrorHandler((err: FastifyError | AppError, req, reply) => {
    let e: AppError;
    if (err instanceof AppError) e = err;
    else if ((err as FastifyError).validation) {
      e = new AppError('VALIDATION_FAILED', err.message, { problems: (err as FastifyError).validation });
    } else if ((err as FastifyError).code === 'FST_ERR_CTP_BODY_TOO_LARGE') e = new AppError('PAYLOAD_TOO_LARGE');
    else if ((err as FastifyError).code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') e = new AppError('UNSUPPORTED_MEDIA_TYPE');
    else if ((err as FastifyError).statusCode && (err as FastifyError).statusCode! < 500) {
      e = new AppError('VALIDATION_FAILED', err.message);
    } else {
      req.log.error({ err }, 'unhandled error');
      e = new AppError('INTERNAL');
    }
    // The WeCom-shaped surface answers 200 with errcode/errmsg, as the real platform does.
    if (wecomShaped(req)) {
      return reply.status(200).send({ errcode: e.errcode, errmsg: e.message });
    }
    // Lockouts say when to come back (features/people/lockout.ts puts it in the details).
    const retryAfter = (e.details as { retry_after_sec?: unknown } | undefined)?.retry_after_sec;
    if (typeof retryAfter === 'number') reply.header('retry-after', String(retryAfter));
    return reply.status(e.status).send({ error: { code: e.code, message: e.message, details: e.details }, request_id: req.id });
  });

  app.setNotFoundHandler((req, reply) => {
    // A page path a browser opens is the console's (features/console: its route table shows "not found").
    if (
      (req.method === 'GET' || req.method === 'HEAD') &&
      isConsolePath(req.url, req.headers.accept) &&
      sendConsoleShell(reply)
    ) {
      return reply;
    }
    const e = new AppError('NOT_FOUND', `No route ${req.method} ${redactUrl(req.url.split('?')[0] ?? '')}`);
    if (wecomShaped(req)) return reply.status(200).send({ errcode: e.errcode, errmsg: e.message });
    return reply.status(404).send({ error: { code: e.code, message: e.message }, request_id: req.id });
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Bindery API',
        version: API_VERSION,
        description:
          "Device onboarding and binding. `/api/v1` is Bindery's own API (Bearer tokens); `/cgi-bin/openhw` is the WeCom hardware cloud API.",
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: DOCS_CSP });
  app.get('/openapi.json', { config: { access: 'public' }, schema: { hide: true } }, async () => app.swagger());

  app.get(
    '/healthz',
    { config: { access: 'public' }, schema: { tags: ['ops'], summary: 'Liveness: the process answers' } },
    async () => ({ status: 'ok' }),
  );
  app.get(
    '/readyz',
    { config: { access: 'public' }, schema: { tags: ['ops'], summary: 'Readiness: the database answers' } },
    async (_req, reply) => {
      const dbOk = await deps.db.ping();
      if (!dbOk) return reply.status(503).send({ status: 'not_ready', database: 'down' });
      // Finding 8: with Redis away pushes and limits fail, so this process is not ready either.
      const [busOk, limiterOk] = await Promise.all([deps.bus.ping?.() ?? true, deps.limiter.ping?.() ?? true]);
      if (!busOk || !limiterOk) return reply.status(503).send({ status: 'not_ready', redis: 'down' });
      return { status: 'ready', database: deps.db.caps.backend };
    },
  );
  app.get(
    '/metrics',
    { config: { access: 'public' }, schema: { tags: ['ops'], summary: 'Prometheus metrics' } },
    async (_req, reply) => {
      reply.header('content-type', deps.metrics.registry.contentType);
      return deps.metrics.registry.metrics();
    },
  );

  await app.register(accountsRoutes(services));
  await app.register(vendorsRoutes(services));
  await app.register(modelsRoutes(services));
  await app.register(devicesRoutes(services));
  await app.register(productionRoutes(services));
  await app.register(relationsRoutes(services));
  await app.register(pairingRoutes(services));
  await app.register(cloudApiRoutes(services));
  await app.register(bindingRoutes(services));
  await app.register(orgDevicesRoutes(services));
  await app.register(auditRoutes(services));
  await app.register(peopleRoutes(services));
  await app.register(accountsAdminRoutes(services));
  await app.register(instanceSettingsRoutes(services));
  await app.register(organisationsRoutes(services));
  await app.register(landingRoutes(services));
  await app.register(bluetoothRoutes(services));
  await app.register(notificationsRoutes(services));
  await app.register(deviceLiveRoutes(services, deps.bus));
  await app.register(thirdPartyRoutes(services));
  await app.register(gatewayRoutes(services));
  await app.register(firmwareRoutes(services));
  await app.register(campaignsRoutes(services));
  await app.register(fleetStatsRoutes(services));
  await app.register(deviceLogsRoutes(services));
  await app.register(callbacksRoutes(services));
  // The WeCom direct-access gateway: WebSocket upgrades on this same port (docs/protocol.md).
  const gateway = await attachGateway(app, deps, services);
  await app.register(instanceRoutes(services, gateway));
  await app.register(merchantAdminRoutes(services));
  // The WeChat Pay v3 surface: its own error shape, body parser and signed replies.
  await app.register(merchantV3Routes(services), { prefix: '/v3' });
  // Last: the web console's pages and assets at / (docs/console.md); every route above wins.
  await app.register(consoleRoutes());
  return { app, services };
}
