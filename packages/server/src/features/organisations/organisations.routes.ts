import type { FastifyInstance, FastifyRequest } from 'fastify';
import { principalOf } from '../../http/auth.js';
import type { Services } from '../../services.js';
import { inviteSchema } from '../people/invite-schemas.js';
import { ROLES, type Role } from './permissions.js';

/**
 * Who may call a route of one organisation, checked in preValidation: before Fastify validates
 * the body or query, so an outsider (or a member without the right) always gets 403, never a
 * validation message that would tell them something (issue 11, finding 6). The service checks
 * again, with the input.
 */
export function orgGate(s: Services, need: 'member' | 'admin' | 'super_admin') {
  return async (req: FastifyRequest): Promise<void> => {
    const { orgId } = req.params as { orgId: string };
    const ctx = await s.organisations.context(principalOf(req), orgId);
    if (need === 'member') s.organisations.requireMember(ctx);
    else if (need === 'admin') s.organisations.requireAdmin(ctx);
    else s.organisations.requireSuperAdmin(ctx);
  };
}

const orgSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    parent_id: { type: ['string', 'null'] },
    member_binding: { type: 'boolean' },
    time_zone: { type: ['string', 'null'], description: "IANA time zone of maintenance windows; null = the instance's" },
    created_at: { type: 'string' },
    role: { type: ['string', 'null'] },
  },
} as const;

const departmentSchema = {
  type: 'object',
  properties: { id: { type: 'string' }, parent_id: { type: ['string', 'null'] }, name: { type: 'string' } },
} as const;

const memberSchema = {
  type: 'object',
  properties: {
    user_id: { type: 'string' },
    username: { type: 'string' },
    display_name: { type: 'string' },
    role: { type: 'string' },
    department_id: { type: 'string' },
    scope: { type: 'array', items: { type: 'string' } },
    joined_at: { type: 'string' },
  },
} as const;

const applicationSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    app_key: { type: 'string' },
    name: { type: 'string' },
    admins: { type: 'array', items: { type: 'string' } },
  },
} as const;

const ids = { type: 'array', items: { type: 'string', maxLength: 64 }, maxItems: 200 } as const;

