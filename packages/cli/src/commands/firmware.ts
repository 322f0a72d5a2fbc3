import { createReadStream, statSync } from 'node:fs';
import { AppError } from '@bindery/server/errors.js';
import type { FirmwareView } from '@bindery/server/features/firmware/firmware.service.js';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { keyValues, table } from '../output.js';

/** One version as the CLI prints it. */
function shown(f: FirmwareView): Record<string, unknown> {
  return {
    id: f.id,
    version: f.version,
    current: f.current,
    size: f.size,
    md5sum: f.md5sum,
    sha256: f.sha256,
    source: f.source,
    download_url: f.download_url,
    notes: f.notes,
    created_at: f.created_at,
  };
}

/** Positive whole number of bytes, from an option. */
function bytes(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new AppError('VALIDATION_FAILED', `--size must be a positive whole number of bytes, not ${v}`);
  return n;
}

export function register(program: Command, ctx: CliContext): void {
  const fw = program
    .command('firmware')
    .description(
      "a model's firmware: upload a file or publish a URL, list versions, choose the current one, see what the fleet runs",
    );

  fw.command('list')
    .description("a model's published versions, newest first")
    .argument('<modelId>')
    .action(async (modelId: string) => {
      const s = await ctx.services();
      const firmware = await s.firmware.list(ctx.actor, modelId);
      ctx.out.result({ firmware }, () =>
        table(firmware, [
          { header: 'VERSION', value: (f) => f.version },
          { header: 'CURRENT', value: (f) => (f.current ? 'yes' : '') },
          { header: 'SIZE', value: (f) => f.size },
          { header: 'MD5', value: (f) => f.md5sum },
          { header: 'SHA-256', value: (f) => f.sha256 ?? '' },
          { header: 'SOURCE', value: (f) => f.source },
          { header: 'ID', value: (f) => f.id },
        ]),
      );
    });

  fw.command('upload')
    .description('upload a firmware file (streamed; MD5 and SHA-256 computed); it becomes current unless --not-current')
    .argument('<modelId>')
    .argument('<file>')
    .requiredOption('--version <version>', '1–32 printable characters without spaces')
    .option('--md5 <md5sum>', 'refuse the upload unless the file hashes to this MD5')
    .option('--notes <text>', 'release notes')
    .option('--not-current', 'publish without making it the current version', false)
    .action(async (modelId: string, file: string, o: { version: string; md5?: string; notes?: string; notCurrent: boolean }) => {
      try {
        if (!statSync(file).isFile()) throw new Error('not a file');
      } catch {
        throw new AppError('VALIDATION_FAILED', `Cannot read ${file}`);
      }
      const s = await ctx.services();
      const f = await s.firmware.publishUpload(
        ctx.actor,
        modelId,
        {
          version: o.version,
          ...(o.md5 !== undefined ? { md5sum: o.md5 } : {}),
          ...(o.notes !== undefined ? { notes: o.notes } : {}),
          make_current: !o.notCurrent,
        },
        createReadStream(file),
      );
      ctx.out.result({ firmware: f }, () => keyValues(shown(f)));
    });

  fw.command('publish')
    .description('publish a version hosted at a URL (devices download it from there)')
    .argument('<modelId>')
    .requiredOption('--version <version>', '1–32 printable characters without spaces')
    .requiredOption('--url <url>', 'http(s) URL of the file')
    .requiredOption('--md5 <md5sum>', "the file's MD5 (32 hex digits)")
    .requiredOption('--size <bytes>', "the file's size in bytes", bytes)
    .option('--sha256 <sha256>', "the file's SHA-256 (64 hex digits), shown beside the MD5")
    .option('--notes <text>', 'release notes')
    .option('--not-current', 'publish without making it the current version', false)
    .action(
      async (
        modelId: string,
        o: { version: string; url: string; md5: string; size: number; sha256?: string; notes?: string; notCurrent: boolean },
      ) => {
        const s = await ctx.services();
        const f = await s.firmware.publishUrl(ctx.actor, modelId, {
          version: o.version,
          download_url: o.url,
          md5sum: o.md5,
          size: o.size,
          ...(o.sha256 !== undefined ? { sha256: o.sha256 } : {}),
          ...(o.notes !== undefined ? { notes: o.notes } : {}),
          make_current: !o.notCurrent,
        });
        ctx.out.result({ firmware: f }, () => keyValues(shown(f)));
      },
    );

  fw.command('current')
    .description('make a published version the current one (by version or id)')
    .argument('<modelId>')
    .argument('<version>')
    .action(async (modelId: string, version: string) => {
      const s = await ctx.services();
      const all = await s.firmware.list(ctx.actor, modelId);
      const target = all.find((f) => f.version === version || f.id === version);
      if (!target) throw new AppError('FIRMWARE_NOT_FOUND', `Model ${modelId} has no version ${version}`);
      const f = await s.firmware.makeCurrent(ctx.actor, modelId, target.id);
      ctx.out.result({ firmware: f }, () => `${f.version} is now the current version of ${modelId}`);
    });

  fw.command('fleet')
    .description("the versions a model's devices run (last reported), with device and online counts")
    .argument('<modelId>')
    .action(async (modelId: string) => {
      const s = await ctx.services();
      const versions = await s.firmware.fleetVersions(ctx.actor, modelId);
      ctx.out.result({ versions }, () =>
        table(versions, [
          { header: 'VERSION', value: (v) => v.version ?? '(not reported)' },
          { header: 'DEVICES', value: (v) => v.devices },
          { header: 'ONLINE', value: (v) => v.online },
        ]),
      );
    });
}
