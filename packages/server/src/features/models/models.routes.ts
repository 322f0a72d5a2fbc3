import { DEVICE_CATEGORIES, DEVICE_CLASSES, LABEL_FORMATS } from '@bindery/protocol';
import type { FastifyInstance } from 'fastify';
import { principalOf } from '../../http/auth.js';
import type { Services } from '../../services.js';
import { BINDING_MODES, type ModelInput } from './models.service.js';

const modelBody = {
  type: 'object',
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 128 },
    product_key: { type: 'string', pattern: '^[0-9A-Za-z_-]{1,64}$' },
    category_code: { type: 'string', enum: Object.keys(DEVICE_CATEGORIES) },
    class_code: { type: 'string', enum: Object.keys(DEVICE_CLASSES) },
    shared_seed: { type: 'boolean', description: 'All devices of this model use one seed SecretNo for get_secret_no (§A3)' },
    label_format: { type: 'string', enum: [...LABEL_FORMATS] },
    label_template: {
      type: 'string',
      description:
        'For label_format=custom: text with {pk} and {sn} (and optionally {hw_code}); labels are also read back by it (docs/labels.md)',
      nullable: true,
    },
    binding_mode: { type: 'string', enum: [...BINDING_MODES] },
    require_check_char: { type: 'boolean' },
  },
} as const;

export function modelsRoutes(s: Services) {
  return async function models(app: FastifyInstance) {
    app.post<{ Params: { vendorId: string }; Body: ModelInput }>(
      '/api/v1/vendors/:vendorId/models',
      {
        schema: {
          tags: ['models'],
          summary: 'Create a device model; model_secret (and seed_secret_no) are shown this once',
          body: { ...modelBody, required: ['name'] },
        },
      },
      async (req, reply) => reply.status(201).send(await s.models.create(principalOf(req), req.params.vendorId, req.body)),
    );

    app.get<{ Params: { vendorId: string } }>(
      '/api/v1/vendors/:vendorId/models',
      { schema: { tags: ['models'], summary: "List a vendor's models" } },
      async (req) => ({ models: await s.models.list(principalOf(req), req.params.vendorId) }),
    );

    app.get<{ Params: { modelId: string } }>(
      '/api/v1/models/:modelId',
      { schema: { tags: ['models'], summary: 'One model' } },
      async (req) => ({ model: await s.models.get(principalOf(req), req.params.modelId) }),
    );

    app.patch<{ Params: { modelId: string }; Body: Partial<ModelInput> }>(
      '/api/v1/models/:modelId',
      { schema: { tags: ['models'], summary: 'Change a model (name, codes, label format, binding mode)', body: modelBody } },
      async (req) => ({ model: await s.models.update(principalOf(req), req.params.modelId, req.body) }),
    );

    app.post<{ Params: { modelId: string } }>(
      '/api/v1/models/:modelId/secret',
      { schema: { tags: ['models'], summary: 'Rotate the model_secret (the new one is shown once; model tokens die)' } },
      async (req) => s.models.rotateSecret(principalOf(req), req.params.modelId),
    );

    app.get<{ Params: { modelId: string } }>(
      '/api/v1/models/:modelId/seed-secret-no',
      { schema: { tags: ['models'], summary: 'The seed SecretNo of a shared-seed model, for flashing' } },
      async (req) => ({ seed_secret_no: await s.models.seedSecretNo(principalOf(req), req.params.modelId) }),
    );

    app.get<{ Params: { modelId: string } }>(
      '/api/v1/models/:modelId/ticket',
      { schema: { tags: ['models'], summary: 'The current model_ticket (renewed every 10 minutes, valid 30)' } },
      async (req) => s.models.currentTicket(principalOf(req), req.params.modelId),
    );
  };
}
