import type { FastifyInstance } from 'fastify';
import { principalOf } from '../../http/auth.js';
import type { Services } from '../../services.js';

const reason = { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } } as const;

/** What POST /api/v1/scan/resolve answers (features/binding/scan-resolution.service.ts ScanResolution). */
export const scanResolutionSchema = {
  type: 'object',
  required: ['kind', 'validity', 'message', 'action'],
  properties: {
    kind: { type: 'string' },
    validity: { type: 'string', enum: ['ok', 'expired', 'forged', 'unknown', 'used', 'invalid', 'bound', 'forbidden'] },
    message: { type: 'string' },
    action: { type: 'string', enum: ['bind', 'login', 'choose_method', 'none'] },
    device: {
      type: 'object',
      required: [
        'sn',
        'model_id',
        'model_name',
        'default_name',
        'bound',
        'binding_mode',
        'requires_verif_code',
        'associated_app',
      ],
      properties: {
        sn: { type: 'string' },
        model_id: { type: 'string' },
        model_name: { type: 'string' },
        default_name: { type: 'string' },
        bound: { type: 'boolean' },
        binding_mode: { type: 'string' },
        requires_verif_code: { type: 'boolean' },
        associated_app: {
          type: ['object', 'null'],
          required: ['app_key', 'name'],
          properties: { app_key: { type: 'string' }, name: { type: 'string' } },
        },
      },
    },
    owners: {
      type: 'array',
      items: {
        type: 'object',
        required: ['type', 'id', 'name', 'role', 'may_bind'],
        properties: {
          type: { type: 'string', enum: ['org', 'user'] },
          id: { type: 'string' },
          name: { type: 'string' },
          role: { type: ['string', 'null'] },
          may_bind: { type: 'boolean' },
          reason,
          pickable: {
            anyOf: [
              { type: 'string', enum: ['all'] },
              { type: 'array', items: { type: 'string' } },
            ],
          },
          effect: { type: 'string', enum: ['bind', 'share', 'take_over'] },
        },
      },
    },
    device_page: { type: 'string' },
  },
} as const;

const ticketParams = {
  type: 'object',
  required: ['ticket'],
  properties: { ticket: { type: 'string', minLength: 1, maxLength: 128 } },
} as const;

/**
 * Bluetooth discovery (issue 15, docs/protocol.md BT, docs/binding.md): a person's phone reads a
 * device's identity proof over Web Bluetooth and posts it here; the ticket it gets back binds
 * through POST /api/v1/bind (`bluetooth_ticket`) and tells whether the device came online.
 */
export function bluetoothRoutes(s: Services) {
  return async function bluetooth(app: FastifyInstance) {
    app.post<{ Body: { proof: string } }>(
      '/api/v1/bluetooth/identity',
      {
        config: { access: 'authenticated' },
        schema: {
          tags: ['binding'],
          summary: 'Verify the identity proof read from a Bluetooth device (0xFCC9): the device, its bind options and a ticket',
          description:
            'The proof is the base64 of the characteristic value (docs/protocol.md BT-6). Its sign must match the device SecretNo (else 400 BT_PROOF_INVALID, counted towards the binding lockout) and its nonce must be greater than the last one accepted (else 409 BT_PROOF_REPLAYED). The ticket is for this account, single use, valid 5 minutes: POST /api/v1/bind with `bluetooth_ticket` binds without a verification code.',
          body: {
            type: 'object',
            required: ['proof'],
            additionalProperties: false,
            properties: { proof: { type: 'string', minLength: 4, maxLength: 512 } },
          },
          response: {
            200: {
              type: 'object',
              required: ['sn', 'model', 'bound', 'online', 'bind_options', 'ticket', 'ticket_expires_at'],
              properties: {
                sn: { type: 'string' },
                model: {
                  type: 'object',
                  required: ['model_id', 'name', 'product_key'],
                  properties: { model_id: { type: 'string' }, name: { type: 'string' }, product_key: { type: 'string' } },
                },
                bound: { type: 'boolean' },
                online: { type: 'boolean' },
                owner: {
                  type: 'object',
                  required: ['type', 'id'],
                  properties: { type: { type: 'string', enum: ['org', 'user'] }, id: { type: 'string' } },
                },
                bind_options: scanResolutionSchema,
                ticket: { type: 'string' },
                ticket_expires_at: { type: 'string', format: 'date-time' },
              },
            },
          },
        },
      },
      async (req) => s.bluetooth.identify(principalOf(req), req.body.proof, { ip: req.ip }),
    );

    app.get<{ Params: { ticket: string } }>(
      '/api/v1/bluetooth/tickets/:ticket/status',
      {
        config: { access: 'authenticated' },
        schema: {
          tags: ['binding'],
          summary: "Whether a Bluetooth ticket's device is online (polled while it joins Wi-Fi; the ticket's holder only)",
          params: ticketParams,
          response: {
            200: {
              type: 'object',
              required: ['online'],
              properties: { online: { type: 'boolean' }, firmware_version: { type: 'string' } },
            },
          },
        },
      },
      async (req) => s.bluetooth.ticketStatus(principalOf(req), req.params.ticket),
    );
  };
}
