import type { FastifyInstance } from 'fastify';
import { principalOf } from '../../http/auth.js';
import type { Services } from '../../services.js';
import { orgGate } from '../organisations/organisations.routes.js';
import { ROLES, type Role } from '../organisations/permissions.js';
import { acceptInviteBody, invitePreviewSchema, inviteSchema, inviteTokenBody } from './invite-schemas.js';
import { clearSessionCookies, sessionOf, setSessionCookies } from './session-auth.js';

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

const orgWithRole = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    parent_id: { type: ['string', 'null'] },
    member_binding: { type: 'boolean' },
    created_at: { type: 'string' },
    role: { type: ['string', 'null'] },
  },
} as const;

const sessionReply = {
  type: 'object',
  properties: {
    user: userSchema,
    csrf_token: { type: ['string', 'null'] },
    expires_at: { type: ['string', 'null'] },
    personal_space: { type: 'object', properties: { type: { type: 'string' }, id: { type: 'string' } } },
    organisations: { type: 'array', items: orgWithRole },
    vendors: {
      type: 'array',
      description: 'The vendors this person belongs to, with their role (issue 13)',
      items: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          name: { type: 'string' },
          role: { type: 'string', enum: ['vendor_admin', 'engineer', 'production'] },
        },
        required: ['id', 'name', 'role'],
      },
    },
  },
} as const;

const tokenSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    created_at: { type: 'string' },
    last_used_at: { type: ['string', 'null'], description: 'Refreshed at most once a minute' },
    revoked_at: { type: ['string', 'null'] },
  },
} as const;

/** The caller's personal API tokens; served at GET /api/v1/me/tokens and GET /api/v1/tokens. */
export const tokenListReply = { type: 'object', properties: { tokens: { type: 'array', items: tokenSchema } } } as const;

/**
 * Sessions, the signed-in user, personal tokens and invitations. The console logs in with
 * POST /api/v1/session and then sends the cookie plus x-csrf-token; scripts use Bearer tokens.
 */
