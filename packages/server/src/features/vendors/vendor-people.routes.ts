import type { FastifyInstance } from 'fastify';
import { principalOf } from '../../http/auth.js';
import type { Services } from '../../services.js';
import { VENDOR_ROLES, type VendorRole } from '../../shared/principal.js';
import { acceptInviteBody, inviteTokenBody } from '../people/invite-schemas.js';
import { setSessionCookies } from '../people/session-auth.js';

const role = { type: 'string', enum: [...VENDOR_ROLES] } as const;

const memberSchema = {
  type: 'object',
  properties: {
    user_id: { type: 'string' },
    username: { type: 'string' },
    display_name: { type: 'string' },
    role,
    created_at: { type: 'string' },
  },
  required: ['user_id', 'username', 'display_name', 'role', 'created_at'],
} as const;

const inviteSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    vendor_id: { type: 'string' },
    role,
    created_by: { type: 'string' },
    created_by_name: { type: ['string', 'null'] },
    created_at: { type: 'string' },
    expires_at: { type: 'string' },
    accepted_by: { type: ['string', 'null'] },
    state: { type: 'string', enum: ['pending', 'accepted', 'revoked', 'expired'] },
  },
  required: ['id', 'vendor_id', 'role', 'created_by', 'created_by_name', 'created_at', 'expires_at', 'accepted_by', 'state'],
} as const;

const userSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    username: { type: 'string' },
    display_name: { type: 'string' },
    is_operator: { type: 'boolean' },
    created_at: { type: 'string' },
  },
  required: ['id', 'username', 'display_name', 'is_operator', 'created_at'],
} as const;

const vendorParams = { type: 'object', required: ['vendorId'], properties: { vendorId: { type: 'string' } } } as const;

/**
 * A vendor's people (issue 13): members and roles, invitations. Managing them takes the `people`
 * capability (vendor admins, operators); the invitation link opens the console's /invite page, which
 * calls /api/v1/vendor-invites/* for a token starting `v.`.
 */
