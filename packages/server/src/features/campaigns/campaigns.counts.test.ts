import { snKey } from '@bindery/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backfillCampaignCounts } from '../../adapters/storage/migrations/028_campaign_counts.js';
import { DomainEvents } from '../../shared/domain-events.js';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { type Harness, startHarness } from '../../testing/harness.js';
import { vendorWithModels } from '../people/people.fixture.js';
import { countExecutions, readCounts } from './campaigns.counts.js';
import { CampaignEngine } from './campaigns.engine.js';
import { IN_FLIGHT } from './campaigns.model.js';

const N = 60;
const thresholds = { min_executions: 1000, failure_pct: null, timeout_pct: null, did_not_come_back_pct: null };

/**
 * The stored counts by state (migration 028) equal a fresh COUNT … GROUP BY for every campaign
 * after creation, dispatch, device reports racing each other from two engines (as gateway
 * processes do), time-outs, retry-failed and cancel.
 */
describe.each(storageBackends())('campaign counts kept by every transition on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let models: Record<string, string>;
  let vendorId: string;
  const sns = Array.from({ length: N }, (_, i) => `CNT${String(i).padStart(4, '0')}`);

  /** Every campaign in the database: stored counts equal counted ones. */
  const expectConsistent = async () => {
    const db = h.deps.db.kysely;
    const ids = await db.selectFrom('campaigns').select('id').execute();
    expect(ids.length).toBeGreaterThan(0);
    for (const { id } of ids) expect(await readCounts(db, id), id).toEqual(await countExecutions(db, id));
  };
  const publish = async (pk: string, version: string) =>
    (
      await h.services.firmware.publishUrl(SYSTEM_CLI, models[pk]!, {
        version,
        download_url: `https://files.example.com/${pk}-${version}.bin`,
        md5sum: 'd41d8cd98f00b204e9800998ecf8427e',
        size: 1024,
        make_current: false,
      })
    ).id;

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    ({ vendorId, models } = await vendorWithModels(h, [
      { name: 'Counter', productKey: 'pkCNA' },
      { name: 'Other', productKey: 'pkCNB' },
    ]));
    for (const [i, sn] of sns.entries()) {
      await h.services.devices.register(SYSTEM_CLI, models.pkCNA!, sn);
      // A few offline (told through a queued push with an expiry).
      await h.deps.db.kysely
        .updateTable('devices')
        .set({ firmware_version: '1.0', online: i % 10 === 9 ? 0 : 1 })
        .where('sn', '=', sn)
        .execute();
    }
    await h.services.devices.register(SYSTEM_CLI, models.pkCNB!, 'CNTB001');
  }, 60_000);

  afterAll(async () => {
    await h?.close();
  });

  it.skipIf(skip)(
    'equal a fresh count after dispatch, racing device reports, time-outs, retry and cancel',
    async () => {
      const s = h.services.campaigns;
      const other = await s.create(SYSTEM_CLI, vendorId, {
        name: 'Other model',
        model_id: models.pkCNB!,
        firmware_id: await publish('pkCNB', '2.0'),
        stages: { canary_count: 1, rate_per_minute: 60, factor: 2, stage_size: 10 },
        thresholds,
      });
      const c = await s.create(SYSTEM_CLI, vendorId, {
        name: 'Counted',
        model_id: models.pkCNA!,
        firmware_id: await publish('pkCNA', '2.0'),
        stages: { canary_count: N, rate_per_minute: 60, factor: 2, stage_size: 10 },
        thresholds,
        window_sec: 60,
      });
      expect(c.counts.queued).toBe(N);
      await s.cancel(SYSTEM_CLI, other.id);
      await expectConsistent();

      // Three upgraded meanwhile (they end as succeeded at dispatch); the canary is the whole fleet:
      // one tick tells every device.
      await h.deps.db.kysely.updateTable('devices').set({ firmware_version: '2.0' }).where('sn', 'in', sns.slice(0, 3)).execute();
      await s.engine.runOnce();
      const told = await s.get(SYSTEM_CLI, c.id);
      expect(told.counts.succeeded).toBe(3);
      expect(told.counts.notified).toBe(N - 3);
      await expectConsistent();

      // Two engines (two processes' device signals) move the same executions at once: one marks
      // downloads, the other ends them; a third of the devices say nothing and will time out.
      const engine = (nodeId: string) =>
        new CampaignEngine(h.deps, h.services.pushes, h.services.notifications, new DomainEvents(), h.services.firmware, {
          nodeId,
        });
      const [a, b] = [engine('A'), engine('B')];
      const now = h.clock.now();
      const live = sns.slice(3);
      const answering = live.filter((_, i) => i % 3 !== 0);
      const results = await Promise.all([
        ...live.map((sn) => a.move(c.id, snKey(sn), sn, ['notified'], 'downloading', null, now)),
        ...answering.map((sn, i) =>
          b.move(
            c.id,
            snKey(sn),
            sn,
            IN_FLIGHT,
            i % 4 === 0 ? 'failed' : 'succeeded',
            i % 4 === 0 ? 'reported_failure' : null,
            now,
          ),
        ),
        // The same report twice (a retransmission): only one of them moves the execution.
        ...answering.map((sn) => a.move(c.id, snKey(sn), sn, IN_FLIGHT, 'succeeded', null, now)),
      ]);
      expect(results.filter(Boolean).length).toBeGreaterThanOrEqual(answering.length);
      const raced = await s.get(SYSTEM_CLI, c.id);
      expect(raced.counts.notified + raced.counts.downloading).toBe(live.length - answering.length);
      await expectConsistent();

      // Past the window: the silent ones time out.
      h.clock.advance(8 * 86_400_000);
      await s.engine.runOnce();
      const expired = await s.get(SYSTEM_CLI, c.id);
      expect(expired.counts.timed_out).toBe(live.length - answering.length);
      await expectConsistent();

      const retried = await s.retryFailed(SYSTEM_CLI, c.id);
      expect(retried.retried).toBe(expired.counts.failed + expired.counts.timed_out);
      expect(retried.counts.queued).toBe(retried.retried);
      await expectConsistent();

      await s.cancel(SYSTEM_CLI, c.id);
      const cancelled = await s.get(SYSTEM_CLI, c.id);
      expect(cancelled.counts.cancelled).toBe(retried.retried);
      expect(cancelled.counts.queued + cancelled.counts.notified + cancelled.counts.downloading).toBe(0);
      await expectConsistent();

      // Migration 028's backfill gives the same rows from the executions alone.
      const db = h.deps.db.kysely;
      const rows = async () =>
        (await db.selectFrom('campaign_counts').selectAll().orderBy('campaign_id').orderBy('state').execute()).map((r) => ({
          ...r,
          n: Number(r.n),
        }));
      const kept = await rows();
      expect(kept).toHaveLength(16);
      await db.deleteFrom('campaign_counts').execute();
      await backfillCampaignCounts(db as never);
      expect(await rows()).toEqual(kept);
    },
    60_000,
  );
});