export function peopleRoutes(s: Services) {
  return async function people(app: FastifyInstance) {
    const secure = s.people.secureCookies;

    app.post<{ Body: { username: string; password: string } }>(
      '/api/v1/session',
      {
        config: { access: 'public' },
        schema: {
          tags: ['people'],
          summary: 'Log in: sets the HttpOnly session cookie and returns the CSRF token for x-csrf-token',
          security: [],
          body: {
            type: 'object',
            required: ['username', 'password'],
            properties: { username: { type: 'string', maxLength: 64 }, password: { type: 'string', maxLength: 1024 } },
          },
          response: { 201: sessionReply },
        },
      },
      async (req, reply) => {
        const { token, session, user } = await s.people.login(req.body.username, req.body.password, {
          ip: req.ip,
          userAgent: req.headers['user-agent'],
        });
        setSessionCookies(reply, token, session, secure);
        const me = await s.people.me(session.principal);
        return reply.status(201).send({
          ...me,
          user,
          csrf_token: session.csrfToken,
          expires_at: new Date(session.expiresAt).toISOString(),
        });
      },
    );

    app.get(
      '/api/v1/session',
      {
        schema: {
          tags: ['people'],
          summary: 'Who is signed in, their organisations and (for cookie sessions) the CSRF token',
          response: { 200: sessionReply },
        },
      },
      async (req) => {
        const me = await s.people.me(principalOf(req));
        const sess = sessionOf(req);
        return {
          ...me,
          csrf_token: sess?.csrfToken ?? null,
          expires_at: sess ? new Date(sess.expiresAt).toISOString() : null,
        };
      },
    );

    app.delete(
      '/api/v1/session',
      { config: { access: 'public' }, schema: { tags: ['people'], summary: 'Log out: ends the session and clears its cookies' } },
      async (req, reply) => {
        const sess = sessionOf(req);
        if (sess) await s.people.logout(sess);
        clearSessionCookies(reply, secure);
        return reply.status(204).send();
      },
    );

    app.get(
      '/api/v1/me',
      { schema: { tags: ['people'], summary: 'The signed-in user, their personal space and organisations' } },
      async (req) => s.people.me(principalOf(req)),
    );

    app.patch<{ Body: { display_name?: string } }>(
      '/api/v1/me',
      {
        schema: {
          tags: ['people'],
          summary: 'Change your display name',
          body: { type: 'object', properties: { display_name: { type: 'string', maxLength: 128 } }, additionalProperties: false },
        },
      },
      async (req) => ({ user: await s.people.updateProfile(principalOf(req), { displayName: req.body.display_name }) }),
    );

    app.post<{ Body: { current_password: string; new_password: string; keep_tokens?: boolean } }>(
      '/api/v1/me/password',
      {
        schema: {
          tags: ['people'],
          summary: 'Change your password; your other sessions end and your API tokens are revoked',
          description:
            'The current password is checked under the sign-in lockout (wrong ones count like failed logins). The session making the change stays signed in; `keep_tokens: true` keeps your API tokens working.',
          body: {
            type: 'object',
            required: ['current_password', 'new_password'],
            properties: {
              current_password: { type: 'string', maxLength: 1024 },
              new_password: { type: 'string', maxLength: 1024 },
              keep_tokens: { type: 'boolean', default: false },
            },
          },
        },
      },
      async (req, reply) => {
        await s.people.changePassword(
          principalOf(req),
          req.body.current_password,
          req.body.new_password,
          sessionOf(req) ?? undefined,
          { ip: req.ip, keepTokens: req.body.keep_tokens === true },
        );
        return reply.status(204).send();
      },
    );

    app.get(
      '/api/v1/me/tokens',
      {
        schema: {
          tags: ['people'],
          summary: 'Your personal API tokens (never their values), with when each was made and last used',
          response: { 200: tokenListReply },
        },
      },
      async (req) => ({
        tokens: await s.people.listTokens(principalOf(req)),
      }),
    );

    app.post<{ Body: { name?: string } }>(
      '/api/v1/me/tokens',
      {
        schema: {
          tags: ['people'],
          summary: 'Create a personal API token for scripts (shown once)',
          body: { type: 'object', properties: { name: { type: 'string', maxLength: 128 } } },
          response: { 201: { type: 'object', properties: { id: { type: 'string' }, token: { type: 'string' } } } },
        },
      },
      async (req, reply) => reply.status(201).send(await s.people.createToken(principalOf(req), req.body?.name ?? 'personal')),
    );

    app.delete<{ Params: { id: string } }>(
      '/api/v1/me/tokens/:id',
      { schema: { tags: ['people'], summary: 'Revoke one of your personal tokens' } },
      async (req, reply) => {
        await s.people.revokeToken(principalOf(req), req.params.id);
        return reply.status(204).send();
      },
    );

    app.post<{ Body: { username: string; password: string; display_name?: string } }>(
      '/api/v1/users',
      {
        schema: {
          tags: ['people'],
          summary: 'Create a user (operators only); people usually join through an invitation',
          body: {
            type: 'object',
            required: ['username', 'password'],
            properties: {
              username: { type: 'string', maxLength: 64 },
              password: { type: 'string', maxLength: 1024 },
              display_name: { type: 'string', maxLength: 128 },
            },
          },
        },
      },
      async (req, reply) => {
        const user = await s.people.createUser(principalOf(req), {
          username: req.body.username,
          password: req.body.password,
          displayName: req.body.display_name,
        });
        return reply.status(201).send({ user });
      },
    );

    app.post<{ Params: { orgId: string }; Body: { role: Role; department_id?: string; scope?: string[] } }>(
      '/api/v1/orgs/:orgId/invites',
      {
        preValidation: orgGate(s, 'admin'),
        schema: {
          tags: ['people'],
          summary: 'Invite someone into the organisation with a role (the link is shown once; valid 7 days)',
          body: {
            type: 'object',
            required: ['role'],
            properties: {
              role: { type: 'string', enum: [...ROLES] },
              department_id: { type: 'string' },
              scope: { type: 'array', items: { type: 'string' }, maxItems: 100 },
            },
          },
          response: {
            201: {
              type: 'object',
              properties: { invite: inviteSchema, token: { type: 'string' }, url: { type: 'string' } },
              required: ['invite', 'token', 'url'],
            },
          },
        },
      },
      async (req, reply) => {
        const r = await s.people.createInvite(principalOf(req), req.params.orgId, {
          role: req.body.role,
          departmentId: req.body.department_id,
          scope: req.body.scope,
        });
        return reply.status(201).send(r);
      },
    );

    app.get<{ Params: { orgId: string } }>(
      '/api/v1/orgs/:orgId/invites',
      {
        schema: {
          tags: ['people'],
          summary: "The organisation's invitations (admins)",
          response: { 200: { type: 'object', properties: { invites: { type: 'array', items: inviteSchema } } } },
        },
      },
      async (req) => ({ invites: await s.people.listInvites(principalOf(req), req.params.orgId) }),
    );

    app.delete<{ Params: { orgId: string; id: string } }>(
      '/api/v1/orgs/:orgId/invites/:id',
      { schema: { tags: ['people'], summary: 'Revoke a pending invitation' } },
      async (req, reply) => {
        await s.people.revokeInvite(principalOf(req), req.params.orgId, req.params.id);
        return reply.status(204).send();
      },
    );

    // The invitation token travels in the body, never in a path that would be logged.
    app.post<{ Body: { token: string } }>(
      '/api/v1/invites/preview',
      {
        config: { access: 'public' },
        schema: {
          tags: ['people'],
          summary: 'What an invitation offers (no sign-in needed)',
          security: [],
          body: inviteTokenBody,
          response: { 200: invitePreviewSchema },
        },
      },
      async (req) => s.people.previewInvite(req.body.token, req.principal, req.ip),
    );

    app.post<{ Body: { token: string; username?: string; password?: string; display_name?: string } }>(
      '/api/v1/invites/accept',
      {
        config: { access: 'public' },
        schema: {
          tags: ['people'],
          summary: 'Accept an invitation as the signed-in user, or sign up with a username and password',
          security: [],
          body: acceptInviteBody,
        },
      },
      async (req, reply) => {
        const b = req.body;
        const signup =
          req.principal === null && b.username !== undefined
            ? { username: b.username, password: b.password ?? '', displayName: b.display_name }
            : undefined;
        const r = await s.people.acceptInvite(b.token, req.principal, signup, req.ip);
        if (r.created && signup) {
          // A new account is signed in straight away, so the invitation link ends in the console.
          const { token, session } = await s.people.login(signup.username, signup.password, {
            ip: req.ip,
            userAgent: req.headers['user-agent'],
          });
          setSessionCookies(reply, token, session, secure);
          return reply.status(201).send({ ...r, csrf_token: session.csrfToken });
        }
        return reply.status(201).send(r);
      },
    );
  };
}
