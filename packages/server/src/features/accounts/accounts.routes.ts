import type { FastifyInstance } from 'fastify';
import { principalOf } from '../../http/auth.js';
import type { Services } from '../../services.js';
import { tokenListReply } from '../people/people.routes.js';

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
        config: { access: 'public' },
        schema: {
          tags: ['accounts'],
          summary: 'Exchange a username and password for an API token (shown once)',
          description:
            'The same password check as console sign-in, and the same lockout: 5 wrong passwords for an account from one address, 10 from anywhere (or 50 from one address over all accounts) within 15 minutes lock it for 15 minutes (429 LOCKED_OUT with Retry-After), even for the right password.',
          security: [],
          body: {
            type: 'object',
            required: ['username', 'password'],
            properties: {
              username: { type: 'string', maxLength: 64 },
              password: { type: 'string', maxLength: 1024 },
              token_name: { type: 'string', maxLength: 128 },
            },
          },
          response: {
            201: { type: 'object', properties: { token: { type: 'string' }, id: { type: 'string' }, user: userSchema } },
          },
        },
      },
      async (req, reply) => {
        const user = await s.accounts.login(req.body.username, req.body.password, { ip: req.ip });
        const { id, token } = await s.accounts.issueUserToken(user.id, req.body.token_name ?? 'api');
        return reply.status(201).send({ token, id, user });
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

    app.get(
      '/api/v1/tokens',
      {
        schema: {
          tags: ['accounts'],
          summary: 'Your own API tokens (never their values), with when each was made and last used',
          response: { 200: tokenListReply },
        },
      },
      async (req) => ({ tokens: await s.people.listTokens(principalOf(req)) }),
    );

    app.delete<{ Params: { id: string } }>(
      '/api/v1/tokens/:id',
      {
        schema: {
          tags: ['accounts'],
          summary:
            "Revoke an API token (your own; operators any) or a vendor key (the vendor's admins, the vendor itself, operators); audited",
          params: { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 64 } } },
        },
      },
      async (req, reply) => {
        await s.accounts.revokeToken(principalOf(req), req.params.id);
        return reply.status(204).send();
      },
    );
  };
}
