import { PassThrough } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { SnPattern } from '@bindery/protocol';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { principalOf } from '../../http/auth.js';
import type { Services } from '../../services.js';
import { batchWarnings, ZIP_PARTS, type ZipPart } from './production.service.js';

interface PatternBody {
  kind: 'counter' | 'random';
  prefix?: string;
  width?: number;
  start?: number;
  length?: number;
  check_char?: boolean;
}

const patternSchema = {
  type: 'object',
  required: ['kind'],
  additionalProperties: false,
  description:
    'counter: prefix + zero-padded counter of `width` digits, from `start` or after the highest already used; random: prefix + `length` Crockford base32 characters. `check_char` appends a check character from an alphabet without look-alikes (docs/protocol.md P-SN-4).',
  properties: {
    kind: { type: 'string', enum: ['counter', 'random'] },
    prefix: { type: 'string', maxLength: 64 },
    width: { type: 'integer' },
    start: { type: 'integer' },
    length: { type: 'integer' },
    check_char: { type: 'boolean' },
  },
} as const;

function toPattern(b: PatternBody): SnPattern {
  const prefix = b.prefix ?? '';
  return b.kind === 'counter'
    ? {
        kind: 'counter',
        prefix,
        width: b.width ?? 6,
        ...(b.start !== undefined ? { start: b.start } : {}),
        checkChar: b.check_char === true,
      }
    : { kind: 'random', prefix, length: b.length ?? 10, checkChar: b.check_char === true };
}

const nullableString = { type: ['string', 'null'] } as const;
/** The batch as every batch route returns it (BatchView). */
export const batchSchema = {
  type: 'object',
  required: ['id', 'model_id', 'vendor_id', 'state', 'error', 'pattern', 'count', 'counts', 'created_at', 'finished_at'],
  properties: {
    id: { type: 'string' },
    model_id: { type: 'string' },
    vendor_id: { type: 'string' },
    state: { type: 'string', enum: ['generating', 'ready', 'failed'] },
    error: nullableString,
    pattern: {
      type: 'object',
      required: ['kind', 'prefix', 'check_char'],
      properties: {
        kind: { type: 'string', enum: ['counter', 'random'] },
        prefix: { type: 'string' },
        width: { type: 'integer' },
        start: { type: ['integer', 'null'] },
        length: { type: 'integer' },
        check_char: { type: 'boolean' },
      },
    },
    count: { type: 'integer' },
    first_sn: nullableString,
    last_sn: nullableString,
    counts: {
      type: 'object',
      required: ['generated', 'downloaded', 'paired', 'activated', 'bound'],
      properties: {
        generated: { type: 'integer', description: 'Devices written so far: the progress of a generating batch' },
        downloaded: { type: 'integer' },
        paired: { type: 'integer' },
        activated: { type: 'integer' },
        bound: { type: 'integer' },
      },
    },
    created_at: { type: 'string' },
    finished_at: nullableString,
  },
} as const;

const createdSchema = {
  type: 'object',
  required: ['batch', 'warnings'],
  properties: { batch: batchSchema, warnings: { type: 'array', items: { type: 'string' } } },
} as const;

const listQuery = {
  type: 'object',
  properties: { cursor: { type: 'string' }, limit: { type: 'integer', minimum: 1, maximum: 200 } },
} as const;

