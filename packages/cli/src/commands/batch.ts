import type { SnPattern } from '@bindery/protocol';
import { AppError } from '@bindery/server/errors.js';
import { type BatchView, batchWarnings, type ZipPart } from '@bindery/server/features/production/production.service.js';
import type { Command } from 'commander';
import { formatBytes, intArg, writeFileAtomically } from '../args.js';
import type { CliContext } from '../context.js';
import { keyValues, table } from '../output.js';

interface CreateOptions {
  count: number;
  prefix?: string;
  width?: number;
  start?: number;
  random: boolean;
  length?: number;
  checkChar: boolean;
}

/** The two SN pattern forms, told apart by --random; mixing their options is a usage error. */
function patternOf(o: CreateOptions): SnPattern {
  const prefix = o.prefix ?? '';
  const checkChar = o.checkChar;
  if (o.random) {
    const mixed = [o.width !== undefined && '--width', o.start !== undefined && '--start'].filter(Boolean);
    if (mixed.length) {
      throw new AppError(
        'VALIDATION_FAILED',
        `${mixed.join(' and ')} ${mixed.length > 1 ? 'belong' : 'belongs'} to counter SNs, not --random`,
      );
    }
    if (o.length === undefined) throw new AppError('VALIDATION_FAILED', '--random needs --length (6–40)');
    return { kind: 'random', prefix, length: o.length, checkChar };
  }
  if (o.length !== undefined) throw new AppError('VALIDATION_FAILED', '--length belongs to --random SNs; counters take --width');
  if (o.width === undefined) {
    throw new AppError('VALIDATION_FAILED', 'give --prefix and --width for counter SNs, or --random --length for random ones');
  }
  return { kind: 'counter', prefix, width: o.width, ...(o.start !== undefined ? { start: o.start } : {}), checkChar };
}

function flat(b: BatchView): Record<string, unknown> {
  const { counts, pattern, ...rest } = b;
  return { ...rest, pattern, ...Object.fromEntries(Object.entries(counts).map(([k, v]) => [`${k}_count`, v])) };
}

/** `--only png,pdf` → the parts; the service names any unknown one. */
function parts(value: string): ZipPart[] {
  return value.split(',').map((p) => p.trim()) as ZipPart[];
}

export function register(program: Command, ctx: CliContext): void {
  const batch = program.command('batch').description('label batches: generated SNs, QR label zips, secrets for flashing');

  batch
    .command('create')
    .description('generate N devices for a model, SNs from a counter (--prefix --width [--start]) or random (--random --length)')
    .argument('<modelId>')
    .requiredOption('--count <n>', 'how many devices (1–100000)', intArg(0))
    .option('--prefix <text>', 'text every SN starts with', '')
    .option(
      '--width <digits>',
      'counter digits, zero-padded; continues after the highest counter used with this prefix',
      intArg(0),
    )
    .option('--start <n>', 'first counter value (default: continue)', intArg(0))
    .option('--random', 'random Crockford base32 SNs instead of a counter', false)
    .option('--length <n>', 'random characters after the prefix', intArg(0))
    .option('--check-char', 'append a check character (P-SN-4: no look-alikes such as O/0) that catches typing mistakes', false)
    .action(async (modelId: string, o: CreateOptions) => {
      const pattern = patternOf(o);
      const s = await ctx.services();
      const bar = ctx.progress('generating');
      try {
        const b = await s.production.createBatch(ctx.actor, modelId, { count: o.count, pattern }, (done, total) =>
          bar.update(done, total),
        );
        bar.stop();
        const warnings = batchWarnings(pattern);
        ctx.out.result({ batch: b, warnings }, () => keyValues(flat(b)));
        for (const w of warnings) ctx.out.note(`warning: ${w}`);
      } finally {
        bar.stop();
      }
    });

  batch
    .command('list')
    .description("a model's batches, newest first")
    .argument('<modelId>')
    .action(async (modelId: string) => {
      const s = await ctx.services();
      const batches: BatchView[] = [];
      let cursor: string | undefined;
      do {
        const page = await s.production.listBatches(ctx.actor, { modelId, cursor, limit: 200 });
        batches.push(...page.batches);
        cursor = page.next_cursor ?? undefined;
      } while (cursor);
      ctx.out.result({ batches }, () =>
        table(batches, [
          { header: 'BATCH ID', value: (b) => b.id },
          { header: 'STATE', value: (b) => b.state },
          { header: 'COUNT', value: (b) => b.count },
          { header: 'FIRST SN', value: (b) => b.first_sn },
          { header: 'LAST SN', value: (b) => b.last_sn },
          { header: 'DOWNLOADS', value: (b) => b.counts.downloaded },
          { header: 'PAIRED', value: (b) => b.counts.paired },
          { header: 'ACTIVATED', value: (b) => b.counts.activated },
          { header: 'BOUND', value: (b) => b.counts.bound },
          { header: 'CREATED', value: (b) => b.created_at },
        ]),
      );
    });

  batch
    .command('show')
    .description('one batch with its counts')
    .argument('<batchId>')
    .action(async (batchId: string) => {
      const s = await ctx.services();
      const b = await s.production.getBatch(ctx.actor, batchId);
      ctx.out.result({ batch: b }, () => keyValues(flat(b)));
    });

  batch
    .command('download')
    .description('write the label zip: manifests, png/ and svg/ QR images, A4 and roll label PDFs (no secrets)')
    .argument('<batchId>')
    .option('-o, --output <file>', 'where to write it (default: labels_<batch>_<time>.zip here)')
    .option('--only <parts>', 'comma-separated parts to include: manifest, png, svg, pdf (default: all)', parts)
    .action(async (batchId: string, o: { output?: string; only?: ZipPart[] }) => {
      const s = await ctx.services();
      const bar = ctx.progress('rendering');
      try {
        const job = await s.production.prepareBatchZip(ctx.actor, batchId, {
          ...(o.only ? { include: o.only } : {}),
          onProgress: (done, total) => bar.update(done, total),
        });
        let result = { bytes: 0, entries: 0, devices: 0 };
        const file = await writeFileAtomically(o.output ?? job.filename, async (out) => {
          result = await job.write(out);
        });
        bar.stop();
        const doc = { batch_id: batchId, file: file.path, bytes: file.bytes, entries: result.entries, devices: result.devices };
        ctx.out.result(
          doc,
          () => `wrote ${file.path} (${formatBytes(file.bytes)}, ${result.entries} files, ${result.devices} labels)`,
        );
      } finally {
        bar.stop();
      }
    });

  batch
    .command('secrets')
    .description("write the batch's SNs with their SecretNos (and seed SecretNo) as csv, for flashing; audited")
    .argument('<batchId>')
    .option('-o, --output <file>', 'where to write it, readable only by you (default: secrets_<batch>_<time>.csv here)')
    .action(async (batchId: string, o: { output?: string }) => {
      const s = await ctx.services();
      const job = await s.production.prepareSecretsCsv(ctx.actor, batchId);
      let rows = 0;
      const file = await writeFileAtomically(
        o.output ?? job.filename,
        async (out) => {
          rows = (await job.write(out)).rows;
        },
        { mode: 0o600 },
      );
      ctx.out.result({ batch_id: batchId, file: file.path, rows }, () => {
        ctx.out.note('This file holds device secrets: flash them, then delete it.');
        return `wrote ${file.path} (${rows} devices)`;
      });
    });
}
