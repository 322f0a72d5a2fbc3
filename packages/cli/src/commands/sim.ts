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
  upgrade?: boolean;
  failureRate?: number;
  brickRate?: number;
  wrongMd5Rate?: number;
  installMs?: number;
  downloadBps?: number;
  qr?: string;
  publicUrl?: string;
  duration?: number;
  until?: 'subscribed' | 'settled';
  offlineUntilProvisioned?: boolean;
  productKey?: string;
  provisionAfter?: number;
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
    .option('--upgrade', 'devices really upgrade on push_update_firmware (download, MD5 check, install, reconnect)')
    .option(
      '--failure-rate <0..1>',
      'with --upgrade: share of installs that fail (the device returns on its old version)',
      rateArg,
    )
    .option('--brick-rate <0..1>', 'with --upgrade: share of upgrades that brick the device (it never returns)', rateArg)
    .option('--wrong-md5-rate <0..1>', 'with --upgrade: share of downloads that fail the MD5 check (error_report)', rateArg)
    .option('--install-ms <ms>', 'with --upgrade: how long "installing" takes', intArg(0, 3_600_000))
    .option('--download-bps <bytes>', 'with --upgrade: throttle downloads to this many bytes per second', intArg(1))
    .option('--qr <sn>', 'draw this device\'s dynamic bind QR ("first" = the first device)')
    .option('--public-url <url>', 'base URL inside the QR (default: the gateway origin)')
    .option('--duration <seconds>', 'stop after this long (default: until Ctrl-C)', intArg(1))
    .option(
      '--until <what>',
      'stop once every device is subscribed | settled (subscribed or waiting)',
      oneOf(['subscribed', 'settled'] as const),
    )
    .option(
      '--offline-until-provisioned',
      'devices start offline and power on once provisioned over (simulated) Bluetooth (docs/sdk.md; this process only)',
    )
    .option(
      '--product-key <pk>',
      'with --offline-until-provisioned and --manifest: the model the devices sign their identity for',
    )
    .option(
      '--provision-after <seconds>',
      'with --offline-until-provisioned: the simulator provisions every device itself',
      intArg(0),
    )
    .action(async (o: SimOptions) => {
      let devices: FleetDeviceSpec[];
      let productKey = o.productKey;
      if (o.manifest && o.register) throw new InvalidArgumentError('give --manifest or --register, not both');
      if (o.manifest) devices = loadManifest(o.manifest, { seedOnly: !!o.seedOnly });
      else if (o.register) {
        if (!o.model) throw new InvalidArgumentError('--register needs --model');
        const s = await ctx.services();
        if (o.offlineUntilProvisioned && !productKey) productKey = (await s.models.getRow(ctx.actor, o.model)).product_key;
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

      if (o.offlineUntilProvisioned && !productKey)
        throw new InvalidArgumentError('--offline-until-provisioned needs --product-key');
      if (o.provisionAfter !== undefined && !o.offlineUntilProvisioned) {
        throw new InvalidArgumentError('--provision-after needs --offline-until-provisioned');
      }
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
          ...(o.upgrade
            ? {
                upgrade: {
                  failureRate: o.failureRate ?? 0,
                  brickRate: o.brickRate ?? 0,
                  wrongMd5Rate: o.wrongMd5Rate ?? 0,
                  installMs: o.installMs ?? 5_000,
                  ...(o.downloadBps ? { bytesPerSec: o.downloadBps } : {}),
                },
              }
            : {}),
          ...(qrSn ? { qrSn } : {}),
          ...(o.publicUrl ? { publicUrl: o.publicUrl } : {}),
          ...(o.duration ? { durationSec: o.duration } : {}),
          ...(o.offlineUntilProvisioned
            ? { processes: 0, offlineUntilProvisioned: { productKey: productKey! }, provisionAfterSec: o.provisionAfter }
            : {}),
          untilSubscribed: o.until === 'subscribed',
          untilSettled: o.until === 'settled',
        },
        { status: process.stderr, out: ctx.json ? process.stderr : process.stdout, isTty: !ctx.json && !!process.stderr.isTTY },
      );
      ctx.out.result({ counts: final, devices: devices.map((d) => d.sn) }, () => formatCounts(final));
    });
}

/** A share between 0 and 1 (failure rates). */
function rateArg(v: string): number {
  const n = Number(v);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError('must be a number from 0 to 1');
  return n;
}
