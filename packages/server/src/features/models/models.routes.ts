import { APP_SCENES, DEVICE_CATEGORIES, DEVICE_CLASSES, LABEL_FORMATS } from '@bindery/protocol';
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
    app_scene_code: {
      type: 'string',
      enum: Object.keys(APP_SCENES),
      nullable: true,
      description: 'Seed-002 app scene for devices registered without one',
    },
    org_campaigns_allowed: {
      type: 'boolean',
      description: 'Organisations owning devices of the model may run firmware campaigns on them (docs/ota.md)',
    },
  },
} as const;

const str = { type: 'string' } as const;
const strOrNull = { type: 'string', nullable: true } as const;
/** A model as every model route answers it (ModelView). */
export const modelSchema = {
  type: 'object',
  required: ['model_id', 'vendor_id', 'name', 'product_key', 'label_format', 'binding_mode', 'created_at'],
  properties: {
    model_id: str,
    vendor_id: str,
    name: str,
    product_key: str,
    category_code: str,
    category: str,
    class_code: str,
    class: str,
    shared_seed: { type: 'boolean' },
    label_format: { type: 'string', enum: [...LABEL_FORMATS] },
    label_template: strOrNull,
    binding_mode: { type: 'string', enum: [...BINDING_MODES] },
    require_check_char: { type: 'boolean' },
    app_scene_code: strOrNull,
    app_scene: strOrNull,
    created_at: str,
    archived_at: strOrNull,
    org_campaigns_allowed: { type: 'boolean' },
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
          response: {
            201: {
              type: 'object',
              required: ['model', 'model_secret'],
              properties: { model: modelSchema, model_secret: str, seed_secret_no: str },
            },
          },
        },
      },
      async (req, reply) => reply.status(201).send(await s.models.create(principalOf(req), req.params.vendorId, req.body)),
    );

    app.put<{ Params: { modelId: string }; Body: { archived: boolean } }>(
      '/api/v1/models/:modelId/archived',
      {
        schema: {
          tags: ['models'],
          summary: 'Archive a model (no new devices or batches; its devices keep working) or restore it',
          params: { type: 'object', required: ['modelId'], properties: { modelId: str } },
          body: {
            type: 'object',
            required: ['archived'],
            additionalProperties: false,
            properties: { archived: { type: 'boolean' } },
          },
          response: { 200: { type: 'object', required: ['model'], properties: { model: modelSchema } } },
        },
      },
      async (req) => ({ model: await s.models.setArchived(principalOf(req), req.params.modelId, req.body.archived) }),
    );

    app.get<{ Params: { vendorId: string } }>(
      '/api/v1/vendors/:vendorId/models',
      {
        schema: {
          tags: ['models'],
          summary: "List a vendor's models (archived ones carry archived_at)",
          response: {
            200: { type: 'object', required: ['models'], properties: { models: { type: 'array', items: modelSchema } } },
          },
        },
      },
      async (req) => ({ models: await s.models.list(principalOf(req), req.params.vendorId) }),
    );

    app.get<{ Params: { modelId: string } }>(
      '/api/v1/models/:modelId',
      {
        schema: {
          tags: ['models'],
          summary: 'One model',
          response: { 200: { type: 'object', required: ['model'], properties: { model: modelSchema } } },
        },
      },
      async (req) => ({ model: await s.models.get(principalOf(req), req.params.modelId) }),
    );

    app.patch<{ Params: { modelId: string }; Body: Partial<ModelInput> }>(
      '/api/v1/models/:modelId',
      {
        schema: {
          tags: ['models'],
          summary: 'Change a model (name, codes, label format, binding mode)',
          body: modelBody,
          response: { 200: { type: 'object', required: ['model'], properties: { model: modelSchema } } },
        },
      },
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
