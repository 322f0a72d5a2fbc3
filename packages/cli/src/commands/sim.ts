import type { FleetDeviceSpec } from '@bindery/sdk/sim/fleet.js';
import { loadManifest } from '@bindery/sdk/sim/manifest.js';
import { formatCounts, parseAddressRange, runSimulator } from '@bindery/sdk/sim/run.js';
import { type Command, InvalidArgumentError } from 'commander';
import { intArg, oneOf } from '../args.js';
import type { CliContext } from '../context.js';

interface SimOptions {
  url?: string;
  manifest?: string;
  seedOnly?: boolean;
  register?: number;
  model?: string;
  prefix?: string;
  processes?: number;
  localAddresses?: string;
  maxInFlight: number;
  firmware: string;
  qr?: string;
  publicUrl?: string;
  duration?: number;
  until?: 'subscribed' | 'settled';
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('sim')
    .description(
      'fleet simulator: N SDK devices from a batch manifest (or registered on the fly) hold WSS connections to a gateway; ' +
        'prints live counts and, with --qr, draws one device’s dynamic bind QR for a phone',
    )
    .option('--url <ws-url>', 'gateway URL (default: BINDERY_PUBLIC_URL as ws://…)')
    .option('--manifest <file>', 'batch secrets CSV (SN,SecretNo[,SeedSecretNo]) or JSON')
    .option('--seed-only', 'devices start with only the seed SecretNo and exchange it (get_secret_no)')
    .option('--register <n>', 'register N new devices under --model first', intArg(1, 1_000_000))
    .option('--model <modelId>', 'model for --register')
    .option('--prefix <prefix>', 'SN prefix for --register', 'SIM')
    .option('--processes <n>', 'worker processes (0 = this one; default: 1 per 19 000 devices)', intArg(0, 64))
    .option('--local-addresses <range>', 'loopback source addresses, e.g. 127.0.0.2-127.0.0.9')
    .option('--max-in-flight <n>', 'devices mid-flow at once (per process)', intArg(1, 100_000), 500)
    .option('--firmware <version>', 'firmware_version sent in subscribe_corp', '1.0.0')
    .option('--qr <sn>', 'draw this device\'s dynamic bind QR ("first" = the first device)')
    .option('--public-url <url>', 'base URL inside the QR (default: the gateway origin)')
    .option('--duration <seconds>', 'stop after this long (default: until Ctrl-C)', intArg(1))
    .option(
      '--until <what>',
      'stop once every device is subscribed | settled (subscribed or waiting)',
      oneOf(['subscribed', 'settled'] as const),
    )
    .action(async (o: SimOptions) => {
      let devices: FleetDeviceSpec[];
      if (o.manifest && o.register) throw new InvalidArgumentError('give --manifest or --register, not both');
      if (o.manifest) devices = loadManifest(o.manifest, { seedOnly: !!o.seedOnly });
      else if (o.register) {
        if (!o.model) throw new InvalidArgumentError('--register needs --model');
        const s = await ctx.services();
        const base = `${o.prefix ?? 'SIM'}${Date.now().toString(36).toUpperCase()}`;
        const bar = ctx.progress('registering');
        devices = [];
        try {
          for (let i = 0; i < o.register; i++) {
            const sn = `${base}${String(i).padStart(6, '0')}`;
            const r = await s.devices.register(ctx.actor, o.model, sn);
            devices.push({ sn, secretNo: r.secret_no });
            bar.update(i + 1, o.register);
          }
        } finally {
          bar.stop();
        }
        // The simulation can run for hours: don't hold the database while it does.
        await ctx.close();
      } else throw new InvalidArgumentError('give --manifest <file> or --register <n> --model <modelId>');

      const url = o.url ?? ctx.config().publicUrl.replace(/^http/, 'ws');
      const qrSn = o.qr === 'first' ? devices[0]!.sn : o.qr;
      const final = await runSimulator(
        {
          url,
          devices,
          ...(o.processes !== undefined ? { processes: o.processes } : {}),
          ...(o.localAddresses ? { localAddresses: parseAddressRange(o.localAddresses) } : {}),
          maxInFlight: o.maxInFlight,
          firmwareVersion: o.firmware,
          ...(qrSn ? { qrSn } : {}),
          ...(o.publicUrl ? { publicUrl: o.publicUrl } : {}),
          ...(o.duration ? { durationSec: o.duration } : {}),
          untilSubscribed: o.until === 'subscribed',
          untilSettled: o.until === 'settled',
        },
        { status: process.stderr, out: ctx.json ? process.stderr : process.stdout, isTty: !ctx.json && !!process.stderr.isTTY },
      );
      ctx.out.result({ counts: final, devices: devices.map((d) => d.sn) }, () => formatCounts(final));
    });
}
