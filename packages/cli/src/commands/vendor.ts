import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { keyValues, table } from '../output.js';

export function register(program: Command, ctx: CliContext): void {
  const vendor = program.command('vendor').description('vendors: the device makers this instance serves');

  vendor
    .command('create')
    .description('create a vendor')
    .requiredOption('--name <name>', '1–128 characters')
    .action(async (o: { name: string }) => {
      const s = await ctx.services();
      const v = await s.vendors.create(ctx.actor, { name: o.name });
      ctx.out.result({ vendor: v }, () => keyValues({ ...v }));
    });

  vendor
    .command('list')
    .description('list every vendor')
    .action(async () => {
      const s = await ctx.services();
      const vendors = await s.vendors.list(ctx.actor);
      ctx.out.result({ vendors }, () =>
        table(vendors, [
          { header: 'ID', value: (v) => v.id },
          { header: 'NAME', value: (v) => v.name },
          { header: 'CREATED', value: (v) => v.created_at },
        ]),
      );
    });

  vendor
    .command('show')
    .description('one vendor')
    .argument('<vendorId>')
    .action(async (vendorId: string) => {
      const s = await ctx.services();
      const v = await s.vendors.get(ctx.actor, vendorId);
      ctx.out.result({ vendor: v }, () => keyValues({ ...v }));
    });

  const key = vendor.command('key').description('vendor keys: API tokens that act as one vendor (for its backends)');
  key
    .command('create')
    .description('create a vendor key and print it once')
    .argument('<vendorId>')
    .option('--name <name>', 'a label for the key', 'cli')
    .action(async (vendorId: string, o: { name: string }) => {
      const s = await ctx.services();
      const k = await s.accounts.createVendorKey(ctx.actor, vendorId, o.name);
      ctx.out.result({ id: k.id, token: k.token, vendor_id: vendorId }, () => {
        ctx.out.note('The vendor key is shown this once; store it now.');
        return keyValues({ id: k.id, vendor_id: vendorId, token: k.token });
      });
    });
}
