import { createHash } from 'node:crypto';
import {
  attachUpgrader,
  Device,
  MD5_ATTEMPTS,
  MD5_MISMATCH_ERRCODE,
  type UpgradeOptions,
  type UpgradeOutcome,
} from '@bindery/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { type GatewayHarness, startGatewayHarness } from '../gateway/gateway.testkit.js';

/** One HTTP exchange of a device's download, as the server answered it. */
interface Exchange {
  sn: string;
  range: string | null;
  status: number;
  at: number;
}

/**
 * The SDK's simulated upgrade (issue 14 item 5) against the real server: the per-device signed
 * link from get_firmware_info, the server's own Range/206 file route, and a campaign's execution
 * states. A download cut mid-file resumes with Range and still matches the MD5; a throttled one
 * takes at least size ÷ rate; a corrupted one is reported (error_report 7001) and fails its
 * campaign execution.
 */
describe.each(storageBackends())('SDK upgrades against the real server on $backend.name', ({ backend, skip }) => {
  let g: GatewayHarness;
  let httpBase: string;
  const devices: Device[] = [];
  const exchanges: Exchange[] = [];
  // Not a multiple of the socket's chunk size, and big enough for several chunks.
  const image = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 31 + (i >> 9)) % 256));
  const md5 = createHash('md5').update(image).digest('hex');

  beforeAll(async () => {
    if (skip) return;
    g = await startGatewayHarness(backend, { realClock: true });
    httpBase = g.url.replace(/^ws/, 'http');
    const fw = await g.h.services.firmware.publishUpload(SYSTEM_CLI, g.modelId, { version: '2.0.0' }, image);
    expect(fw).toMatchObject({ md5sum: md5, size: image.length, current: true });
  });
  afterAll(async () => {
    for (const d of devices) d.stop();
    await g?.close();
  });

  /**
   * The device's HTTP client: links carry the public URL (https://bindery.test in tests), which
   * resolves to this server as DNS would in a deployment; every answer's status is recorded.
   */
  const viaServer =
    (sn: string): typeof fetch =>
    async (input, init) => {
      const url = String(input).replace(g.h.deps.config.publicUrl, httpBase);
      const range = new Headers(init?.headers).get('range');
      const res = await fetch(url, init);
      exchanges.push({ sn, range, status: res.status, at: Date.now() });
      return res;
    };

  /** A device bound to the organisation, subscribed on 1.0.0, its upgrader attached; resolves with its outcomes. */
  async function online(sn: string, upgrade: UpgradeOptions) {
    const secretNo = await g.addDevice(sn);
    await g.bind(sn);
    const d = new Device({
      url: g.url,
      credentials: { sn, secretNo },
      firmwareVersion: '1.0.0',
      backoff: { initialMs: 50, maxMs: 500 },
    });
    devices.push(d);
    const outcomes: Array<{ outcome: UpgradeOutcome; version?: string; at: number }> = [];
    attachUpgrader(d, { ...upgrade, fetch: viaServer(sn) }, (o) => outcomes.push({ ...o, at: Date.now() }));
    const subscribed = new Promise<void>((r) => d.once('subscribed', () => r()));
    d.start();
    await subscribed;
    // The batched online state reaches the devices table (a campaign only notifies online devices).
    await waitFor(async () => (await row(sn))?.online === 1);
    return { d, outcomes };
  }

  const row = (sn: string) =>
    g.h.deps.db.kysely.selectFrom('devices').select(['online', 'firmware_version']).where('sn', '=', sn).executeTakeFirst();

  it.skipIf(skip)(
    'a download cut after 70 000 bytes resumes with a Range request (206) and ends with the right MD5',
    async () => {
      const sn = 'UPGRANGE0001';
      const { outcomes } = await online(sn, { interruptAfterBytes: 70_000 });
      await g.h.services.firmware.requestUpgrade(SYSTEM_CLI, sn);
      await waitFor(async () => outcomes.length > 0);
      // "upgraded" is reached only past the MD5 check of the bytes put together from both responses.
      expect(outcomes[0]).toMatchObject({ outcome: 'upgraded', version: '2.0.0' });
      const mine = exchanges.filter((e) => e.sn === sn);
      expect(mine).toHaveLength(2);
      expect(mine[0]).toMatchObject({ range: null, status: 200 });
      // The second request asks for the rest from where the first stopped, and the server answered 206.
      const from = Number(/^bytes=(\d+)-$/.exec(mine[1]!.range ?? '')?.[1]);
      expect(from).toBeGreaterThanOrEqual(70_000);
      expect(from).toBeLessThan(image.length);
      expect(mine[1]!.status).toBe(206);
      // It came back on the new version.
      await waitFor(async () => (await row(sn))?.firmware_version === '2.0.0');
    },
  );

  it.skipIf(skip)('a download throttled to 100 000 bytes/s takes at least size ÷ rate', async () => {
    const sn = 'UPGSLOW0001';
    const bps = 100_000;
    const { outcomes } = await online(sn, { bytesPerSec: bps });
    await g.h.services.firmware.requestUpgrade(SYSTEM_CLI, sn);
    await waitFor(async () => outcomes.length > 0, 30_000);
    expect(outcomes[0]).toMatchObject({ outcome: 'upgraded', version: '2.0.0' });
    const started = exchanges.find((e) => e.sn === sn)!.at;
    // A lower bound only (the machine may be slower, never faster): 200 000 B at 100 000 B/s is 2 s;
    // a little slack for timers that fire a millisecond early on each chunk.
    expect(outcomes[0]!.at - started).toBeGreaterThanOrEqual(((image.length * 1000) / bps) * 0.95);
    await waitFor(async () => (await row(sn))?.firmware_version === '2.0.0');
  });

  it.skipIf(skip)(
    'a corrupted download: the device reports each MD5 mismatch, downloads again, gives up on its version, and its campaign execution fails at the threshold',
    async () => {
      const sns = ['UPGMD50001', 'UPGMD50002'];
      const fleet = await Promise.all(sns.map((sn) => online(sn, { wrongMd5Rate: 1 })));
      const bad = Buffer.from('image 3.0.0 '.repeat(5000));
      const fw = await g.h.services.firmware.publishUpload(SYSTEM_CLI, g.modelId, { version: '3.0.0', make_current: false }, bad);
      const s = g.h.services.campaigns;
      const c = await s.create(SYSTEM_CLI, g.vendorId, {
        name: 'Corrupted 3.0.0',
        model_id: g.modelId,
        firmware_id: fw.id,
        target: { sns },
        stages: { canary_count: 2, rate_per_minute: 600, factor: 2, stage_size: 10 },
        thresholds: { min_executions: 1, failure_pct: 50, timeout_pct: 100, did_not_come_back_pct: 100 },
        // error_report_threshold left at its default (3): one per download the device makes.
        window_sec: 60,
      });
      expect(c.total).toBe(2);
      // The engine's turns, as a scheduler runs them, until both executions have ended.
      const deadline = Date.now() + 30_000;
      let ended = await s.executions(SYSTEM_CLI, c.id, { limit: 10 });
      while (ended.executions.some((e) => !['succeeded', 'failed', 'timed_out'].includes(e.state))) {
        if (Date.now() > deadline) throw new Error(`executions still open: ${JSON.stringify(ended.executions)}`);
        await s.engine.runOnce();
        await new Promise((r) => setTimeout(r, 50));
        ended = await s.executions(SYSTEM_CLI, c.id, { limit: 10 });
      }
      for (const e of ended.executions) {
        expect(e, e.sn).toMatchObject({ state: 'failed', detail: 'error_reports', error_reports: MD5_ATTEMPTS });
      }
      // Why, in the audit trail of each device.
      const audits = await g.h.deps.db.kysely
        .selectFrom('audit_log')
        .select(['subject', 'data'])
        .where('action', '=', 'campaign.execution.failed')
        .where(
          'subject',
          'in',
          sns.map((sn) => `device:${sn}`),
        )
        .execute();
      expect(audits).toHaveLength(2);
      for (const a of audits) {
        expect(JSON.parse(a.data!)).toMatchObject({ campaign_id: c.id, detail: 'error_reports', error_reports: MD5_ATTEMPTS });
      }
      // The campaign stopped itself on the failure criterion (at the scheduler's next turn at the latest).
      let after = await s.get(SYSTEM_CLI, c.id);
      while (after.status === 'running' && Date.now() < deadline) {
        await s.engine.runOnce();
        after = await s.get(SYSTEM_CLI, c.id);
      }
      expect(after.status).toBe('paused');
      expect(after.pause_figures?.criterion).toBe('failure');
      // Each device told the server why (errcode 7001), installed nothing and is still on 1.0.0.
      for (const [i, sn] of sns.entries()) {
        // The device hears how it went after the server's answer to its last report: the execution
        // can have failed on that report first.
        await waitFor(async () => fleet[i]!.outcomes.length > 0);
        expect(fleet[i]!.outcomes.map((o) => [o.outcome, o.version])).toEqual([['wrong_md5', '3.0.0']]);
        const reports = await g.h.deps.db.kysely
          .selectFrom('device_error_reports as r')
          .innerJoin('devices as d', 'd.id', 'r.device_id')
          .select(['r.errcode', 'r.errmsg'])
          .where('d.sn', '=', sn)
          .execute();
        expect(reports).toEqual(
          [1, 2, 3].map((k) => ({ errcode: MD5_MISMATCH_ERRCODE, errmsg: `firmware 3.0.0: md5 mismatch (download ${k} of 3)` })),
        );
        expect(fleet[i]!.d.firmwareVersion).toBe('1.0.0');
        expect((await row(sn))?.firmware_version).toBe('1.0.0');
      }
      // The whole file was fetched each time (the corruption is the device's, after the download).
      expect(exchanges.filter((e) => sns.includes(e.sn)).map((e) => e.status)).toEqual(Array(2 * MD5_ATTEMPTS).fill(200));
    },
    60_000,
  );
});

async function waitFor(pred: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}