export function vendorPeopleRoutes(s: Services) {
  return async function vendorPeople(app: FastifyInstance) {
    app.get<{ Params: { vendorId: string } }>(
      '/api/v1/vendors/:vendorId/members',
      {
        schema: {
          tags: ['vendors'],
          summary: "The vendor's people and their roles (vendor admins)",
          params: vendorParams,
          response: {
            200: { type: 'object', properties: { members: { type: 'array', items: memberSchema } }, required: ['members'] },
          },
        },
      },
      async (req) => ({ members: await s.vendorPeople.listMembers(principalOf(req), req.params.vendorId) }),
    );

    app.patch<{ Params: { vendorId: string; userId: string }; Body: { role: VendorRole } }>(
      '/api/v1/vendors/:vendorId/members/:userId',
      {
        schema: {
          tags: ['vendors'],
          summary: "Change a vendor member's role (the vendor keeps at least one vendor admin)",
          params: {
            type: 'object',
            required: ['vendorId', 'userId'],
            properties: { vendorId: { type: 'string' }, userId: { type: 'string' } },
          },
          body: { type: 'object', required: ['role'], properties: { role }, additionalProperties: false },
          response: { 200: { type: 'object', properties: { member: memberSchema }, required: ['member'] } },
        },
      },
      async (req) => ({
        member: await s.vendorPeople.setRole(principalOf(req), req.params.vendorId, req.params.userId, req.body.role),
      }),
    );

    app.delete<{ Params: { vendorId: string; userId: string } }>(
      '/api/v1/vendors/:vendorId/members/:userId',
      {
        schema: {
          tags: ['vendors'],
          summary: 'Remove someone from the vendor (the vendor keeps at least one vendor admin)',
          params: {
            type: 'object',
            required: ['vendorId', 'userId'],
            properties: { vendorId: { type: 'string' }, userId: { type: 'string' } },
          },
          response: { 204: { type: 'null' } },
        },
      },
      async (req, reply) => {
        await s.vendorPeople.remove(principalOf(req), req.params.vendorId, req.params.userId);
        return reply.status(204).send();
      },
    );

    app.post<{ Params: { vendorId: string }; Body: { role: VendorRole } }>(
      '/api/v1/vendors/:vendorId/invites',
      {
        schema: {
          tags: ['vendors'],
          summary: 'Invite someone into the vendor with a role (the link is shown once; valid 7 days)',
          params: vendorParams,
          body: { type: 'object', required: ['role'], properties: { role }, additionalProperties: false },
          response: {
            201: {
              type: 'object',
              properties: { invite: inviteSchema, token: { type: 'string' }, url: { type: 'string' } },
              required: ['invite', 'token', 'url'],
            },
          },
        },
      },
      async (req, reply) =>
        reply.status(201).send(await s.vendorPeople.createInvite(principalOf(req), req.params.vendorId, { role: req.body.role })),
    );

    app.get<{ Params: { vendorId: string } }>(
      '/api/v1/vendors/:vendorId/invites',
      {
        schema: {
          tags: ['vendors'],
          summary: "The vendor's invitations, newest first (vendor admins)",
          params: vendorParams,
          response: {
            200: { type: 'object', properties: { invites: { type: 'array', items: inviteSchema } }, required: ['invites'] },
          },
        },
      },
      async (req) => ({ invites: await s.vendorPeople.listInvites(principalOf(req), req.params.vendorId) }),
    );

    app.delete<{ Params: { vendorId: string; id: string } }>(
      '/api/v1/vendors/:vendorId/invites/:id',
      {
        schema: {
          tags: ['vendors'],
          summary: 'Revoke a pending vendor invitation',
          params: {
            type: 'object',
            required: ['vendorId', 'id'],
            properties: { vendorId: { type: 'string' }, id: { type: 'string' } },
          },
          response: { 204: { type: 'null' } },
        },
      },
      async (req, reply) => {
        await s.vendorPeople.revokeInvite(principalOf(req), req.params.vendorId, req.params.id);
        return reply.status(204).send();
      },
    );

    // The token travels in the body, never in a path that would be logged.
    app.post<{ Body: { token: string } }>(
      '/api/v1/vendor-invites/preview',
      {
        config: { access: 'public' },
        schema: {
          tags: ['vendors'],
          summary: 'What a vendor invitation (token starting `v.`) offers (no sign-in needed)',
          security: [],
          body: inviteTokenBody,
          response: {
            200: {
              type: 'object',
              properties: {
                kind: { type: 'string', enum: ['vendor'] },
                vendor: {
                  type: 'object',
                  properties: { id: { type: 'string' }, name: { type: 'string' } },
                  required: ['id', 'name'],
                },
                role,
                invited_by: {
                  type: ['object', 'null'],
                  properties: { display_name: { type: 'string' } },
                  description: 'The inviter; null when an operator key or the CLI invited',
                },
                expires_at: { type: 'string' },
              },
              required: ['kind', 'vendor', 'role', 'invited_by', 'expires_at'],
            },
          },
        },
      },
      async (req) => s.vendorPeople.previewInvite(req.body.token, req.ip),
    );

    app.post<{ Body: { token: string; username?: string; password?: string; display_name?: string } }>(
      '/api/v1/vendor-invites/accept',
      {
        config: { access: 'public' },
        schema: {
          tags: ['vendors'],
          summary: 'Accept a vendor invitation as the signed-in user, or sign up with a username and password',
          security: [],
          body: acceptInviteBody,
          response: {
            201: {
              type: 'object',
              properties: {
                user: userSchema,
                vendor_id: { type: 'string' },
                role,
                created: { type: 'boolean' },
                csrf_token: { type: 'string', description: 'For a new account, signed in straight away' },
              },
              required: ['user', 'vendor_id', 'role', 'created'],
            },
          },
        },
      },
      async (req, reply) => {
        const b = req.body;
        const signup =
          req.principal === null && b.username !== undefined
            ? { username: b.username, password: b.password ?? '', displayName: b.display_name }
            : undefined;
        const r = await s.vendorPeople.acceptInvite(b.token, req.principal, signup, req.ip);
        if (r.created && signup) {
          // A new account is signed in straight away, so the link ends in the vendor's console.
          const { token, session } = await s.people.login(signup.username, signup.password, {
            ip: req.ip,
            userAgent: req.headers['user-agent'],
          });
          setSessionCookies(reply, token, session, s.people.secureCookies);
          return reply.status(201).send({ ...r, csrf_token: session.csrfToken });
        }
        return reply.status(201).send(r);
      },
    );
  };
}
