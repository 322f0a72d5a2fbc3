import { buildBindQrUrl, renderTerminalQr } from '../qr.js';
import { FleetCluster } from './cluster.js';
import { Fleet, type FleetCounts, type FleetDeviceSpec, type FleetOptions, type SimUpgradeOptions } from './fleet.js';

export interface SimulatorOptions {
  /** The gateway, e.g. ws://127.0.0.1:8080/ */
  url: string;
  devices: FleetDeviceSpec[];
  /** 0 = every device in this process (the default up to 19 000 devices). */
  processes?: number;
  localAddresses?: string[];
  maxInFlight?: number;
  firmwareVersion?: string;
  /** Devices really upgrade on push_update_firmware (failure, brick, wrong-MD5 rates; docs/ota.md). */
  upgrade?: SimUpgradeOptions;
  /** SN of one device whose dynamic bind QR is drawn in the terminal (refreshed every 10 min, §A4). */
  qrSn?: string;
  /** Base URL inside the QR; defaults to the gateway's origin over http(s). */
  publicUrl?: string;
  /** Stop after this many seconds; default: until SIGINT/SIGTERM. */
  durationSec?: number;
  /** Stop once every device is subscribed (or waiting, when `untilSettled`). */
  untilSubscribed?: boolean;
  untilSettled?: boolean;
  /** Devices start offline until provisioned over Bluetooth (in-process fleets only; `Fleet.peripheral`). */
  offlineUntilProvisioned?: FleetOptions['offlineUntilProvisioned'];
  /** With `offlineUntilProvisioned`: the simulator provisions every device itself after this many seconds. */
  provisionAfterSec?: number;
}

export interface SimulatorIo {
  /** Live status (a TTY gets one rewritten line). */
  status: NodeJS.WriteStream | NodeJS.WritableStream;
  /** Where the QR drawing goes. */
  out: NodeJS.WritableStream;
  isTty: boolean;
}

export function formatCounts(c: FleetCounts): string {
  return (
    `connected ${c.connected}/${c.total}  waiting for binding ${c.waiting}  subscribed ${c.subscribed}` +
    `  reconnecting ${c.reconnecting}  errors ${c.errors} (restarts ${c.restarts}, lost ${c.lost}, protocol ${c.protocolErrors})` +
    `  pushes ${c.pushes}`
  );
}

/** Expands `127.0.0.2-127.0.0.9` (or a comma list) into addresses. */
export function parseAddressRange(s: string): string[] {
  const out: string[] = [];
  for (const part of s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)) {
    const m = /^127\.(\d+)\.(\d+)\.(\d+)(?:-127\.\1\.\2\.(\d+))?$/.exec(part);
    if (!m) throw new Error(`${part}: give loopback addresses like 127.0.0.2 or 127.0.0.2-127.0.0.9`);
    const from = Number(m[3]);
    const to = m[4] === undefined ? from : Number(m[4]);
    if (to < from || to > 254) throw new Error(`${part}: bad range`);
    for (let i = from; i <= to; i++) out.push(`127.${m[1]}.${m[2]}.${i}`);
  }
  return out;
}

/**
 * The fleet simulator: powers on the devices, prints live counts, optionally draws one device's
 * dynamic bind QR so a person can bind it from a phone, and stops on a signal, a deadline or
 * when everything is subscribed. Resolves with the final counts.
 */