/** Organisations, departments, members and roles, settings and applications. */
export function organisationsRoutes(s: Services) {
  return async function organisations(app: FastifyInstance) {
    app.post<{
      Body: { name: string; super_admin: { user_id?: string; username?: string; password?: string; display_name?: string } };
    }>(
      '/api/v1/orgs',
      {
        schema: {
          tags: ['organisations'],
          summary: 'Create an organisation with its first super admin (operators only)',
          body: {
            type: 'object',
            required: ['name', 'super_admin'],
            properties: {
              name: { type: 'string', maxLength: 128 },
              super_admin: {
                type: 'object',
                properties: {
                  user_id: { type: 'string' },
                  username: { type: 'string', maxLength: 64 },
                  password: { type: 'string', maxLength: 1024 },
                  display_name: { type: 'string', maxLength: 128 },
                },
              },
            },
          },
        },
      },
      async (req, reply) => {
        const sa = req.body.super_admin;
        const r = await s.organisations.create(principalOf(req), {
          name: req.body.name,
          superAdmin: { userId: sa.user_id, username: sa.username, password: sa.password, displayName: sa.display_name },
        });
        return reply.status(201).send(r);
      },
    );

    app.get(
      '/api/v1/orgs',
      {
        schema: {
          tags: ['organisations'],
          summary: 'Organisations you belong to (operators: all), with your role',
          response: { 200: { type: 'object', properties: { organisations: { type: 'array', items: orgSchema } } } },
        },
      },
      async (req) => ({ organisations: await s.organisations.list(principalOf(req)) }),
    );

    app.get<{ Params: { orgId: string } }>(
      '/api/v1/orgs/:orgId',
      {
        schema: {
          tags: ['organisations'],
          summary: 'An organisation, its settings and your role, department and scope',
          response: {
            200: {
              type: 'object',
              properties: {
                organisation: orgSchema,
                me: {
                  type: 'object',
                  properties: {
                    role: { type: ['string', 'null'] },
                    department_id: { type: ['string', 'null'] },
                    scope: { type: 'array', items: { type: 'string' } },
                  },
                },
              },
            },
          },
        },
      },
      async (req) => s.organisations.get(principalOf(req), req.params.orgId),
    );

    app.patch<{ Params: { orgId: string }; Body: { member_binding?: boolean; time_zone?: string | null } }>(
      '/api/v1/orgs/:orgId/settings',
      {
        preValidation: orgGate(s, 'super_admin'),
        schema: {
          tags: ['organisations'],
          summary:
            "Change settings (super admins): member_binding lets ordinary members bind devices; time_zone (IANA, null = the instance's) is where maintenance windows are read",
          body: {
            type: 'object',
            properties: { member_binding: { type: 'boolean' }, time_zone: { type: ['string', 'null'], maxLength: 64 } },
            additionalProperties: false,
          },
          response: { 200: { type: 'object', properties: { organisation: orgSchema } } },
        },
      },
      async (req) => ({
        organisation: await s.organisations.updateSettings(principalOf(req), req.params.orgId, {
          memberBinding: req.body.member_binding,
          timeZone: req.body.time_zone,
        }),
      }),
    );

    app.get<{ Params: { orgId: string } }>(
      '/api/v1/orgs/:orgId/departments',
      {
        schema: {
          tags: ['organisations'],
          summary: 'The department tree (a flat list with parent ids; the root has none)',
          response: { 200: { type: 'object', properties: { departments: { type: 'array', items: departmentSchema } } } },
        },
      },
      async (req) => ({ departments: await s.organisations.listDepartments(principalOf(req), req.params.orgId) }),
    );

    app.post<{ Params: { orgId: string }; Body: { name: string; parent_id?: string } }>(
      '/api/v1/orgs/:orgId/departments',
      {
        preValidation: orgGate(s, 'super_admin'),
        schema: {
          tags: ['organisations'],
          summary: 'Add a department (super admins); without parent_id it goes under the root',
          body: {
            type: 'object',
            required: ['name'],
            properties: { name: { type: 'string', maxLength: 128 }, parent_id: { type: 'string' } },
          },
          response: { 201: { type: 'object', properties: { department: departmentSchema } } },
        },
      },
      async (req, reply) =>
        reply.status(201).send({
          department: await s.organisations.createDepartment(principalOf(req), req.params.orgId, {
            name: req.body.name,
            parentId: req.body.parent_id,
          }),
        }),
    );

    app.patch<{ Params: { orgId: string; deptId: string }; Body: { name?: string; parent_id?: string } }>(
      '/api/v1/orgs/:orgId/departments/:deptId',
      {
        preValidation: orgGate(s, 'super_admin'),
        schema: {
          tags: ['organisations'],
          summary: 'Rename or move a department (super admins); a department cannot move below itself (DEPARTMENT_CYCLE)',
          body: { type: 'object', properties: { name: { type: 'string', maxLength: 128 }, parent_id: { type: 'string' } } },
          response: { 200: { type: 'object', properties: { department: departmentSchema } } },
        },
      },
      async (req) => ({
        department: await s.organisations.updateDepartment(principalOf(req), req.params.orgId, req.params.deptId, {
          name: req.body.name,
          parentId: req.body.parent_id,
        }),
      }),
    );

    app.delete<{ Params: { orgId: string; deptId: string } }>(
      '/api/v1/orgs/:orgId/departments/:deptId',
      {
        preValidation: orgGate(s, 'super_admin'),
        schema: {
          tags: ['organisations'],
          summary:
            'Delete a department with its sub-departments (super admins); refused (DEPARTMENT_NOT_EMPTY, with counts) while any of them holds members, pending invitations or devices',
        },
      },
      async (req, reply) => {
        await s.organisations.deleteDepartment(principalOf(req), req.params.orgId, req.params.deptId);
        return reply.status(204).send();
      },
    );

    app.get<{ Params: { orgId: string }; Querystring: { department_id?: string; q?: string } }>(
      '/api/v1/orgs/:orgId/members',
      {
        preValidation: orgGate(s, 'member'),
        schema: {
          tags: ['organisations'],
          summary: 'Members (admins see all; a member sees those inside their visibility range)',
          querystring: {
            type: 'object',
            properties: { department_id: { type: 'string' }, q: { type: 'string', maxLength: 64 } },
          },
          response: { 200: { type: 'object', properties: { members: { type: 'array', items: memberSchema } } } },
        },
      },
      async (req) => ({
        members: await s.organisations.listMembers(principalOf(req), req.params.orgId, {
          departmentId: req.query.department_id,
          search: req.query.q,
        }),
      }),
    );

    app.post<{
      Params: { orgId: string };
      Body: { user_id?: string; username?: string; role: Role; department_id?: string; scope?: string[]; direct?: boolean };
    }>(
      '/api/v1/orgs/:orgId/members',
      {
        preValidation: orgGate(s, 'admin'),
        schema: {
          tags: ['organisations'],
          summary:
            'Invite an existing user by user_id or username (admins; device admins invite members into their scope). 202 with the invitation, the same whether or not the user exists; they join by accepting it from their inbox. Operators may instead seat the user at once (direct: true, 201 with the member; audited)',
          body: {
            type: 'object',
            required: ['role'],
            properties: {
              user_id: { type: 'string', maxLength: 64 },
              username: { type: 'string', maxLength: 64 },
              role: { type: 'string', enum: [...ROLES] },
              department_id: { type: 'string' },
              scope: ids,
              direct: { type: 'boolean', description: 'Operators only: add the member without an invitation' },
            },
          },
          response: {
            201: { type: 'object', properties: { member: memberSchema }, required: ['member'] },
            202: { type: 'object', properties: { invite: inviteSchema }, required: ['invite'] },
          },
        },
      },
      async (req, reply) => {
        const input = {
          userId: req.body.user_id,
          username: req.body.username,
          role: req.body.role,
          departmentId: req.body.department_id,
          scope: req.body.scope,
        };
        // Operators run the instance (they create organisations and seat super admins already).
        if (req.body.direct === true) {
          return reply.status(201).send({ member: await s.organisations.addMember(principalOf(req), req.params.orgId, input) });
        }
        return reply.status(202).send(await s.people.inviteUser(principalOf(req), req.params.orgId, input));
      },
    );

    app.patch<{ Params: { orgId: string; userId: string }; Body: { role?: Role; department_id?: string; scope?: string[] } }>(
      '/api/v1/orgs/:orgId/members/:userId',
      {
        preValidation: orgGate(s, 'super_admin'),
        schema: {
          tags: ['organisations'],
          summary: "Change a member's role, department or device-admin scope (super admins)",
          body: {
            type: 'object',
            properties: { role: { type: 'string', enum: [...ROLES] }, department_id: { type: 'string' }, scope: ids },
          },
          response: { 200: { type: 'object', properties: { member: memberSchema } } },
        },
      },
      async (req) => ({
        member: await s.organisations.updateMember(principalOf(req), req.params.orgId, req.params.userId, {
          role: req.body.role,
          departmentId: req.body.department_id,
          scope: req.body.scope,
        }),
      }),
    );

    app.delete<{ Params: { orgId: string; userId: string } }>(
      '/api/v1/orgs/:orgId/members/:userId',
      { schema: { tags: ['organisations'], summary: 'Remove a member (super admins), or leave (yourself)' } },
      async (req, reply) => {
        await s.organisations.removeMember(principalOf(req), req.params.orgId, req.params.userId);
        return reply.status(204).send();
      },
    );

    app.get<{ Params: { orgId: string } }>(
      '/api/v1/orgs/:orgId/applications',
      {
        schema: {
          tags: ['organisations'],
          summary: "The organisation's applications and their admins",
          response: { 200: { type: 'object', properties: { applications: { type: 'array', items: applicationSchema } } } },
        },
      },
      async (req) => ({ applications: await s.organisations.listApplications(principalOf(req), req.params.orgId) }),
    );

    app.post<{ Params: { orgId: string }; Body: { app_key: string; name: string; admins?: string[] } }>(
      '/api/v1/orgs/:orgId/applications',
      {
        preValidation: orgGate(s, 'super_admin'),
        schema: {
          tags: ['organisations'],
          summary: 'Add an application (super admins); app_key matches the key a device model associates',
          body: {
            type: 'object',
            required: ['app_key', 'name'],
            properties: { app_key: { type: 'string', maxLength: 64 }, name: { type: 'string', maxLength: 128 }, admins: ids },
          },
          response: { 201: { type: 'object', properties: { application: applicationSchema } } },
        },
      },
      async (req, reply) =>
        reply.status(201).send({
          application: await s.organisations.createApplication(principalOf(req), req.params.orgId, {
            appKey: req.body.app_key,
            name: req.body.name,
            admins: req.body.admins,
          }),
        }),
    );

    app.put<{ Params: { orgId: string; appId: string }; Body: { admins: string[] } }>(
      '/api/v1/orgs/:orgId/applications/:appId/admins',
      {
        preValidation: orgGate(s, 'super_admin'),
        schema: {
          tags: ['organisations'],
          summary: "Replace an application's admins (super admins)",
          body: { type: 'object', required: ['admins'], properties: { admins: ids } },
          response: { 200: { type: 'object', properties: { application: applicationSchema } } },
        },
      },
      async (req) => ({
        application: await s.organisations.setApplicationAdmins(
          principalOf(req),
          req.params.orgId,
          req.params.appId,
          req.body.admins,
        ),
      }),
    );
  };
}
