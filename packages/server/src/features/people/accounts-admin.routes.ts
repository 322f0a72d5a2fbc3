import type { FastifyInstance } from 'fastify';
import { principalOf } from '../../http/auth.js';
import type { Services } from '../../services.js';
import { clearSessionCookies, setSessionCookies } from './session-auth.js';

const person = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    username: { type: 'string' },
    display_name: { type: 'string' },
    is_operator: { type: 'boolean' },
    disabled: { type: 'boolean' },
    disabled_at: { type: ['string', 'null'] },
    created_at: { type: 'string' },
    last_login_at: {
      type: ['string', 'null'],
      description: 'The last password sign-in; null when never (or before it was recorded)',
    },
  },
} as const;

const personDetail = {
  type: 'object',
  properties: {
    ...person.properties,
    organisations: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          name: { type: 'string' },
          role: { type: 'string' },
          department: { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' } } },
        },
      },
    },
    active_sessions: { type: 'integer' },
    active_tokens: { type: 'integer' },
  },
} as const;

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 64 } } } as const;
const tokenBody = { token: { type: 'string', maxLength: 128 } } as const;

/**
 * Account administration (issue 12): the operators' people directory (search, detail, disable,
 * enable), password-reset links (issued by operators and super admins, opened anonymously),
 * self sign-up and signing out everywhere. docs/accounts.md.
 */
