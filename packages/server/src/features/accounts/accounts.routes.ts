import type { FastifyInstance } from 'fastify';
import { principalOf } from '../../http/auth.js';
import type { Services } from '../../services.js';

const userSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    username: { type: 'string' },
    display_name: { type: 'string' },
    is_operator: { type: 'boolean' },
    created_at: { type: 'string' },
  },
} as const;

export function accountsRoutes(s: Services) {
  return async function accounts(app: FastifyInstance) {
    app.post<{ Body: { username: string; password: string; token_name?: string } }>(
      '/api/v1/tokens',
      {
        schema: {
          tags: ['accounts'],
          summary: 'Exchange a username and password for an API token (shown once)',
          security: [],
          body: {
            type: 'object',
            required: ['username', 'password'],
            properties: {
              username: { type: 'string' },
              password: { type: 'string' },
              token_name: { type: 'string', maxLength: 128 },
            },
          },
        },
      },
      async (req, reply) => {
        const user = await s.accounts.login(req.body.username, req.body.password);
        const token = await s.accounts.createUserToken(user.id, req.body.token_name ?? 'api');
        return reply.status(201).send({ token, user });
      },
    );

    app.post<{ Body: { username: string; password: string; display_name?: string } }>(
      '/api/v1/operators',
      {
        schema: {
          tags: ['accounts'],
          summary: 'Create another operator (operators only)',
          body: {
            type: 'object',
            required: ['username', 'password'],
            properties: { username: { type: 'string' }, password: { type: 'string' }, display_name: { type: 'string' } },
          },
          response: { 201: { type: 'object', properties: { user: userSchema } } },
        },
      },
      async (req, reply) => {
        const { user } = await s.accounts.createOperator(principalOf(req), {
          username: req.body.username,
          password: req.body.password,
          displayName: req.body.display_name,
        });
        return reply.status(201).send({ user });
      },
    );

    app.delete<{ Params: { id: string } }>(
      '/api/v1/tokens/:id',
      { schema: { tags: ['accounts'], summary: 'Revoke an API token or vendor key' } },
      async (req, reply) => {
        await s.accounts.revokeToken(principalOf(req), req.params.id);
        return reply.status(204).send();
      },
    );
  };
}
