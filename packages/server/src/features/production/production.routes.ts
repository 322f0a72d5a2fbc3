import { PassThrough } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { SnPattern } from '@bindery/protocol';
import type { FastifyInstance } from 'fastify';
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
    'counter: prefix + zero-padded counter of `width` digits, from `start` or after the highest already used; random: prefix + `length` Crockford base32 characters. `check_char` appends a Luhn mod 36 check character.',
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

const listQuery = {
  type: 'object',
  properties: { cursor: { type: 'string' }, limit: { type: 'integer', minimum: 1, maximum: 200 } },
} as const;

export function productionRoutes(s: Services) {
  return async function production(app: FastifyInstance) {
    app.post<{ Params: { modelId: string }; Body: { count: number; pattern: PatternBody } }>(
      '/api/v1/models/:modelId/batches',
      {
        schema: {
          tags: ['batches'],
          summary: 'Generate a label batch: 1–100 000 devices with SNs from a pattern, in one transaction',
          body: {
            type: 'object',
            required: ['count', 'pattern'],
            additionalProperties: false,
            properties: { count: { type: 'integer' }, pattern: patternSchema },
          },
        },
      },
      async (req, reply) => {
        const pattern = toPattern(req.body.pattern);
        const batch = await s.production.createBatch(principalOf(req), req.params.modelId, {
          count: req.body.count,
          pattern,
        });
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
      { schema: { tags: ['batches'], summary: "A vendor's label batches, newest first", querystring: listQuery } },
      async (req) => s.production.listBatches(principalOf(req), { vendorId: req.params.vendorId, ...req.query }),
    );

    app.get<{ Params: { batchId: string } }>(
      '/api/v1/batches/:batchId',
      {
        schema: {
          tags: ['batches'],
          summary: 'One label batch: state and counts (generated, downloaded, paired, activated, bound)',
        },
      },
      async (req) => ({ batch: await s.production.getBatch(principalOf(req), req.params.batchId) }),
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
        const body = new PassThrough({ highWaterMark: 256 * 1024 });
        // Issue 11: a download counts only when the response finished, every byte handed to the
        // client; one that went away halfway ('close' before 'finish') is not counted.
        const sent = finished(reply.raw);
        sent.catch(() => {});
        job
          .stream(body)
          .then(async (result) => {
            await sent;
            await job.delivered(result);
          })
          .catch((err: unknown) => {
            req.log.warn({ err, batch: req.params.batchId }, 'batch zip stream ended early; not counted as downloaded');
          });
        reply.header('content-type', 'application/zip');
        reply.header('content-disposition', `attachment; filename="${job.filename}"`);
        reply.header('cache-control', 'no-store');
        return reply.send(body);
      },
    );

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
