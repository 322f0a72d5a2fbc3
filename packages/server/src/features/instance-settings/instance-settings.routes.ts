import type { FastifyInstance } from 'fastify';
import { principalOf } from '../../http/auth.js';
import type { Services } from '../../services.js';

const settings = {
  type: 'object',
  properties: { self_signup: { type: 'boolean', description: 'Anyone may create an account for personal use' } },
} as const;

/** Instance settings for operators, and the part pages need before anyone signs in. */
export function instanceSettingsRoutes(s: Services) {
  return async function instanceSettings(app: FastifyInstance) {
    app.get(
      '/api/v1/instance/settings',
      {
        schema: { tags: ['instance'], summary: 'Instance settings (operators)', response: { 200: settings } },
      },
      async (req) => s.instanceSettings.get(principalOf(req)),
    );

    app.patch<{ Body: { self_signup?: boolean } }>(
      '/api/v1/instance/settings',
      {
        schema: {
          tags: ['instance'],
          summary: 'Change instance settings (operators); audited',
          body: { ...settings, additionalProperties: false, minProperties: 1 },
          response: { 200: settings },
        },
      },
      async (req) => s.instanceSettings.update(principalOf(req), req.body),
    );

    app.get(
      '/api/v1/instance/public',
      {
        config: { access: 'public' },
        schema: {
          tags: ['instance'],
          summary: 'What pages shown before sign-in need: whether self sign-up is open',
          security: [],
          response: { 200: { type: 'object', properties: { signup_open: { type: 'boolean' } } } },
        },
      },
      async () => s.instanceSettings.publicInfo(),
    );
  };
}
