import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { principalOf } from '../../http/auth.js';
import type { Services } from '../../services.js';
import type { AuditQuery } from './audit.service.js';

/**
 * The audit log, read (docs/audit.md): an organisation's records for its super admins, the whole
 * instance's for operators; each as a page (newest first, `next_cursor`) or a streamed csv.
 */
export function auditRoutes(s: Services) {
  return async function audit(app: FastifyInstance) {
    app.get<{ Params: { orgId: string }; Querystring: AuditQuery }>(
      '/api/v1/orgs/:orgId/audit',
      {
        schema: {
          tags: ['audit'],
          summary: "An organisation's audit log, newest first (its super admins; operators)",
          params: orgParams,
          querystring: auditQuery,
          response: { 200: auditPage },
        },
      },
      async (req) => s.audit.listOrg(principalOf(req), req.params.orgId, req.query),
    );

    app.get<{ Params: { orgId: string }; Querystring: AuditQuery }>(
      '/api/v1/orgs/:orgId/audit.csv',
      {
        schema: {
          tags: ['audit'],
          summary: "An organisation's audit log as csv, with the same filters (its super admins; operators)",
          params: orgParams,
          querystring: csvQuery,
        },
      },
      async (req, reply) =>
        sendCsv(reply, `audit-${req.params.orgId}.csv`, await s.audit.csvOrg(principalOf(req), req.params.orgId, req.query)),
    );

    app.get<{ Querystring: AuditQuery }>(
      '/api/v1/audit',
      {
        schema: {
          tags: ['audit'],
          summary: "The instance's audit log, newest first (operators)",
          querystring: auditQuery,
          response: { 200: auditPage },
        },
      },
      async (req) => s.audit.listAll(principalOf(req), req.query),
    );

    app.get<{ Querystring: AuditQuery }>(
      '/api/v1/audit.csv',
      {
        schema: {
          tags: ['audit'],
          summary: "The instance's audit log as csv, with the same filters (operators)",
          querystring: csvQuery,
        },
      },
      async (req, reply) => sendCsv(reply, 'audit.csv', await s.audit.csvAll(principalOf(req), req.query)),
    );
  };
}

function sendCsv(reply: FastifyReply, name: string, chunks: AsyncGenerator<Buffer>) {
  return reply
    .header('content-type', 'text/csv; charset=utf-8')
    .header('content-disposition', `attachment; filename="${name}"`)
    .send(Readable.from(chunks));
}

const orgParams = { type: 'object', required: ['orgId'], properties: { orgId: { type: 'string', maxLength: 64 } } } as const;

const filters = {
  actor: {
    type: 'string',
    maxLength: 128,
    description: 'A user id or username, or a principal label (vendor_key:…, system:cli)',
  },
  action: { type: 'string', maxLength: 128, description: 'An action or its prefix, e.g. device. or member.update' },
  subject: { type: 'string', maxLength: 200, description: 'The exact subject, e.g. device:SN or org:ID' },
  sn: { type: 'string', maxLength: 128, description: "A device's SN (subject device:SN)" },
  from: { type: 'string', maxLength: 40, description: 'ISO date or date-time, inclusive' },
  to: { type: 'string', maxLength: 40, description: 'ISO date or date-time, inclusive (a date means the whole day, UTC)' },
} as const;

const csvQuery = { type: 'object', additionalProperties: false, properties: filters } as const;

const auditQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...filters,
    cursor: { type: 'string', maxLength: 20 },
    limit: { type: 'integer', minimum: 1, maximum: 200 },
  },
} as const;

const auditEntry = {
  type: 'object',
  required: ['id', 'at', 'actor', 'action', 'subject', 'org_id', 'ip', 'data'],
  properties: {
    id: { type: 'integer' },
    at: { type: 'string', format: 'date-time' },
    actor: {
      type: 'object',
      required: ['label', 'user_id', 'username', 'display_name'],
      properties: {
        label: { type: 'string' },
        user_id: { type: ['string', 'null'] },
        username: { type: ['string', 'null'] },
        display_name: { type: ['string', 'null'] },
      },
    },
    action: { type: 'string' },
    subject: { type: 'string' },
    org_id: { type: ['string', 'null'] },
    ip: { type: ['string', 'null'] },
    data: { type: ['object', 'null'], additionalProperties: true },
  },
} as const;

const auditPage = {
  type: 'object',
  required: ['entries', 'next_cursor'],
  properties: {
    entries: { type: 'array', items: auditEntry },
    next_cursor: { type: ['string', 'null'] },
  },
} as const;
