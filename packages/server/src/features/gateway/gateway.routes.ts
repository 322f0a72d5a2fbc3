import type { FastifyInstance } from 'fastify';
import { principalOf } from '../../http/auth.js';
import type { Services } from '../../services.js';

const COMMAND_KINDS = ['restart', 'fetch_log', 'update_firmware'] as const;
type CommandKind = (typeof COMMAND_KINDS)[number];

const commandResult = {
  type: 'object',
  properties: {
    outcome: { type: 'string', enum: ['delivered', 'forwarded', 'queued', 'offline'] },
    command_id: { type: 'string' },
  },
} as const;

const isoOrNull = { type: ['string', 'null'] } as const;
const commandList = {
  type: 'object',
  required: ['commands'],
  properties: {
    commands: {
      type: 'array',
      items: {
        type: 'object',
        required: [
          'id',
          'cmd',
          'status',
          'created_by',
          'created_at',
          'expires_at',
          'delivered_at',
          'failed_at',
          'fail_code',
          'fail_reason',
        ],
        properties: {
          id: { type: 'string' },
          cmd: { type: 'string' },
          body: { type: ['object', 'null'], additionalProperties: true },
          status: { type: 'string', enum: ['pending', 'delivered', 'expired', 'failed'] },
          created_by: { type: 'string' },
          created_at: { type: 'string' },
          expires_at: { type: 'string' },
          delivered_at: isoOrNull,
          // P-PUSH-7: a failed command's device errcode (null when the cloud gave up) and reason (≤ 256 characters).
          failed_at: isoOrNull,
          fail_code: { type: ['integer', 'null'] },
          fail_reason: { type: ['string', 'null'], maxLength: 256 },
        },
      },
    },
  },
} as const;

/** Commands to devices through the gateway (P-PUSH-4), for operators and the device's vendor. */
export function gatewayRoutes(s: Services) {
  return async function gateway(app: FastifyInstance) {
    app.post<{ Params: { sn: string }; Body: { cmd: CommandKind; hint?: string; ttl_sec?: number } }>(
      '/api/v1/devices/:sn/commands',
      {
        schema: {
          tags: ['gateway'],
          summary:
            'Send a command to a device (push_restart_device, push_fetch_log, push_update_firmware); stored and delivered on its next subscribe if it is offline',
          body: {
            type: 'object',
            required: ['cmd'],
            additionalProperties: false,
            properties: {
              cmd: { type: 'string', enum: [...COMMAND_KINDS] },
              hint: { type: 'string', maxLength: 256, description: 'fetch_log only: passed to the device unparsed' },
              ttl_sec: {
                type: 'integer',
                minimum: 60,
                maximum: 30 * 86_400,
                description: 'how long an undelivered command waits',
              },
            },
          },
          response: { 202: commandResult },
        },
      },
      async (req, reply) => {
        const actor = principalOf(req);
        const { cmd, hint, ttl_sec } = req.body;
        const r =
          cmd === 'update_firmware'
            ? await s.firmware.requestUpgrade(actor, req.params.sn, { ttlSec: ttl_sec })
            : await s.pushes.sendCommand(actor, req.params.sn, cmd, { hint, ttlSec: ttl_sec });
        return reply.status(202).send(r);
      },
    );

    app.get<{ Params: { sn: string }; Querystring: { limit?: number } }>(
      '/api/v1/devices/:sn/commands',
      {
        schema: {
          tags: ['gateway'],
          summary:
            "Commands sent to a device, newest first, with their status (pending, delivered, expired, failed: the device answered it with a non-zero errcode, kept with its errmsg, or its connection closed before it was written): for its vendor, and for the admins who manage the device (its organisation's super admins, device admins whose scope holds it, a personal device's owner)",
          querystring: { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: 200 } } },
          response: { 200: commandList },
        },
      },
      async (req) => ({ commands: await s.pushes.listCommands(principalOf(req), req.params.sn, req.query.limit) }),
    );
  };
}
