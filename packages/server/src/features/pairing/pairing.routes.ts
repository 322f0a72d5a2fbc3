import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { principalOf } from '../../http/auth.js';
import type { Services } from '../../services.js';
import type { Lang } from '../relations/relations.columns.js';
import { type PairInput, REFUSALS } from './pairing.service.js';

const tag = { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,64}$' } as const;

const pairBody = {
  type: 'object',
  additionalProperties: false,
  required: ['idempotency_key', 'shift_id', 'station', 'device_key', 'label'],
  properties: {
    idempotency_key: { type: 'string', pattern: '^[A-Za-z0-9_-]{8,64}$' },
    shift_id: tag,
    station: tag,
    device_key: { type: 'string', minLength: 1, maxLength: 128 },
    label: { type: 'string', minLength: 1, maxLength: 1024 },
    batch_id: { type: 'string', maxLength: 64 },
    model_id: { type: 'string', maxLength: 64 },
    scanned_at: { type: 'integer', minimum: 0 },
  },
} as const;

const pairReply = {
  type: 'object',
  required: ['outcome', 'reason', 'message', 'device_key', 'sn', 'product_key', 'conflict', 'replayed', 'at'],
  properties: {
    outcome: { type: 'string', enum: ['paired', 'refused'] },
    reason: { type: ['string', 'null'], enum: [...REFUSALS, null] },
    message: { type: 'string' },
    device_key: { type: 'string' },
    sn: { type: ['string', 'null'] },
    product_key: { type: ['string', 'null'] },
    conflict: { type: ['string', 'null'] },
    replayed: { type: 'boolean' },
    at: { type: 'string' },
  },
} as const;

const shiftParams = {
  type: 'object',
  required: ['vendorId', 'shiftId'],
  properties: { vendorId: { type: 'string' }, shiftId: tag },
} as const;

export function pairingRoutes(s: Services) {
  return async function pairing(app: FastifyInstance) {
    app.post<{ Params: { vendorId: string }; Body: PairInput }>(
      '/api/v1/vendors/:vendorId/pairing/pairs',
      {
        schema: {
          tags: ['pairing'],
          summary:
            'Pairing station: pair one DeviceKey (IMEI/MAC) with a device label. Idempotent by idempotency_key; a refusal is an answer (outcome refused, with its reason), not an error',
          body: pairBody,
          response: { 200: pairReply },
        },
      },
      async (req) => s.pairing.pair(principalOf(req), req.params.vendorId, req.body),
    );

    app.get<{ Params: { vendorId: string; shiftId: string } }>(
      '/api/v1/vendors/:vendorId/pairing/shifts/:shiftId',
      {
        schema: {
          tags: ['pairing'],
          summary: "A pairing shift's counts over every station that used it",
          params: shiftParams,
          response: {
            200: {
              type: 'object',
              required: ['shift_id', 'paired', 'refused', 'first_at', 'last_at'],
              properties: {
                shift_id: { type: 'string' },
                paired: { type: 'integer' },
                refused: { type: 'integer' },
                first_at: { type: ['string', 'null'] },
                last_at: { type: ['string', 'null'] },
              },
            },
          },
        },
      },
      async (req) => s.pairing.shiftSummary(principalOf(req), req.params.vendorId, req.params.shiftId),
    );

    app.get<{ Params: { vendorId: string; shiftId: string }; Querystring: { lang: Lang } }>(
      '/api/v1/vendors/:vendorId/pairing/shifts/:shiftId/relations.csv',
      {
        schema: {
          tags: ['pairing'],
          summary: "A pairing shift's pairs as a relation file (csv in the import's own format)",
          params: shiftParams,
          querystring: { type: 'object', properties: { lang: { type: 'string', enum: ['zh', 'en'], default: 'zh' } } },
        },
      },
      async (req, reply) => {
        const { vendorId, shiftId } = req.params;
        const chunks = await s.pairing.shiftCsv(principalOf(req), vendorId, shiftId, req.query.lang);
        return reply
          .header('content-type', 'text/csv; charset=utf-8')
          .header('content-disposition', `attachment; filename="pairing-${shiftId.replace(/[^A-Za-z0-9_.-]/g, '_')}.csv"`)
          .send(Readable.from(chunks));
      },
    );
  };
}
