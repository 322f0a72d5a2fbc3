import type { Command } from 'commander';
import { intArg } from '../args.js';
import type { CliContext } from '../context.js';
import { keyValues, table } from '../output.js';

/** The page size `--all` walks the list with (the service's maximum). */
const PAGE = 500;

export function register(program: Command, ctx: CliContext): void {
  const device = program.command('device').description('devices: SN registration (§B2), lookup, SecretNo');

  device
    .command('register')
    .description('register one SN under a model; prints its SecretNo for flashing')
    .argument('<modelId>')
    .argument('<sn>', '1–128 of [0-9A-Za-z], unique ignoring case')
    .option('--camera-sn <sn>', 'camera module SN (seed 002)')
    .option('--app-scene <code>', 'application scene code (seed 002)')
    .option('--os <name>', 'operating system: ANDROID | LINUX | WINDOWS')
    .action(async (modelId: string, sn: string, o: { cameraSn?: string; appScene?: string; os?: string }) => {
      const s = await ctx.services();
      const r = await s.devices.register(ctx.actor, modelId, sn, {
        camera_sn: o.cameraSn ?? null,
        app_scene_code: o.appScene ?? null,
        operating_system: o.os ?? null,
      });
      ctx.out.result(r, () => keyValues({ sn: r.device.sn, secret_no: r.secret_no, qr_code: r.device.qr_code }));
    });

  device
    .command('show')
    .description('one device by SN (case-insensitive)')
    .argument('<sn>')
    .action(async (sn: string) => {
      const s = await ctx.services();
      const d = await s.devices.get(ctx.actor, sn);
      ctx.out.result({ device: d }, () => keyValues({ ...d }));
    });

  device
    .command('list')
    .description("a vendor's devices, newest registration last")
    .argument('<vendorId>')
    .option('--model <modelId>', 'only this model')
    .option('--batch <batchId>', 'only this label batch')
    .option('--q <prefix>', 'SN or device key (IMEI/MAC) prefix')
    .option('--limit <n>', 'page size, 1–500', intArg(1, PAGE), 50)
    .option('--cursor <cursor>', 'continue after a previous page (its next_cursor)')
    .option('--all', 'every matching device, following the pages', false)
    .action(
      async (
        vendorId: string,
        o: { model?: string; batch?: string; q?: string; limit: number; cursor?: string; all: boolean },
      ) => {
        const s = await ctx.services();
        const query = { vendorId, modelId: o.model, batchId: o.batch, search: o.q };
        let page = await s.devices.list(ctx.actor, { ...query, cursor: o.cursor, limit: o.all ? PAGE : o.limit });
        const devices = [...page.devices];
        while (o.all && page.next_cursor) {
          page = await s.devices.list(ctx.actor, { ...query, cursor: page.next_cursor, limit: PAGE });
          devices.push(...page.devices);
        }
        const next = o.all ? null : page.next_cursor;
        ctx.out.result({ devices, next_cursor: next }, () => {
          const t = table(devices, [
            { header: 'SN', value: (d) => d.sn },
            { header: 'MODEL', value: (d) => d.model_id },
            { header: 'BATCH', value: (d) => d.batch_id },
            { header: 'STATE', value: (d) => d.state },
            { header: 'BOUND', value: (d) => d.bound },
            { header: 'DEVICE KEY', value: (d) => d.device_key },
            { header: 'REGISTERED', value: (d) => d.registered_at },
          ]);
          return next ? `${t}\n(more: --cursor ${next}, or --all)` : t;
        });
      },
    );

  device
    .command('unregister')
    .description('delete an SN that is not bound')
    .argument('<sn>')
    .action(async (sn: string) => {
      const s = await ctx.services();
      await s.devices.unregister(ctx.actor, sn);
      ctx.out.result({ sn, unregistered: true }, () => `unregistered ${sn}`);
    });

  device
    .command('secret')
    .description("a device's SecretNo, for flashing (the reveal is audited)")
    .argument('<sn>')
    .action(async (sn: string) => {
      const s = await ctx.services();
      const secret = await s.devices.secretNo(ctx.actor, sn);
      ctx.out.result({ sn, secret_no: secret }, () => secret);
    });
}
