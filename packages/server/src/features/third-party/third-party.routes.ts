import type { FastifyInstance } from 'fastify';
import { principalOf } from '../../http/auth.js';
import type { Services } from '../../services.js';
import { BINDERY_CLIENT_JS } from './bindery-client.js';
import { MAX_ORIGINS } from './third-party.service.js';

const appParams = {
  type: 'object',
  required: ['orgId', 'appId'],
  properties: { orgId: { type: 'string', maxLength: 64 }, appId: { type: 'string', maxLength: 64 } },
} as const;
const originsReply = {
  200: { type: 'object', properties: { origins: { type: 'array', items: { type: 'string' } } }, required: ['origins'] },
} as const;

export function thirdPartyRoutes(s: Services) {
  return async function thirdParty(app: FastifyInstance) {
    app.get<{ Params: { orgId: string; appId: string } }>(
      '/api/v1/orgs/:orgId/applications/:appId/origins',
      {
        schema: {
          tags: ['organisations'],
          summary:
            "Where an application may send people back to (redirect_uri origins) after the add-device flow or a device's page",
          params: appParams,
          response: originsReply,
        },
      },
      async (req) => ({ origins: await s.thirdParty.listOrigins(principalOf(req), req.params.orgId, req.params.appId) }),
    );

    app.put<{ Params: { orgId: string; appId: string }; Body: { origins: string[] } }>(
      '/api/v1/orgs/:orgId/applications/:appId/origins',
      {
        schema: {
          tags: ['organisations'],
          summary: "Replace an application's return origins (super admins); exact http(s) origins",
          params: appParams,
          body: {
            type: 'object',
            required: ['origins'],
            additionalProperties: false,
            properties: {
              origins: { type: 'array', maxItems: MAX_ORIGINS, items: { type: 'string', minLength: 1, maxLength: 300 } },
            },
          },
          response: originsReply,
        },
      },
      async (req) => ({
        origins: await s.thirdParty.setOrigins(principalOf(req), req.params.orgId, req.params.appId, req.body.origins),
      }),
    );

    app.post<{ Body: { app: string; redirect_uri: string } }>(
      '/api/v1/third-party/return',
      {
        schema: {
          tags: ['binding'],
          summary: 'May the console send this person back to redirect_uri for application app? (REDIRECT_NOT_ALLOWED if not)',
          body: {
            type: 'object',
            required: ['app', 'redirect_uri'],
            additionalProperties: false,
            properties: {
              app: { type: 'string', minLength: 1, maxLength: 128 },
              redirect_uri: { type: 'string', minLength: 1, maxLength: 2000 },
            },
          },
          response: {
            200: {
              type: 'object',
              required: ['redirect_uri', 'app_name'],
              properties: { redirect_uri: { type: 'string' }, app_name: { type: 'string' } },
            },
          },
        },
      },
      async (req) => s.thirdParty.checkReturn(principalOf(req), req.body.app, req.body.redirect_uri),
    );

    app.get(
      '/sdk/bindery-client.js',
      { config: { access: 'public' }, schema: { hide: true, tags: ['third-party'], summary: 'The third-party client script' } },
      async (_req, reply) =>
        reply
          .header('content-type', 'text/javascript; charset=utf-8')
          .header('cache-control', 'public, max-age=3600')
          .header('access-control-allow-origin', '*')
          .header('cross-origin-resource-policy', 'cross-origin')
          .send(BINDERY_CLIENT_JS),
    );
  };
}
