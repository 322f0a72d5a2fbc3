import type { FastifyInstance } from 'fastify';
import { principalOf } from '../../http/auth.js';
import type { Services } from '../../services.js';
import type { DeviceAttributes } from './devices.service.js';

const attrProps = {
  camera_sn: { type: 'string', maxLength: 64 },
  app_scene_code: { type: 'string' },
  operating_system: { type: 'string' },
} as const;

export function devicesRoutes(s: Services) {
  return async function devices(app: FastifyInstance) {
    app.post<{ Params: { modelId: string }; Body: { sn: string } & DeviceAttributes }>(
      '/api/v1/models/:modelId/devices',
      {
        schema: {
          tags: ['devices'],
          summary: 'Register one SN under a model; returns its SecretNo for flashing',
          body: { type: 'object', required: ['sn'], properties: { sn: { type: 'string' }, ...attrProps } },
        },
      },
      async (req, reply) => {
        const { sn, ...attrs } = req.body;
        return reply.status(201).send(await s.devices.register(principalOf(req), req.params.modelId, sn, attrs));
      },
    );

    app.get<{
      Params: { vendorId: string };
      Querystring: { model_id?: string; batch_id?: string; q?: string; cursor?: string; limit?: number };
    }>(
      '/api/v1/vendors/:vendorId/devices',
      {
        schema: {
          tags: ['devices'],
          summary: "List a vendor's devices; q searches SN and device key (IMEI/MAC) by prefix",
          querystring: {
            type: 'object',
            properties: {
              model_id: { type: 'string' },
              batch_id: { type: 'string' },
              q: { type: 'string', maxLength: 128 },
              cursor: { type: 'string' },
              limit: { type: 'integer', minimum: 1, maximum: 500 },
            },
          },
        },
      },
      async (req) =>
        s.devices.list(principalOf(req), {
          vendorId: req.params.vendorId,
          modelId: req.query.model_id,
          batchId: req.query.batch_id,
          search: req.query.q,
          cursor: req.query.cursor,
          limit: req.query.limit,
        }),
    );

    app.get<{ Params: { sn: string } }>(
      '/api/v1/devices/:sn',
      { schema: { tags: ['devices'], summary: 'One device by SN (case-insensitive)' } },
      async (req) => ({ device: await s.devices.get(principalOf(req), req.params.sn) }),
    );

    app.get<{ Params: { sn: string } }>(
      '/api/v1/devices/:sn/secret-no',
      { schema: { tags: ['devices'], summary: "A device's SecretNo (audited)" } },
      async (req) => ({ secret_no: await s.devices.secretNo(principalOf(req), req.params.sn) }),
    );

    app.delete<{ Params: { sn: string } }>(
      '/api/v1/devices/:sn',
      { schema: { tags: ['devices'], summary: 'Unregister an SN that is not bound' } },
      async (req, reply) => {
        await s.devices.unregister(principalOf(req), req.params.sn);
        return reply.status(204).send();
      },
    );
  };
}
