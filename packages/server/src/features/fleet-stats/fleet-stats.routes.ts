import type { FastifyInstance } from 'fastify';
import { principalOf } from '../../http/auth.js';
import type { Services } from '../../services.js';
import type { FleetStatsQuery } from './fleet-stats.service.js';

const count = { type: 'integer' } as const;
const statsView = {
  type: 'object',
  required: ['scope', 'days', 'model_id', 'sampled_at', 'online', 'versions', 'daily', 'error_codes'],
  properties: {
    scope: { type: 'string', enum: ['vendor', 'org'] },
    days: count,
    model_id: { type: ['string', 'null'] },
    sampled_at: { type: ['string', 'null'] },
    online: {
      type: 'array',
      items: {
        type: 'object',
        required: ['at', 'devices', 'online'],
        properties: { at: { type: 'string' }, devices: count, online: count },
      },
    },
    versions: {
      type: 'array',
      items: {
        type: 'object',
        required: ['version', 'devices', 'online'],
        properties: { version: { type: ['string', 'null'] }, devices: count, online: count },
      },
    },
    daily: {
      type: 'array',
      items: {
        type: 'object',
        required: ['day', 'binds', 'unbinds', 'errors'],
        properties: { day: { type: 'string' }, binds: count, unbinds: count, errors: count },
      },
    },
    error_codes: {
      type: 'array',
      items: {
        type: 'object',
        required: ['code', 'total', 'per_day'],
        properties: { code: { type: ['integer', 'null'] }, total: count, per_day: { type: 'array', items: count } },
      },
    },
  },
} as const;

const querystring = {
  type: 'object',
  additionalProperties: false,
  properties: {
    days: { type: 'integer', minimum: 1, maximum: 366, default: 30 },
    model_id: { type: 'string', maxLength: 64 },
  },
} as const;

/** The fleet dashboard (issue 14, item 6): rollups for a vendor's fleet and an organisation's devices. */
export function fleetStatsRoutes(s: Services) {
  return async function fleetStats(app: FastifyInstance) {
    app.get<{ Params: { vendorId: string }; Querystring: FleetStatsQuery }>(
      '/api/v1/vendors/:vendorId/fleet-stats',
      {
        schema: {
          tags: ['fleet-stats'],
          summary:
            "A vendor's fleet dashboard: devices online over time, firmware versions, binds/unbinds and error reports per day (vendor capability 'read')",
          params: { type: 'object', required: ['vendorId'], properties: { vendorId: { type: 'string' } } },
          querystring,
          response: { 200: statsView },
        },
      },
      async (req) => s.fleetStats.vendorStats(principalOf(req), req.params.vendorId, req.query),
    );

    app.get<{ Params: { orgId: string }; Querystring: FleetStatsQuery }>(
      '/api/v1/orgs/:orgId/fleet-stats',
      {
        schema: {
          tags: ['fleet-stats'],
          summary: "An organisation's fleet dashboard (its super admins): the same figures for the devices it owns",
          params: { type: 'object', required: ['orgId'], properties: { orgId: { type: 'string' } } },
          querystring,
          response: { 200: statsView },
        },
      },
      async (req) => s.fleetStats.orgStats(principalOf(req), req.params.orgId, req.query),
    );
  };
}
