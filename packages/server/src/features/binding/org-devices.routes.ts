import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { principalOf } from '../../http/auth.js';
import type { Services } from '../../services.js';
import { devicePageOf, orgDeviceCard } from './device-card.schema.js';
import type { DeviceListQuery } from './manage.service.js';
import { BULK_MAX } from './org-devices.service.js';

/**
 * An organisation's devices, as its admins run them (issue 12; docs/binding.md "Organisation
 * devices"): the filtered list, its csv, bulk unbind and bulk move to a department.
 */
export function orgDevicesRoutes(s: Services) {
  return async function orgDevices(app: FastifyInstance) {
    app.get<{ Params: { orgId: string }; Querystring: OrgListQuery }>(
      '/api/v1/orgs/:orgId/devices',
      {
        schema: {
          tags: ['binding'],
          summary:
            "An organisation's devices you may manage; q searches SN / IMEI by prefix and remark name by part; department_id includes its sub-departments",
          params: orgParams,
          querystring: orgListQuery,
          response: { 200: devicePage },
        },
      },
      async (req) => s.orgDevices.list(principalOf(req), req.params.orgId, toQuery(req.query)),
    );

    app.get<{ Params: { orgId: string }; Querystring: OrgListQuery }>(
      '/api/v1/orgs/:orgId/devices.csv',
      {
        schema: {
          tags: ['binding'],
          summary: "An organisation's devices you may manage as csv, with the list's filters",
          params: orgParams,
          querystring: csvQuery,
        },
      },
      async (req, reply) => {
        const chunks = await s.orgDevices.csv(principalOf(req), req.params.orgId, toQuery(req.query));
        return reply
          .header('content-type', 'text/csv; charset=utf-8')
          .header('content-disposition', `attachment; filename="devices-${req.params.orgId}.csv"`)
          .send(Readable.from(chunks));
      },
    );

    app.post<{ Params: { orgId: string }; Body: { sns: string[] } }>(
      '/api/v1/orgs/:orgId/devices/bulk-unbind',
      {
        schema: {
          tags: ['binding'],
          summary: `Unbind up to ${BULK_MAX} of the organisation's devices (admins who manage each); each device's outcome is reported`,
          params: orgParams,
          body: { type: 'object', required: ['sns'], additionalProperties: false, properties: { sns: snList } },
          response: { 200: bulkResults },
        },
      },
      async (req) => s.orgDevices.bulkUnbind(principalOf(req), req.params.orgId, req.body.sns),
    );

    app.post<{ Params: { orgId: string }; Body: { sns: string[]; department_id: string } }>(
      '/api/v1/orgs/:orgId/devices/bulk-move',
      {
        schema: {
          tags: ['binding'],
          summary: `Make up to ${BULK_MAX} devices visible to one department (and its sub-departments) instead of their current range`,
          params: orgParams,
          body: {
            type: 'object',
            required: ['sns', 'department_id'],
            additionalProperties: false,
            properties: { sns: snList, department_id: { type: 'string', minLength: 1, maxLength: 64 } },
          },
          response: { 200: bulkResults },
        },
      },
      async (req) => s.orgDevices.bulkMove(principalOf(req), req.params.orgId, req.body.sns, req.body.department_id),
    );
  };
}

interface OrgListQuery {
  q?: string;
  model_id?: string;
  online?: boolean;
  department_id?: string;
  firmware_version?: string;
  bound_by?: string;
  bound_by_me?: boolean;
  cursor?: string;
  limit?: number;
}

function toQuery(q: OrgListQuery): DeviceListQuery {
  return {
    search: q.q,
    modelId: q.model_id,
    online: q.online,
    departmentId: q.department_id,
    firmwareVersion: q.firmware_version,
    boundBy: q.bound_by,
    boundByMe: q.bound_by_me,
    cursor: q.cursor,
    limit: q.limit,
  };
}

const orgParams = { type: 'object', required: ['orgId'], properties: { orgId: { type: 'string', maxLength: 64 } } } as const;

const filters = {
  q: { type: 'string', maxLength: 128 },
  model_id: { type: 'string', maxLength: 64 },
  online: { type: 'boolean' },
  department_id: { type: 'string', maxLength: 64, description: 'Visible to this department or one below it' },
  firmware_version: { type: 'string', maxLength: 64 },
  bound_by: { type: 'string', maxLength: 64, description: 'Bound by this user (id)' },
  bound_by_me: { type: 'boolean' },
} as const;

const csvQuery = { type: 'object', additionalProperties: false, properties: filters } as const;
const orgListQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { ...filters, cursor: { type: 'string', maxLength: 64 }, limit: { type: 'integer', minimum: 1, maximum: 200 } },
} as const;

const snList = {
  type: 'array',
  minItems: 1,
  maxItems: BULK_MAX,
  items: { type: 'string', minLength: 1, maxLength: 128 },
} as const;

const devicePage = devicePageOf(orgDeviceCard);

const bulkResults = {
  type: 'object',
  required: ['results'],
  properties: {
    results: {
      type: 'array',
      items: {
        type: 'object',
        required: ['sn', 'ok'],
        properties: {
          sn: { type: 'string' },
          ok: { type: 'boolean' },
          error: {
            type: 'object',
            required: ['code', 'message'],
            properties: { code: { type: 'string' }, message: { type: 'string' } },
          },
        },
      },
    },
  },
} as const;
