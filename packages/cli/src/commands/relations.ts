import { createReadStream, statSync } from 'node:fs';
import path from 'node:path';
import { Transform } from 'node:stream';
import { AppError, ERRORS } from '@bindery/server/errors.js';
import type { ImportReport } from '@bindery/server/features/relations/relations.service.js';
import type { Command } from 'commander';
import { oneOf, writeFileAtomically } from '../args.js';
import type { CliContext } from '../context.js';
import { table } from '../output.js';

type Format = 'csv' | 'xlsx';
const FORMATS: readonly Format[] = ['csv', 'xlsx'];

/** The format named by --format, else by the file's extension. */
function formatOf(file: string, given: Format | undefined): Format {
  if (given) return given;
  const ext = path.extname(file).toLowerCase();
  if (ext === '.xlsx') return 'xlsx';
  if (ext === '.csv' || ext === '.txt') return 'csv';
  throw new AppError('VALIDATION_FAILED', `Cannot tell the format of ${file} from its name; pass --format csv or --format xlsx`);
}

function summary(r: ImportReport): string {
  const what = `${r.rows} rows: ${r.paired} paired, ${r.updated} updated, ${r.unchanged} unchanged`;
  return r.dry_run ? `dry run, nothing written; the import would give ${what}` : `imported ${what} (import ${r.import_id})`;
}

export function register(program: Command, ctx: CliContext): void {
  const relations = program
    .command('relations')
    .description('relation files: the production line SN ↔ DeviceKey (IMEI/MAC) pairs (Quectel §B3)');

  relations
    .command('template')
    .description('write the empty import template')
    .option('--format <format>', 'csv (UTF-8 with BOM, opens right in Excel) or xlsx', oneOf(FORMATS), 'csv')
    .option('--lang <lang>', 'header language: zh or en', oneOf(['zh', 'en'] as const), 'zh')
    .option('-o, --output <file>', 'where to write it (default: relations-template-<lang>.<format> here)')
    .action(async (o: { format: Format; lang: 'zh' | 'en'; output?: string }) => {
      const s = await ctx.services();
      const buf = await s.relations.template(o.format, o.lang);
      const file = await writeFileAtomically(o.output ?? `relations-template-${o.lang}.${o.format}`, async (out) => {
        out.end(buf);
      });
      ctx.out.result({ file: file.path, format: o.format, lang: o.lang, bytes: file.bytes }, () => `wrote ${file.path}`);
    });

  relations
    .command('import')
    .description(
      "pair a vendor's registered devices with their DeviceKeys from a csv or xlsx file; the whole file is checked first and nothing is written if any line is wrong",
    )
    .argument('<vendorId>')
    .argument('<file>')
    .option('--format <format>', 'csv or xlsx (default: from the file name)', oneOf(FORMATS))
    .option('--dry-run', 'check the file and report what would change, writing nothing', false)
    .action(async (vendorId: string, file: string, o: { format?: Format; dryRun: boolean }) => {
      const format = formatOf(file, o.format);
      let size: number;
      try {
        size = statSync(file).size;
      } catch {
        throw new AppError('NOT_FOUND', `Cannot read ${file}`);
      }
      const s = await ctx.services();
      const bar = ctx.progress('importing', 'importing [{bar}] {percentage}% | {rows} rows read');
      let bytes = 0;
      let rows = 0;
      // Progress by bytes read (the file's size is known, its row count is not), rows as a caption.
      const counted = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          bytes += chunk.length;
          bar.update(bytes, size, { rows });
          cb(null, chunk);
        },
      });
      const source = createReadStream(file);
      source.on('error', (e) => counted.destroy(e));
      try {
        const report = await s.relations.importFile(ctx.actor, vendorId, source.pipe(counted), {
          format,
          dryRun: o.dryRun,
          fileName: path.basename(file),
          onProgress: (done) => {
            rows = done;
            bar.update(bytes, size, { rows });
          },
        });
        bar.stop();
        if (report.error_count > 0) {
          throw new AppError('IMPORT_REJECTED', ERRORS.IMPORT_REJECTED.message, report);
        }
        ctx.out.result(report, () => summary(report));
      } finally {
        bar.stop();
        source.destroy();
      }
    });

  relations
    .command('imports')
    .description("a vendor's import history, newest first")
    .argument('<vendorId>')
    .action(async (vendorId: string) => {
      const s = await ctx.services();
      const page = await s.relations.listImports(ctx.actor, vendorId, { limit: 200 });
      ctx.out.result(page, () =>
        table(page.imports, [
          { header: 'IMPORT ID', value: (i) => i.id },
          { header: 'RESULT', value: (i) => i.result },
          { header: 'FILE', value: (i) => i.file_name },
          { header: 'ROWS', value: (i) => i.rows },
          { header: 'PAIRED', value: (i) => i.paired },
          { header: 'ERRORS', value: (i) => i.error_count },
          { header: 'BY', value: (i) => i.actor },
          { header: 'AT', value: (i) => i.finished_at },
        ]),
      );
    });
}
