import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { AppError } from '../../errors.js';
import { principalOf } from '../../http/auth.js';
import type { Services } from '../../services.js';
import { decideRange, etagOf, FirmwareBytesCache, noneMatch } from './download.js';
import type { PublishUrlInput } from './firmware.service.js';

/** Read size of a download: few syscalls per MiB, yet 200 downloads hold only ~50 MiB of buffers. */
const STREAM_CHUNK = 256 * 1024;

const firmwareView = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    model_id: { type: 'string' },
    version: { type: 'string' },
    md5sum: { type: 'string' },
    sha256: { type: ['string', 'null'] },
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
  // Per app (so per process): the bytes of the images devices are downloading right now.
  const fileBytes = new FirmwareBytesCache((p) => readFile(p));
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
              sha256: { type: 'string', maxLength: 64 },
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

    app.get<{ Params: { modelId: string } }>(
      '/api/v1/models/:modelId/firmware/fleet',
      {
        schema: {
          tags: ['firmware'],
          summary: "The firmware versions a model's devices run (last reported), with device and online counts",
          response: {
            200: {
              type: 'object',
              required: ['versions'],
              properties: {
                versions: {
                  type: 'array',
                  items: {
                    type: 'object',
                    required: ['version', 'devices', 'online'],
                    properties: {
                      version: { type: ['string', 'null'] },
                      devices: { type: 'integer' },
                      online: { type: 'integer' },
                    },
                  },
                },
              },
            },
          },
        },
      },
      async (req) => ({ versions: await s.firmware.fleetVersions(principalOf(req), req.params.modelId) }),
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

    app.get<{ Params: { id: string }; Querystring: { sn?: string; exp?: string; sig?: string } }>(
      '/api/v1/firmware/:id/file',
      {
        config: { access: 'public' },
        schema: {
          tags: ['firmware'],
          summary:
            'Download an uploaded firmware file (public: devices fetch it without credentials; the id is unguessable). Range (one range, 206), ETag, If-None-Match and If-Range; a device link from get_firmware_info carries sn, exp and sig, verified here',
          security: [],
          querystring: {
            type: 'object',
            properties: {
              sn: { type: 'string', maxLength: 128 },
              exp: { type: 'string', maxLength: 12 },
              sig: { type: 'string', maxLength: 64 },
            },
          },
        },
      },
      async (req, reply) => {
        const q = req.query;
        if (q.sn !== undefined || q.exp !== undefined || q.sig !== undefined) {
          const v = s.firmware.verifyDeviceLink(req.params.id, q);
          if (v !== 'ok')
            throw new AppError(
              'FIRMWARE_LINK_INVALID',
              v === 'expired' ? 'This firmware link has expired; ask for the firmware info again' : undefined,
            );
        }
        const f = await s.firmware.file(req.params.id);
        if (!f) throw new AppError('FIRMWARE_NOT_FOUND');
        const etag = etagOf(f.md5);
        reply.header('etag', etag);
        reply.header('last-modified', new Date(f.mtimeMs).toUTCString());
        reply.header('accept-ranges', 'bytes');
        if (noneMatch(req.headers['if-none-match'], etag)) return reply.status(304).send();
        reply.header('content-type', 'application/octet-stream');
        reply.header('content-disposition', `attachment; filename="firmware-${f.version.replace(/[^\w.-]/g, '_')}.bin"`);
        const header = (n: string) => {
          const h = req.headers[n];
          return Array.isArray(h) ? h[0] : h;
        };
        const r = decideRange(header('range'), header('if-range'), f.size, etag, f.mtimeMs);
        if (r.kind === 'unsatisfiable') {
          reply.header('content-range', `bytes */${f.size}`);
          throw new AppError('RANGE_NOT_SATISFIABLE');
        }
        const [start, end] = r.kind === 'partial' ? [r.start, r.end] : [0, f.size - 1];
        if (r.kind === 'partial') {
          reply.status(206);
          reply.header('content-range', `bytes ${start}-${end}/${f.size}`);
        }
        reply.header('content-length', String(end - start + 1));
        // Fastify's HEAD handling keeps content-length for a stream (an empty one: no file read).
        if (req.method === 'HEAD') return reply.send(Readable.from([]));
        // Held in memory, a range is a slice of one Buffer written straight to the socket (no copy);
        // files too large to hold stream from disk in large reads.
        const bytes = await fileBytes.get(req.params.id, f.path, f.size);
        if (bytes) return reply.send(bytes.subarray(start, end + 1));
        return reply.send(createReadStream(f.path, { start, end, highWaterMark: STREAM_CHUNK }));
      },
    );
  };
}