export function accountsAdminRoutes(s: Services) {
  return async function accountsAdmin(app: FastifyInstance) {
    const secure = s.people.secureCookies;

    app.get<{ Querystring: { q?: string; cursor?: string; limit?: number } }>(
      '/api/v1/users',
      {
        schema: {
          tags: ['people'],
          summary: 'Everyone on the instance, by username (operators); q searches username and display name',
          querystring: {
            type: 'object',
            properties: {
              q: { type: 'string', maxLength: 128 },
              cursor: { type: 'string', maxLength: 128, description: 'next_cursor of the previous page' },
              limit: { type: 'integer', minimum: 1, maximum: 200, default: 50 },
            },
          },
          response: {
            200: {
              type: 'object',
              properties: { users: { type: 'array', items: person }, next_cursor: { type: ['string', 'null'] } },
            },
          },
        },
      },
      async (req) => s.directory.list(principalOf(req), req.query),
    );

    app.get<{ Params: { id: string } }>(
      '/api/v1/users/:id',
      {
        schema: {
          tags: ['people'],
          summary: 'One person (operators): organisations and roles, disabled, created, last sign-in',
          params: idParams,
          response: { 200: personDetail },
        },
      },
      async (req) => s.directory.get(principalOf(req), req.params.id),
    );

    app.post<{ Params: { id: string } }>(
      '/api/v1/users/:id/disable',
      {
        schema: {
          tags: ['people'],
          summary: 'Disable a person (operators): no sign-in; their sessions end and API tokens are revoked now',
          description: 'Refused for yourself (CANNOT_DISABLE_SELF) and for the last enabled operator (LAST_OPERATOR).',
          params: idParams,
          response: { 200: personDetail },
        },
      },
      async (req) => s.directory.disable(principalOf(req), req.params.id),
    );

    app.post<{ Params: { id: string } }>(
      '/api/v1/users/:id/enable',
      {
        schema: {
          tags: ['people'],
          summary: 'Enable a disabled person again (operators)',
          params: idParams,
          response: { 200: personDetail },
        },
      },
      async (req) => s.directory.enable(principalOf(req), req.params.id),
    );

    app.post<{ Params: { id: string }; Body: { org_id?: string } | undefined }>(
      '/api/v1/users/:id/password-reset',
      {
        schema: {
          tags: ['people'],
          summary: "Issue a one-time link to set a person's password (shown once; 24 h)",
          description:
            'Operators: anyone. A super admin: a member of an organisation they are super admin of (`org_id` picks which), who is not an operator. Issuing a link voids the earlier ones for that person; using it ends their sessions and revokes their API tokens.',
          params: idParams,
          body: { type: ['object', 'null'], properties: { org_id: { type: 'string', maxLength: 64 } } },
          response: {
            201: {
              type: 'object',
              properties: {
                url: { type: 'string', description: 'BINDERY_PUBLIC_URL + /reset-password#<token>; shown once' },
                expires_at: { type: 'string' },
                user: {
                  type: 'object',
                  properties: { id: { type: 'string' }, username: { type: 'string' }, display_name: { type: 'string' } },
                },
              },
            },
          },
        },
      },
      async (req, reply) =>
        reply.status(201).send(await s.passwordResets.issue(principalOf(req), req.params.id, { orgId: req.body?.org_id })),
    );

    // The reset token travels in the body, never in a path or query that would be logged.
    app.post<{ Body: { token: string } }>(
      '/api/v1/password-resets/preview',
      {
        config: { access: 'public' },
        schema: {
          tags: ['people'],
          summary: 'Whose password a reset link sets, and until when (no sign-in needed)',
          security: [],
          body: { type: 'object', required: ['token'], properties: tokenBody },
          response: {
            200: {
              type: 'object',
              properties: { username: { type: 'string' }, display_name: { type: 'string' }, expires_at: { type: 'string' } },
            },
          },
        },
      },
      async (req) => s.passwordResets.preview(req.body.token, req.ip),
    );

    app.post<{ Body: { token: string; password: string } }>(
      '/api/v1/password-resets/complete',
      {
        config: { access: 'public' },
        schema: {
          tags: ['people'],
          summary: 'Set a new password with a reset link (once); every session and API token of the person ends',
          security: [],
          body: {
            type: 'object',
            required: ['token', 'password'],
            properties: { ...tokenBody, password: { type: 'string', maxLength: 1024 } },
          },
          response: {
            200: {
              type: 'object',
              properties: {
                username: { type: 'string' },
                sessions_ended: { type: 'integer' },
                tokens_revoked: { type: 'integer' },
              },
            },
          },
        },
      },
      async (req) => s.passwordResets.complete(req.body.token, req.body.password, req.ip),
    );

    app.post<{ Body: { username: string; password: string; display_name?: string } }>(
      '/api/v1/signup',
      {
        config: { access: 'public' },
        schema: {
          tags: ['people'],
          summary: 'Create an account for personal use and sign in (only while an operator has opened sign-up)',
          description: 'SIGNUP_CLOSED while the instance setting self_signup is off (the default). Limited per network address.',
          security: [],
          body: {
            type: 'object',
            required: ['username', 'password'],
            properties: {
              username: { type: 'string', maxLength: 64 },
              password: { type: 'string', maxLength: 1024 },
              display_name: { type: 'string', maxLength: 128 },
            },
          },
          response: {
            201: {
              type: 'object',
              properties: {
                user: {
                  type: 'object',
                  properties: {
                    id: { type: 'string' },
                    username: { type: 'string' },
                    display_name: { type: 'string' },
                    is_operator: { type: 'boolean' },
                    created_at: { type: 'string' },
                  },
                },
                csrf_token: { type: 'string' },
              },
            },
          },
        },
      },
      async (req, reply) => {
        const b = req.body;
        const user = await s.instanceSettings.signup(
          { username: b.username, password: b.password, displayName: b.display_name },
          req.ip,
        );
        // Signed in at once, through the same door as POST /api/v1/session.
        const { token, session } = await s.people.login(b.username, b.password, {
          ip: req.ip,
          userAgent: req.headers['user-agent'],
        });
        setSessionCookies(reply, token, session, secure);
        return reply.status(201).send({ user, csrf_token: session.csrfToken });
      },
    );

    app.delete(
      '/api/v1/me/sessions',
      {
        schema: {
          tags: ['people'],
          summary: 'Sign out everywhere: end every console session of yours, this one included (API tokens stay)',
          response: { 200: { type: 'object', properties: { sessions_ended: { type: 'integer' } } } },
        },
      },
      async (req, reply) => {
        const r = await s.directory.signOutEverywhere(principalOf(req));
        clearSessionCookies(reply, secure);
        return r;
      },
    );
  };
}
