import type { FastifyInstance } from 'fastify';
import { principalOf } from '../../http/auth.js';
import type { Services } from '../../services.js';
import { vendorPeopleRoutes } from './vendor-people.routes.js';

export function vendorsRoutes(s: Services) {
  return async function vendors(app: FastifyInstance) {
    app.post<{ Body: { name: string } }>(
      '/api/v1/vendors',
      {
        schema: {
          tags: ['vendors'],
          summary: 'Create a vendor (operators only)',
          body: { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1, maxLength: 128 } } },
        },
      },
      async (req, reply) => reply.status(201).send({ vendor: await s.vendors.create(principalOf(req), req.body) }),
    );

    app.get('/api/v1/vendors', { schema: { tags: ['vendors'], summary: 'List the vendors you may act for' } }, async (req) => ({
      vendors: await s.vendors.list(principalOf(req)),
    }));

    app.get<{ Params: { vendorId: string } }>(
      '/api/v1/vendors/:vendorId',
      { schema: { tags: ['vendors'], summary: 'One vendor' } },
      async (req) => ({ vendor: await s.vendors.get(principalOf(req), req.params.vendorId) }),
    );

    app.get<{ Params: { vendorId: string } }>(
      '/api/v1/vendors/:vendorId/keys',
      {
        schema: {
          tags: ['vendors'],
          summary: "A vendor's keys (never their values), newest first; revoke one with DELETE /api/v1/tokens/{id}",
          response: {
            200: {
              type: 'object',
              properties: {
                keys: {
                  type: 'array',
                  items: {
                    type: 'object',
                    properties: {
                      id: { type: 'string' },
                      name: { type: 'string' },
                      created_at: { type: 'string' },
                      last_used_at: { type: ['string', 'null'] },
                      revoked_at: { type: ['string', 'null'] },
                    },
                  },
                },
              },
            },
          },
        },
      },
      async (req) => ({ keys: await s.vendors.listKeys(principalOf(req), req.params.vendorId) }),
    );

    app.post<{ Params: { vendorId: string }; Body: { name?: string } }>(
      '/api/v1/vendors/:vendorId/keys',
      {
        schema: {
          tags: ['vendors'],
          summary: 'Create a vendor key: an API token acting as this vendor (shown once)',
          body: { type: 'object', properties: { name: { type: 'string', maxLength: 128 } } },
        },
      },
      async (req, reply) => {
        const key = await s.accounts.createVendorKey(principalOf(req), req.params.vendorId, req.body?.name ?? 'vendor key');
        return reply.status(201).send(key);
      },
    );

    await app.register(vendorPeopleRoutes(s));
  };
}
