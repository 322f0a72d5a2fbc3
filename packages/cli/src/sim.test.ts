import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FleetCounts } from '@bindery/sdk/sim/fleet.js';
import type { CampaignView, CreateCampaignInput } from '@bindery/server/features/campaigns/campaigns.service.js';
import { SYSTEM_CLI } from '@bindery/server/shared/principal.js';
import { sqliteBackend } from '@bindery/server/testing/backends.js';
import { type Harness, startHarness } from '@bindery/server/testing/harness.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BIN, baseEnv } from './cli.testkit.js';

vi.setConfig({ testTimeout: 180_000, hookTimeout: 120_000 });

/**
 * `bindery sim --upgrade` (issue 14 item 5): the real binary's simulated devices against a real
 * server (SQLite) really upgrade when a campaign reaches them — get_firmware_info, the server's
 * signed download link, MD5 check, install, reboot — and come back with the new version; with
 * --wrong-md5-rate 1 (in a worker process) they report the bad image and their executions fail.
 */
describe('bindery sim --upgrade', () => {
  let h: Harness;
  let dataDir: string;
  let wsUrl: string;
  let modelId: string;
  let vendorId: string;
  let firmwareId: string;
  const sims: ChildProcessWithoutNullStreams[] = [];

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'bindery-cli-sim-'));
    // The public URL must be this server: it is what the signed download links in get_firmware_info name.
    const port = await freePort();
    h = await startHarness(sqliteBackend, {
      config: { BINDERY_DATA_DIR: dataDir, BINDERY_PUBLIC_URL: `http://127.0.0.1:${port}` },
      realClock: true,
    });
    await h.app.listen({ port, host: '127.0.0.1' });
    wsUrl = `ws://127.0.0.1:${port}/`;
    const s = h.services;
    vendorId = (await s.vendors.create(SYSTEM_CLI, { name: 'Sim Vendor' })).id;
    modelId = (await s.models.create(SYSTEM_CLI, vendorId, { name: 'Sim Lock' })).model.model_id;
    await h.deps.db.kysely
      .insertInto('organisations')
      .values({ id: 'org_sim', name: 'Sim Corp', parent_id: null, mchid: null, merchant_shortname: null, created_at: 0 })
      .execute();
    const image = Buffer.from(Array.from({ length: 120_000 }, (_, i) => (i * 7 + (i >> 10)) % 256));
    firmwareId = (await s.firmware.publishUpload(SYSTEM_CLI, modelId, { version: '2.0.0', make_current: false }, image)).id;
  });
  afterAll(async () => {
    for (const c of sims) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await h?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  /** Registers and binds `n` devices and writes their batch manifest (SN,SecretNo). */
  async function manifest(prefix: string, n: number): Promise<{ file: string; sns: string[] }> {
    const sns: string[] = [];
    const rows = ['SN,SecretNo'];
    for (let i = 0; i < n; i++) {
      const sn = `${prefix}${String(i).padStart(4, '0')}`;
      const { secret_no } = await h.services.devices.register(SYSTEM_CLI, modelId, sn);
      await h.services.binding.bind(SYSTEM_CLI, sn, { type: 'org', id: 'org_sim' });
      sns.push(sn);
      rows.push(`${sn},${secret_no}`);
    }
    const file = path.join(dataDir, `${prefix}.csv`);
    writeFileSync(file, `${rows.join('\r\n')}\r\n`);
    return { file, sns };
  }

  /** `bindery sim … --json` left running (until SIGINT); resolves with its final JSON once stopped. */
  function sim(args: string[]): { stop: () => Promise<{ counts: FleetCounts; devices: string[] }> } {
    const child = spawn(process.execPath, [BIN, 'sim', '--json', '--url', wsUrl, ...args], {
      env: { ...baseEnv(), BINDERY_DATA_DIR: dataDir },
      cwd: tmpdir(),
    });
    sims.push(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString('utf8');
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString('utf8');
    });
    const closed = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
    return {
      async stop() {
        child.kill('SIGINT');
        const code = await closed;
        expect(code, err).toBe(0);
        return JSON.parse(out) as { counts: FleetCounts; devices: string[] };
      },
    };
  }

  const versions = async (sns: string[]) =>
    (
      await h.deps.db.kysely
        .selectFrom('devices')
        .select(['sn', 'online', 'firmware_version'])
        .where('sn', 'in', sns)
        .orderBy('sn')
        .execute()
    ).map((r) => [r.sn, r.online, r.firmware_version]);

  /** Runs the campaign's scheduler turns until every execution has ended; returns the campaign then. */
  async function run(input: Omit<CreateCampaignInput, 'model_id' | 'firmware_id' | 'window_sec'>) {
    const s = h.services.campaigns;
    const c = await s.create(SYSTEM_CLI, vendorId, {
      model_id: modelId,
      firmware_id: firmwareId,
      window_sec: 60,
      ...input,
    });
    const deadline = Date.now() + 60_000;
    let v: CampaignView = c;
    for (;;) {
      await s.engine.runOnce();
      v = await s.get(SYSTEM_CLI, c.id);
      const open = v.counts.queued + v.counts.notified + v.counts.downloading;
      if (open === 0 && v.status !== 'running') return v;
      if (Date.now() > deadline) throw new Error(`campaign still open: ${JSON.stringify(v)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it("sim devices take a campaign's image and come back on it; a corrupted download fails its execution", async () => {
    const clean = await manifest('SIMUP', 4);
    const corrupt = await manifest('SIMBAD', 2);
    // A throttled link and a visible install time, in this process; the corrupting fleet in a worker process.
    const a = sim(['--manifest', clean.file, '--upgrade', '--install-ms', '300', '--download-bps', '400000']);
    const b = sim(['--manifest', corrupt.file, '--upgrade', '--wrong-md5-rate', '1', '--processes', '1']);
    await waitFor(async () => (await versions([...clean.sns, ...corrupt.sns])).every(([, on, v]) => on === 1 && v === '1.0.0'));

    const good = await run({
      name: 'Sim 2.0.0',
      target: { sns: clean.sns },
      // A canary of one, then stages of two.
      stages: { canary_count: 1, rate_per_minute: 600, factor: 2, stage_size: 2 },
      thresholds: { min_executions: 1, failure_pct: 50, timeout_pct: 50, did_not_come_back_pct: 50 },
    });
    expect(good.status).toBe('completed');
    expect(good.counts).toMatchObject({ succeeded: 4, failed: 0, timed_out: 0 });
    // Each came back online on 2.0.0: they rebooted and subscribed with the new version.
    await waitFor(async () => (await versions(clean.sns)).every(([, on, v]) => on === 1 && v === '2.0.0'));
    const trail = await h.deps.db.kysely
      .selectFrom('audit_log')
      .select('action')
      .where('subject', '=', `device:${clean.sns[0]}`)
      .where('action', 'like', 'campaign.execution.%')
      .orderBy('id')
      .execute();
    expect(trail.map((r) => r.action)).toEqual([
      'campaign.execution.notified',
      'campaign.execution.downloading',
      'campaign.execution.succeeded',
    ]);

    const bad = await run({
      name: 'Sim 2.0.0, corrupted',
      target: { sns: corrupt.sns },
      // Both in the canary, so both are told before the first failure pauses it.
      stages: { canary_count: 2, rate_per_minute: 600, factor: 2, stage_size: 2 },
      thresholds: { min_executions: 1, failure_pct: 50, timeout_pct: 100, did_not_come_back_pct: 100 },
      error_report_threshold: 1,
    });
    expect(bad.status).toBe('paused');
    expect(bad.pause_figures?.criterion).toBe('failure');
    const ends = (await h.services.campaigns.executions(SYSTEM_CLI, bad.id, { limit: 10 })).executions;
    expect(ends.map((e) => [e.sn, e.state, e.detail]).sort()).toEqual(corrupt.sns.map((sn) => [sn, 'failed', 'error_reports']));
    expect((await versions(corrupt.sns)).map(([, , v]) => v)).toEqual(['1.0.0', '1.0.0']);

    // The server told each device once: its bind (stored while it was offline) and one upgrade.
    const told = await h.deps.db.kysely
      .selectFrom('device_commands as c')
      .innerJoin('devices as d', 'd.id', 'c.device_id')
      .select(['d.sn', 'c.cmd'])
      .where('d.sn', 'in', [...clean.sns, ...corrupt.sns])
      .where('c.delivered_at', 'is not', null)
      .orderBy('d.sn')
      .orderBy('c.cmd')
      .execute();
    expect(told.map((r) => [r.sn, r.cmd])).toEqual(
      [...clean.sns, ...corrupt.sns].sort().flatMap((sn) => [
        [sn, 'push_bind_corp'],
        [sn, 'push_update_firmware'],
      ]),
    );
    // Stopped with Ctrl-C, each simulator prints its final counts: every device subscribed, having heard those two pushes.
    const doneA = await a.stop();
    expect(doneA.devices).toEqual(clean.sns);
    expect(doneA.counts).toMatchObject({ total: 4, subscribed: 4, pushes: 8, protocolErrors: 0 });
    // Its devices run in a worker process, whose last counts arrive as it leaves.
    const doneB = await b.stop();
    expect(doneB.counts).toMatchObject({ total: 2, subscribed: 2, pushes: 4, protocolErrors: 0 });
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

async function waitFor(pred: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 100));
  }
}