export async function runSimulator(o: SimulatorOptions, io: SimulatorIo): Promise<FleetCounts> {
  if (o.devices.length === 0) throw new Error('no devices to simulate');
  const processes = o.processes ?? (o.devices.length > 19_000 ? Math.ceil(o.devices.length / 19_000) : 0);
  let fleet: Fleet | null = null;
  let cluster: FleetCluster | null = null;
  if (o.offlineUntilProvisioned && processes !== 0) throw new Error('offline devices run in this process only (--processes 0)');
  let provisionTimer: ReturnType<typeof setTimeout> | null = null;
  if (processes === 0) {
    const f = new Fleet({
      url: o.url,
      devices: o.devices,
      localAddresses: o.localAddresses,
      maxInFlight: o.maxInFlight ?? 500,
      firmwareVersion: o.firmwareVersion,
      upgrade: o.upgrade,
      ...(o.offlineUntilProvisioned ? { offlineUntilProvisioned: o.offlineUntilProvisioned } : {}),
    });
    fleet = f;
    f.start();
    if (o.offlineUntilProvisioned && o.provisionAfterSec !== undefined) {
      const [ssid, ap] = Object.entries(o.offlineUntilProvisioned.accessPoints ?? {})[0] ?? [
        'bindery-sim',
        { password: '', security: 'open' as const },
      ];
      provisionTimer = setTimeout(() => {
        for (const d of o.devices) f.provision(d.sn, { ssid, ...ap });
      }, o.provisionAfterSec * 1000);
    }
  } else {
    cluster = await FleetCluster.start({
      url: o.url,
      devices: o.devices,
      processes,
      localAddresses: o.localAddresses,
      maxInFlight: o.maxInFlight ?? 500,
      firmwareVersion: o.firmwareVersion,
      upgrade: o.upgrade,
    });
    cluster.startDevices();
  }
  const counts = () => (fleet ? fleet.counts() : cluster!.counts());

  let qrTimer: ReturnType<typeof setInterval> | null = null;
  if (o.qrSn) {
    const spec = o.devices.find((d) => d.sn.toLowerCase() === o.qrSn!.toLowerCase());
    if (!spec) throw new Error(`no device ${o.qrSn} in this fleet`);
    const gw = new URL(o.url);
    const publicUrl = o.publicUrl ?? `${gw.protocol === 'wss:' ? 'https:' : 'http:'}//${gw.host}`;
    const draw = async () => {
      // A live in-process device signs with the server's time; otherwise the local clock serves.
      const dev = fleet?.device(spec.sn);
      const url = dev?.credentials.secretNo
        ? dev.bindQrUrl(publicUrl)
        : buildBindQrUrl({ publicUrl, sn: spec.sn, secretNo: spec.secretNo ?? '', timestampSec: Date.now() / 1000 });
      io.out.write(
        `\nDynamic bind QR of ${spec.sn} (valid 30 min, redrawn every 10 min):\n${await renderTerminalQr(url)}${url}\n\n`,
      );
    };
    if (!spec.secretNo && !fleet) throw new Error(`device ${spec.sn} has no SecretNo in the manifest; its QR can't be signed`);
    // In-process devices with only a seed learn their SecretNo first; wait for it.
    const first = fleet?.device(spec.sn);
    if (first && !first.credentials.secretNo) await first.waitFor('persist', (c) => !!c.secretNo);
    await draw();
    qrTimer = setInterval(() => void draw(), 10 * 60_000);
  }

  const t0 = Date.now();
  let lastLine = 0;
  const tick = () => {
    const c = counts();
    if (io.isTty) io.status.write(`\r\x1b[K${formatCounts(c)}`);
    else if (Date.now() - lastLine >= 5000) {
      io.status.write(`${new Date().toISOString()} ${formatCounts(c)}\n`);
      lastLine = Date.now();
    }
    return c;
  };

  let final = await new Promise<FleetCounts>((resolve) => {
    const done = () => {
      clearInterval(timer);
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve(counts());
    };
    const timer = setInterval(() => {
      const c = tick();
      if (o.durationSec !== undefined && Date.now() - t0 >= o.durationSec * 1000) done();
      else if (o.untilSubscribed && c.subscribed === c.total) done();
      else if (o.untilSettled && c.subscribed + c.waiting === c.total) done();
    }, 500);
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  if (qrTimer) clearInterval(qrTimer);
  if (provisionTimer) clearTimeout(provisionTimer);
  fleet?.stop();
  if (cluster) {
    // Workers send their last counts as they leave (worker.ts 'exit').
    await cluster.stop();
    final = cluster.counts();
  }
  if (io.isTty) io.status.write('\n');
  io.status.write(`${formatCounts(final)}\n`);
  return final;
}
