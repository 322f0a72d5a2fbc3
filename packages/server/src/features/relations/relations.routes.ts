import { Readable, Transform } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { AppError, fail } from '../../errors.js';
import { principalOf } from '../../http/auth.js';
import type { Services } from '../../services.js';
import type { Lang } from './relations.columns.js';
import { type FileFormat, importRejected } from './relations.service.js';

export const XLSX_MIME = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';
/** Uploads to the import route only; the rest of the API keeps the app's small body limit. */
export const IMPORT_BODY_LIMIT = 200 * 1024 * 1024;

const CSV_TYPES = ['text/csv', 'application/csv', 'text/plain'];
/** Types that say nothing about csv vs xlsx (browsers send vnd.ms-excel for .csv on Windows). */
const NEUTRAL_TYPES = ['application/octet-stream', 'application/vnd.ms-excel'];

/** csv or xlsx, from `format=`, else the content type, else the file name's extension. */
export function resolveFormat(
  format: string | undefined,
  contentType: string | undefined,
  fileName: string | undefined,
): FileFormat {
  if (format === 'csv' || format === 'xlsx') return format;
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (CSV_TYPES.includes(type)) return 'csv';
  if (type === XLSX_MIME) return 'xlsx';
  const ext = /\.([a-z]+)$/i.exec(fileName ?? '')?.[1]?.toLowerCase();
  if (ext === 'csv' || ext === 'xlsx') return ext;
  return fail(
    'VALIDATION_FAILED',
    'Say which format the file is: format=csv or format=xlsx (or send Content-Type text/csv or the xlsx type)',
  );
}

/**
 * The body as the importer reads it: passed through, failing with PAYLOAD_TOO_LARGE once it
 * exceeds `max` bytes. Piped, not pipelined, on purpose: when the importer stops early (a bad
 * header, too large) and destroys what it reads, the request must stay open so the answer can
 * still be sent. The unread rest is then drained and discarded (at most `max` more bytes, then
 * the connection is dropped), because Node leaves a partly read body paused and the keep-alive
 * connection would hang on it.
 */
export function shieldedBody(req: Readable, max: number): Readable {
  let seen = 0;
  const body = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > max) cb(new AppError('PAYLOAD_TOO_LARGE', `The file is larger than ${max / (1024 * 1024)} MB`));
      else cb(null, chunk);
    },
  });
  // The importer sees any error when it reads; until it starts (it checks the vendor first)
  // nobody else listens, and an unheard stream error would end the process.
  body.on('error', () => {});
  body.on('close', () => {
    if (req.readableEnded) return;
    req.unpipe(body);
    let drained = 0;
    req.on('data', (chunk: Buffer) => {
      drained += chunk.length;
      if (drained > max) req.destroy();
    });
    req.resume();
  });
  req.on('error', (e) => body.destroy(e));
  req.on('close', () => {
    if (!req.readableEnded && !body.destroyed) body.destroy(new Error('The upload was aborted'));
  });
  req.pipe(body);
  return body;
}

const langQuery = {
  type: 'object',
  properties: { lang: { type: 'string', enum: ['zh', 'en'], default: 'zh' } },
} as const;

export function relationsRoutes(s: Services) {
  return async function relations(app: FastifyInstance) {
    // In this plugin's scope only: the raw upload goes to the importer as a stream, unbuffered.
    app.addContentTypeParser([...CSV_TYPES, XLSX_MIME, ...NEUTRAL_TYPES], (_req, payload, done) => {
      done(null, payload);
    });

    for (const format of ['csv', 'xlsx'] as const) {
      app.get<{ Querystring: { lang: Lang } }>(
        `/api/v1/relations/template.${format}`,
        {
          config: { access: 'public' },
          schema: {
            tags: ['relations'],
            summary: `Download the SN↔DeviceKey relation-file template (${format}; lang=zh or en headers)`,
            security: [],
            querystring: langQuery,
          },
        },
        async (req, reply) => {
          const lang = req.query.lang;
          const body = await s.relations.template(format, lang);
          return reply
            .header('content-type', format === 'csv' ? 'text/csv; charset=utf-8' : XLSX_MIME)
            .header('content-disposition', `attachment; filename="relations-template-${lang}.${format}"`)
            .send(body);
        },
      );
    }

    app.post<{
      Params: { vendorId: string };
      Querystring: { dry_run?: boolean; filename?: string; format?: FileFormat };
      Body: Readable | undefined;
    }>(
      '/api/v1/vendors/:vendorId/relations/import',
      {
        bodyLimit: IMPORT_BODY_LIMIT,
        // Authenticate before the body is read: nobody streams 200 MB at us anonymously.
        onRequest: async (req) => {
          principalOf(req);
        },
        schema: {
          tags: ['relations'],
          summary:
            'Import a relation file (the raw csv or xlsx as the body). All or nothing: any error rejects the whole file (422 IMPORT_REJECTED, the report in details with line numbers). dry_run=true only validates.',
          consumes: [...CSV_TYPES, XLSX_MIME, ...NEUTRAL_TYPES],
          // Documentation only: a schema without a type accepts the stream the parser passes on.
          body: { description: 'The relation file itself (csv or xlsx bytes), not a form upload' },
          querystring: {
            type: 'object',
            properties: {
              dry_run: { type: 'boolean', default: false },
              filename: { type: 'string', maxLength: 255 },
              format: { type: 'string', enum: ['csv', 'xlsx'] },
            },
          },
        },
      },
      async (req) => {
        const actor = principalOf(req);
        const declared = Number(req.headers['content-length']);
        if (Number.isFinite(declared) && declared > IMPORT_BODY_LIMIT) {
          fail('PAYLOAD_TOO_LARGE', `The file is larger than ${IMPORT_BODY_LIMIT / (1024 * 1024)} MB`);
        }
        const format = resolveFormat(req.query.format, req.headers['content-type'], req.query.filename);
        if (!req.body) fail('VALIDATION_FAILED', 'Send the file as the request body');
        const report = await s.relations.importFile(actor, req.params.vendorId, shieldedBody(req.body, IMPORT_BODY_LIMIT), {
          format,
          dryRun: req.query.dry_run === true,
          fileName: req.query.filename,
        });
        if (report.error_count > 0) throw importRejected(report);
        return report;
      },
    );

    app.get<{ Params: { vendorId: string }; Querystring: { lang: Lang } }>(
      '/api/v1/vendors/:vendorId/relations/export.csv',
      {
        schema: {
          tags: ['relations'],
          summary:
            "The vendor's current pairings as a relation file (csv, the import's own headers); formula-looking cells start with '",
          querystring: langQuery,
        },
      },
      async (req, reply) => {
        const chunks = await s.relations.exportCsv(principalOf(req), req.params.vendorId, req.query.lang);
        return reply
          .header('content-type', 'text/csv; charset=utf-8')
          .header('content-disposition', `attachment; filename="relations-${req.params.vendorId}.csv"`)
          .send(Readable.from(chunks));
      },
    );

    app.get<{ Params: { vendorId: string }; Querystring: { limit?: number; cursor?: string } }>(
      '/api/v1/vendors/:vendorId/relations/imports',
      {
        schema: {
          tags: ['relations'],
          summary: "A vendor's relation-file imports, newest first: who, when, file, rows, result",
          querystring: {
            type: 'object',
            properties: { limit: { type: 'integer', minimum: 1, maximum: 200 }, cursor: { type: 'string' } },
          },
        },
      },
      async (req) => s.relations.listImports(principalOf(req), req.params.vendorId, req.query),
    );
  };
}
