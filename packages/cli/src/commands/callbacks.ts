import { AppError } from '@bindery/server/errors.js';
import type { Command } from 'commander';
import { intArg } from '../args.js';
import type { CliContext } from '../context.js';
import { keyValues, table } from '../output.js';

interface SettingsOpts {
  url: string;
  token?: string;
  aesKey?: string;
  verifyDevice?: boolean;
}

/** Vendor callbacks (§B4) and signed webhooks: URLs, the delivery log, redelivery (docs/callbacks.md). */
export function register(program: Command, ctx: CliContext): void {
  const cb = program.command('callbacks').description('vendor callbacks and webhooks: URLs, the delivery log, redelivery');

  const model = cb.command('model').description("a model's callback URL (every event and command but verify_device)");
  model
    .command('set')
    .description('set the URL; Token and EncodingAESKey are generated unless given')
    .argument('<modelId>')
    .requiredOption('--url <url>', 'the vendor endpoint (http or https)')
    .option('--token <token>', '1–32 letters or digits')
    .option('--aes-key <key>', 'EncodingAESKey: 43 base64 characters')
    .action(async (modelId: string, o: SettingsOpts) => {
      const s = await ctx.services();
      const v = await s.callbacks.putModelCallback(ctx.actor, modelId, {
        url: o.url,
        token: o.token,
        encoding_aes_key: o.aesKey,
      });
      ctx.out.result({ callback: v }, () => keyValues({ ...v }));
    });
  model
    .command('show')
    .argument('<modelId>')
    .action(async (modelId: string) => {
      const s = await ctx.services();
      const v = await s.callbacks.getModelCallback(ctx.actor, modelId);
      ctx.out.result({ callback: v }, () => keyValues({ ...v }));
    });
  model
    .command('remove')
    .argument('<modelId>')
    .action(async (modelId: string) => {
      const s = await ctx.services();
      await s.callbacks.deleteModelCallback(ctx.actor, modelId);
      ctx.out.result({ removed: true }, () => 'removed');
    });

  const vendor = cb.command('vendor').description("a vendor's provider general URL (verify_device)");
  vendor
    .command('set')
    .argument('<vendorId>')
    .requiredOption('--url <url>', 'the vendor endpoint (http or https)')
    .option('--token <token>', '1–32 letters or digits')
    .option('--aes-key <key>', 'EncodingAESKey: 43 base64 characters')
    .option('--verify-device', 'ask this URL about unknown SNs typed on the bind page')
    .option('--no-verify-device', 'stop asking')
    .action(async (vendorId: string, o: SettingsOpts) => {
      const s = await ctx.services();
      const v = await s.callbacks.putVendorCallback(ctx.actor, vendorId, {
        url: o.url,
        token: o.token,
        encoding_aes_key: o.aesKey,
        verify_device: o.verifyDevice,
      });
      ctx.out.result({ callback: v }, () => keyValues({ ...v }));
    });
  vendor
    .command('show')
    .argument('<vendorId>')
    .action(async (vendorId: string) => {
      const s = await ctx.services();
      const v = await s.callbacks.getVendorCallback(ctx.actor, vendorId);
      ctx.out.result({ callback: v }, () => keyValues({ ...v }));
    });

  const hooks = cb.command('webhooks').description('signed JSON webhooks of a vendor (or, with --org, an organisation)');
  const owner = (o: { vendor?: string; org?: string }) => {
    // A usage error, not an INTERNAL one: scripts branch on the code.
    if (!!o.vendor === !!o.org) throw new AppError('VALIDATION_FAILED', 'give --vendor <id> or --org <id>');
    return o.vendor ? { type: 'vendor' as const, id: o.vendor } : { type: 'org' as const, id: o.org! };
  };
  hooks
    .command('add')
    .description('register a webhook and print its secret once')
    .option('--vendor <vendorId>')
    .option('--org <orgId>')
    .requiredOption('--url <url>')
    .option('--events <list>', 'comma-separated event types (default: all)')
    .action(async (o: { vendor?: string; org?: string; url: string; events?: string }) => {
      const s = await ctx.services();
      const events = o.events ? o.events.split(',').map((e) => e.trim()) : null;
      const r = await s.callbacks.createWebhook(ctx.actor, owner(o), { url: o.url, events });
      ctx.out.result(r, () => {
        ctx.out.note('The webhook secret is shown this once; store it now.');
        return keyValues({ ...r.webhook, events: r.webhook.events?.join(',') ?? 'all', secret: r.secret });
      });
    });
  hooks
    .command('list')
    .option('--vendor <vendorId>')
    .option('--org <orgId>')
    .action(async (o: { vendor?: string; org?: string }) => {
      const s = await ctx.services();
      const webhooks = await s.callbacks.listWebhooks(ctx.actor, owner(o));
      ctx.out.result({ webhooks }, () =>
        table(webhooks, [
          { header: 'ID', value: (w) => w.id },
          { header: 'URL', value: (w) => w.url },
          { header: 'EVENTS', value: (w) => w.events?.join(',') ?? 'all' },
        ]),
      );
    });
  hooks
    .command('remove')
    .argument('<webhookId>')
    .action(async (id: string) => {
      const s = await ctx.services();
      await s.callbacks.deleteWebhook(ctx.actor, id);
      ctx.out.result({ removed: true }, () => 'removed');
    });

  cb.command('deliveries')
    .description("a vendor's delivery log, newest first (or an organisation's webhook log with --org)")
    .option('--vendor <vendorId>')
    .option('--org <orgId>')
    .option('--status <status>', 'pending | delivered | failed')
    .option('--event <type>', 'event type, e.g. bind, unbind, user_scan, device.bound')
    .option('--sn <sn>')
    .option('--cursor <cursor>', 'next_cursor of the previous page')
    .option('--limit <n>', '1–200', intArg(1, 200), 50)
    .action(
      async (o: {
        vendor?: string;
        org?: string;
        status?: string;
        event?: string;
        sn?: string;
        cursor?: string;
        limit: number;
      }) => {
        const s = await ctx.services();
        const page = await s.callbacks.listDeliveries(ctx.actor, owner(o), {
          status: o.status,
          event_type: o.event,
          sn: o.sn,
          cursor: o.cursor,
          limit: o.limit,
        });
        ctx.out.result(page, () => {
          const rows = table(page.deliveries, [
            { header: 'ID', value: (d) => d.id },
            { header: 'EVENT', value: (d) => d.event_type },
            { header: 'SN', value: (d) => d.sn ?? '' },
            { header: 'STATUS', value: (d) => d.status },
            { header: 'ATTEMPTS', value: (d) => String(d.attempts) },
            { header: 'LAST', value: (d) => d.last_error ?? (d.last_http_status ? `HTTP ${d.last_http_status}` : '') },
          ]);
          return page.next_cursor ? `${rows}\nnext: --cursor ${page.next_cursor}` : rows;
        });
      },
    );

  cb.command('delivery')
    .description('one delivery with every attempt')
    .argument('<deliveryId>')
    .action(async (id: string) => {
      const s = await ctx.services();
      const d = await s.callbacks.getDelivery(ctx.actor, id);
      ctx.out.result({ delivery: d }, () =>
        [
          keyValues({ id: d.id, event_type: d.event_type, sn: d.sn, status: d.status, attempts: d.attempts }),
          table(d.attempt_log, [
            { header: 'AT', value: (a) => new Date(a.at).toISOString() },
            { header: 'HTTP', value: (a) => (a.http_status === null ? '' : String(a.http_status)) },
            { header: 'ERRCODE', value: (a) => (a.errcode === null ? '' : String(a.errcode)) },
            { header: 'MS', value: (a) => String(a.duration_ms) },
            { header: 'ERROR', value: (a) => a.error ?? '' },
          ]),
        ].join('\n'),
      );
    });

  cb.command('redeliver')
    .description('send a finished or failed delivery again (queued behind the device’s other events)')
    .argument('<deliveryId>')
    .action(async (id: string) => {
      const s = await ctx.services();
      const d = await s.callbacks.redeliver(ctx.actor, id);
      ctx.out.result({ delivery: d }, () => keyValues({ id: d.id, redelivery_of: d.redelivery_of, status: d.status }));
    });
}
