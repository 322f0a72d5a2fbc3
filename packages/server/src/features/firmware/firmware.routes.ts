import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { AppError } from '../../errors.js';
import { principalOf } from '../../http/auth.js';
import type { Services } from '../../services.js';
import type { PublishUrlInput } from './firmware.service.js';

const firmwareView = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    model_id: { type: 'string' },
    version: { type: 'string' },
    md5sum: { type: 'string' },
    size: { type: 'integer' },
    download_url: { type: 'string' },
    source: { type: 'string', enum: ['url', 'upload'] },
    notes: { type: ['string', 'null'] },
    current: { type: 'boolean' },
    created_by: { type: 'string' },
    created_at: { type: 'string' },
  },
} as const;

/** Publishing firmware for a model, and the public download of uploaded files (§A5.7, §A10). */
export function firmwareRoutes(s: Services) {
  return async function firmware(app: FastifyInstance) {
    // Uploads arrive as raw bytes and are streamed to disk (this plugin's scope only).
    if (!app.hasContentTypeParser('application/octet-stream')) {
      app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
    }

    app.post<{ Params: { modelId: string }; Body: PublishUrlInput }>(
      '/api/v1/models/:modelId/firmware',
      {
        schema: {
          tags: ['firmware'],
          summary: 'Publish a firmware version hosted at a URL; it becomes current unless make_current is false',
          body: {
            type: 'object',
            required: ['version', 'download_url', 'md5sum', 'size'],
            additionalProperties: false,
            properties: {
              version: { type: 'string', maxLength: 32 },
              download_url: { type: 'string', maxLength: 2048 },
              md5sum: { type: 'string', maxLength: 32 },
              size: { type: 'integer', minimum: 1 },
              notes: { type: 'string', maxLength: 2000 },
              make_current: { type: 'boolean' },
            },
          },
          response: { 201: { type: 'object', properties: { firmware: firmwareView } } },
        },
      },
      async (req, reply) =>
        reply.status(201).send({ firmware: await s.firmware.publishUrl(principalOf(req), req.params.modelId, req.body) }),
    );

    app.post<{
      Params: { modelId: string };
      Querystring: { version: string; md5sum?: string; notes?: string; make_current?: boolean };
    }>(
      '/api/v1/models/:modelId/firmware/upload',
      {
        schema: {
          tags: ['firmware'],
          summary:
            'Upload a firmware file (Content-Type: application/octet-stream); MD5 and size are computed, and checked against md5sum when given',
          querystring: {
            type: 'object',
            required: ['version'],
            properties: {
              version: { type: 'string', maxLength: 32 },
              md5sum: { type: 'string', maxLength: 32 },
              notes: { type: 'string', maxLength: 2000 },
              make_current: { type: 'boolean' },
            },
          },
          response: { 201: { type: 'object', properties: { firmware: firmwareView } } },
        },
      },
      async (req, reply) => {
        const actor = principalOf(req);
        if (!req.body) {
          // Fastify parses nothing for an empty body; anything but octet-stream is the wrong door.
          if (req.headers['content-type']?.startsWith('application/octet-stream')) {
            throw new AppError('VALIDATION_FAILED', 'the firmware file is empty');
          }
          throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'Send the file as Content-Type: application/octet-stream');
        }
        const fw = await s.firmware.publishUpload(actor, req.params.modelId, req.query, req.body as Readable | Buffer);
        return reply.status(201).send({ firmware: fw });
      },
    );

    app.get<{ Params: { modelId: string } }>(
      '/api/v1/models/:modelId/firmware',
      {
        schema: {
          tags: ['firmware'],
          summary: "A model's published firmware, newest first",
          response: { 200: { type: 'object', properties: { firmware: { type: 'array', items: firmwareView } } } },
        },
      },
      async (req) => ({ firmware: await s.firmware.list(principalOf(req), req.params.modelId) }),
    );

    app.post<{ Params: { modelId: string; id: string } }>(
      '/api/v1/models/:modelId/firmware/:id/current',
      {
        schema: {
          tags: ['firmware'],
          summary: 'Make a published version the current one (what get_firmware_info answers)',
          response: { 200: { type: 'object', properties: { firmware: firmwareView } } },
        },
      },
      async (req) => ({ firmware: await s.firmware.makeCurrent(principalOf(req), req.params.modelId, req.params.id) }),
    );

    app.get<{ Params: { id: string } }>(
      '/api/v1/firmware/:id/file',
      {
        config: { access: 'public' },
        schema: {
          tags: ['firmware'],
          summary: 'Download an uploaded firmware file (public: devices fetch it without credentials; the id is unguessable)',
          security: [],
        },
      },
      async (req, reply) => {
        const f = await s.firmware.file(req.params.id);
        if (!f) throw new AppError('FIRMWARE_NOT_FOUND');
        reply.header('content-type', 'application/octet-stream');
        reply.header('content-length', String(f.size));
        reply.header('content-disposition', `attachment; filename="firmware-${f.version.replace(/[^\w.-]/g, '_')}.bin"`);
        return reply.send(createReadStream(f.path));
      },
    );
  };
}
