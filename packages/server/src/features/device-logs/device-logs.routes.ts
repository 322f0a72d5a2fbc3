import { createReadStream } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { principalOf } from '../../http/auth.js';
import type { Services } from '../../services.js';

/** Uploaded logs and error reports of a device, for those who may manage it (operators and its vendor). */
export function deviceLogsRoutes(s: Services) {
  return async function deviceLogs(app: FastifyInstance) {
    app.get<{ Params: { sn: string } }>(
      '/api/v1/devices/:sn/logs',
      {
        schema: {
          tags: ['devices'],
          summary: 'Log files the device uploaded (upload_log), newest first',
          response: {
            200: {
              type: 'object',
              properties: {
                logs: {
                  type: 'array',
                  items: {
                    type: 'object',
                    properties: {
                      id: { type: 'string' },
                      req_id: { type: 'string' },
                      size: { type: 'integer' },
                      sha256: { type: 'string' },
                      uploaded_at: { type: 'string' },
                    },
                  },
                },
              },
            },
          },
        },
      },
      async (req) => ({ logs: await s.deviceLogs.listLogs(principalOf(req), req.params.sn) }),
    );

    app.get<{ Params: { sn: string; id: string } }>(
      '/api/v1/devices/:sn/logs/:id',
      { schema: { tags: ['devices'], summary: 'Download one uploaded log file' } },
      async (req, reply) => {
        const f = await s.deviceLogs.logFile(principalOf(req), req.params.sn, req.params.id);
        reply.header('content-type', 'application/octet-stream');
        reply.header('content-length', String(f.size));
        reply.header('content-disposition', `attachment; filename="${f.name}"`);
        return reply.send(createReadStream(f.path));
      },
    );

    app.get<{ Params: { sn: string }; Querystring: { limit?: number } }>(
      '/api/v1/devices/:sn/error-reports',
      {
        schema: {
          tags: ['devices'],
          summary: 'Error reports the device sent (error_report), newest first',
          querystring: { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: 500 } } },
          response: {
            200: {
              type: 'object',
              properties: {
                error_reports: {
                  type: 'array',
                  items: {
                    type: 'object',
                    properties: {
                      id: { type: 'integer' },
                      errcode: { type: 'integer' },
                      errmsg: { type: 'string' },
                      reported_at: { type: 'string' },
                    },
                  },
                },
              },
            },
          },
        },
      },
      async (req) => ({ error_reports: await s.deviceLogs.listErrors(principalOf(req), req.params.sn, req.query.limit) }),
    );
  };
}
