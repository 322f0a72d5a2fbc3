import type { FastifyInstance } from 'fastify';
import { principalOf } from '../../http/auth.js';
import type { Services } from '../../services.js';
import type { LocalNode } from './instance.service.js';

const warning = {
  type: 'object',
  required: ['code', 'message'],
  properties: {
    code: { type: 'string', enum: ['public_url_localhost', 'no_operator_password'] },
    message: { type: 'string' },
  },
} as const;

const count = { type: 'integer', minimum: 0 } as const;

const health = {
  type: 'object',
  required: [
    'status',
    'version',
    'node_id',
    'started_at',
    'uptime_sec',
    'public_url',
    'dependencies',
    'nodes',
    'nodes_error',
    'devices_connected',
    'queues',
    'warnings',
  ],
  properties: {
    status: { type: 'string', enum: ['ok', 'degraded'] },
    version: { type: 'string' },
    node_id: { type: 'string' },
    started_at: { type: 'string', format: 'date-time' },
    uptime_sec: count,
    public_url: { type: 'string' },
    dependencies: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name', 'kind', 'ok', 'latency_ms', 'error'],
        properties: {
          name: { type: 'string', enum: ['database', 'bus', 'rate_limiter'] },
          kind: { type: 'string', description: 'sqlite | postgres (database); memory | redis (bus, rate_limiter)' },
          ok: { type: 'boolean' },
          latency_ms: { type: 'number' },
          error: { type: 'string', nullable: true },
        },
      },
    },
    nodes: {
      type: 'array',
      description: 'Every live process, from its presence heartbeat (this one live)',
      items: {
        type: 'object',
        required: [
          'node_id',
          'this_process',
          'devices',
          'connections',
          'batches_generating',
          'label_zips',
          'version',
          'started_at',
        ],
        properties: {
          node_id: { type: 'string' },
          this_process: { type: 'boolean' },
          devices: count,
          connections: count,
          batches_generating: count,
          label_zips: count,
          version: { type: 'string', nullable: true },
          started_at: { type: 'string', format: 'date-time', nullable: true },
        },
      },
    },
    nodes_error: { type: 'string', nullable: true },
    devices_connected: count,
    queues: {
      type: 'object',
      required: ['callbacks_pending', 'callbacks_failed_24h', 'commands_pending', 'batches_generating', 'label_zips'],
      properties: {
        callbacks_pending: count,
        callbacks_failed_24h: count,
        commands_pending: count,
        batches_generating: count,
        label_zips: count,
      },
    },
    warnings: { type: 'array', items: warning },
  },
} as const;

/** Instance health and first-start warnings, for operators (docs/operations.md). */
export function instanceRoutes(s: Services, local: LocalNode | null) {
  return async function instance(app: FastifyInstance) {
    app.get(
      '/api/v1/instance/health',
      {
        schema: {
          tags: ['instance'],
          summary: 'Instance health (operators): dependencies, processes and their devices, queues, version, warnings',
          response: { 200: health },
        },
      },
      async (req) => s.instance.health(principalOf(req), local),
    );

    app.get(
      '/api/v1/instance/warnings',
      {
        schema: {
          tags: ['instance'],
          summary: 'First-start warnings for the console banner (operators): localhost public URL, no operator password',
          response: {
            200: { type: 'object', required: ['warnings'], properties: { warnings: { type: 'array', items: warning } } },
          },
        },
      },
      async (req) => ({ warnings: await s.instance.warnings(principalOf(req)) }),
    );
  };
}