export function productionRoutes(s: Services) {
  return async function production(app: FastifyInstance) {
    app.post<{ Params: { modelId: string }; Body: { count: number; pattern: PatternBody; background?: boolean } }>(
      '/api/v1/models/:modelId/batches',
      {
        schema: {
          tags: ['batches'],
          summary:
            'Generate a label batch: 1–100 000 devices with SNs from a pattern, in one transaction (201); with background=true answer 202 at once with the batch `generating` (poll it: counts.generated is the progress)',
          body: {
            type: 'object',
            required: ['count', 'pattern'],
            additionalProperties: false,
            properties: {
              count: { type: 'integer' },
              pattern: patternSchema,
              background: {
                type: 'boolean',
                description: 'Write the devices in the background, a slice per transaction; still all or nothing',
              },
            },
          },
          response: { 201: createdSchema, 202: createdSchema },
        },
      },
      async (req, reply) => {
        const pattern = toPattern(req.body.pattern);
        const input = { count: req.body.count, pattern };
        const actor = principalOf(req);
        if (req.body.background === true) {
          const batch = await s.production.startBatch(actor, req.params.modelId, input);
          return reply.status(202).send({ batch, warnings: batchWarnings(pattern) });
        }
        const batch = await s.production.createBatch(actor, req.params.modelId, input);
        return reply.status(201).send({ batch, warnings: batchWarnings(pattern) });
      },
    );

    app.get<{ Params: { modelId: string }; Querystring: { cursor?: string; limit?: number } }>(
      '/api/v1/models/:modelId/batches',
      { schema: { tags: ['batches'], summary: "A model's label batches, newest first", querystring: listQuery } },
      async (req) => s.production.listBatches(principalOf(req), { modelId: req.params.modelId, ...req.query }),
    );

    app.get<{ Params: { vendorId: string }; Querystring: { cursor?: string; limit?: number } }>(
      '/api/v1/vendors/:vendorId/batches',
      {
        schema: {
          tags: ['batches'],
          summary: "A vendor's label batches, newest first",
          querystring: listQuery,
          response: {
            200: {
              type: 'object',
              required: ['batches', 'next_cursor'],
              properties: { batches: { type: 'array', items: batchSchema }, next_cursor: nullableString },
            },
          },
        },
      },
      async (req) => s.production.listBatches(principalOf(req), { vendorId: req.params.vendorId, ...req.query }),
    );

    app.get<{ Params: { batchId: string } }>(
      '/api/v1/batches/:batchId',
      {
        schema: {
          tags: ['batches'],
          summary: 'One label batch: state and counts (generated, downloaded, paired, activated, bound)',
          response: { 200: { type: 'object', required: ['batch'], properties: { batch: batchSchema } } },
        },
      },
      async (req) => ({ batch: await s.production.getBatch(principalOf(req), req.params.batchId) }),
    );

    app.get<{ Params: { batchId: string }; Querystring: { sn?: string } }>(
      '/api/v1/batches/:batchId/preview.svg',
      {
        schema: {
          tags: ['batches'],
          summary:
            "One of the batch's labels (the first, or `sn`) as an SVG at its printed size (50 × 30 mm roll label): QR, SN, verification code, model",
          querystring: { type: 'object', properties: { sn: { type: 'string', maxLength: 128 } } },
        },
      },
      async (req, reply) => {
        const svg = await s.production.previewSvg(principalOf(req), req.params.batchId, req.query.sn);
        reply.header('content-type', 'image/svg+xml; charset=utf-8');
        reply.header('cache-control', 'private, no-store');
        return reply.send(svg);
      },
    );

    app.get<{ Params: { batchId: string }; Querystring: { include?: string } }>(
      '/api/v1/batches/:batchId/download',
      {
        schema: {
          tags: ['batches'],
          summary:
            'The batch zip, streamed: manifest.csv/.xlsx, png/<SN>.png, svg/<SN>.svg, labels-a4.pdf, labels-roll.pdf (no secrets)',
          querystring: {
            type: 'object',
            properties: {
              include: {
                type: 'string',
                pattern: `^(${ZIP_PARTS.join('|')})(,(${ZIP_PARTS.join('|')}))*$`,
                description: `Comma-separated parts to include (default all): ${ZIP_PARTS.join(', ')}`,
              },
            },
          },
        },
      },
      async (req, reply) => {
        const include = req.query.include ? (req.query.include.split(',') as ZipPart[]) : undefined;
        // Checks run before the first byte, so a missing or failed batch still gets a JSON error.
        const job = await s.production.prepareBatchZip(principalOf(req), req.params.batchId, { include });
        return sendDownload(req, reply, job, 'application/zip');
      },
    );

    // The zip's two label PDFs on their own (issue 13 item 4), for printing without unpacking the zip;
    // the same rendering as the zip's entries (batch-zip.ts renderBatchPdf) and the same roles.
    for (const [layout, what] of [
      ['a4', 'A4 sheets of 4 × 8 labels (47.5 × 34.1 mm) with cut guides'],
      ['roll', 'one 50 × 30 mm label per page, for roll label printers'],
    ] as const) {
      app.get<{ Params: { batchId: string } }>(
        `/api/v1/batches/:batchId/labels-${layout}.pdf`,
        {
          schema: {
            tags: ['batches'],
            summary: `The batch's labels-${layout}.pdf, streamed (as in the zip): ${what}; each label's QR, SN and verification code. Audited`,
            params: { type: 'object', required: ['batchId'], properties: { batchId: { type: 'string', maxLength: 64 } } },
          },
        },
        async (req, reply) => {
          // Checked before the first byte: a missing or unfinished batch still gets a JSON error.
          const job = await s.production.prepareBatchPdf(principalOf(req), req.params.batchId, layout);
          return sendDownload(req, reply, job, 'application/pdf');
        },
      );
    }

    app.get<{ Params: { batchId: string } }>(
      '/api/v1/batches/:batchId/secrets.csv',
      {
        schema: {
          tags: ['batches'],
          summary: 'The secrets file for flashing: SN, SecretNo (and SeedSecretNo for shared-seed models). Audited',
        },
      },
      async (req, reply) => {
        const job = await s.production.prepareSecretsCsv(principalOf(req), req.params.batchId);
        const body = new PassThrough();
        job.write(body).catch((err: unknown) => {
          req.log.warn({ err, batch: req.params.batchId }, 'secrets stream ended early');
        });
        reply.header('content-type', 'text/csv; charset=utf-8');
        reply.header('content-disposition', `attachment; filename="${job.filename}"`);
        reply.header('cache-control', 'no-store');
        return reply.send(body);
      },
    );
  };
}

/**
 * Streams a prepared batch download (the zip, a label PDF). Issue 11: it counts as downloaded only
 * when the response finished, every byte handed to the client; one that went away halfway ('close'
 * before 'finish') is not counted.
 */
function sendDownload<R>(
  req: FastifyRequest<{ Params: { batchId: string } }>,
  reply: FastifyReply,
  job: { filename: string; stream(out: PassThrough): Promise<R>; delivered(result: R): Promise<void> },
  contentType: string,
) {
  const body = new PassThrough({ highWaterMark: 256 * 1024 });
  const sent = finished(reply.raw);
  sent.catch(() => {});
  job
    .stream(body)
    .then(async (result) => {
      await sent;
      await job.delivered(result);
    })
    .catch((err: unknown) => {
      req.log.warn(
        { err, batch: req.params.batchId, file: job.filename },
        'batch download ended early; not counted as downloaded',
      );
    });
  reply.header('content-type', contentType);
  reply.header('content-disposition', `attachment; filename="${job.filename}"`);
  reply.header('cache-control', 'no-store');
  return reply.send(body);
}
