import { hostname } from 'node:os';
import { snKey } from '@bindery/protocol';
import type { Deps } from '../../deps.js';
import { audit } from '../../shared/audit.js';
import type { DomainEvents } from '../../shared/domain-events.js';
import { newId } from '../../shared/ids.js';
import type { FirmwareInfo, FirmwareService } from '../firmware/firmware.service.js';
import type { DevicePushService } from '../gateway/pushes.service.js';
import type { NotificationsService } from '../notifications/notifications.service.js';
import { adjustCounts, moved, readCounts } from './campaigns.counts.js';
import {
  type CampaignRow,
  type Counts,
  type ExecState,
  type Figures,
  IN_FLIGHT,
  judge,
  nextRate,
  type StagesSpec,
  type Thresholds,
} from './campaigns.model.js';
import { insideWindow, isTimeZone, leftInWindow, type MaintenanceWindow } from './campaigns.window.js';

/** Who the engine's transitions are audited as. */
export const ENGINE_ACTOR = 'system:campaigns';

export interface EngineOptions {
  /** This process, as lease owner. */
  nodeId?: string;
  /** How long a claimed campaign is this process's before another may take it over. */
  leaseMs?: number;
  tickMs?: number;
  /** A progress sample at most this often per campaign. */
  sampleEveryMs?: number;
  /** Most devices one tick of one campaign notifies. */
  maxPerTick?: number;
  /** The instance's time zone: maintenance windows of devices whose owner has none (config BINDERY_TIME_ZONE). */
  timeZone?: string;
}

const DEFAULTS = { leaseMs: 15_000, tickMs: 1_000, sampleEveryMs: 10_000, maxPerTick: 500, timeZone: 'UTC' };
/** How long the list of organisations' time zones is believed without asking again. */
const ZONES_CACHE_MS = 30_000;
/** How long "no campaign runs for this model" is believed on this process without asking again. */
const ACTIVE_CACHE_MS = 1_000;

type Db = Deps['db']['kysely'];

/**
 * The campaign engine: the scheduler (one process per campaign at a time, by a lease on the
 * campaign row) and the device signals (on whichever process sees them). Every state change is a
 * conditional update of one execution row plus its audit record in one transaction, so two
 * processes never both move a device and a process killed between ticks loses nothing.
 */
export class CampaignEngine {
  readonly nodeId: string;
  private readonly opts: Required<Omit<EngineOptions, 'nodeId'>>;
  private readonly active = new Map<string, { until: number; yes: boolean }>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private zones: { until: number; list: string[] } | null = null;

  constructor(
    private readonly deps: Pick<Deps, 'db' | 'clock' | 'logger'> & { config?: Pick<Deps['config'], 'timeZone'> },
    private readonly pushes: DevicePushService,
    private readonly notifications: NotificationsService,
    private readonly events: DomainEvents,
    private readonly firmware: Pick<FirmwareService, 'deviceInfo'>,
    opts: EngineOptions = {},
  ) {
    this.nodeId = opts.nodeId ?? `${hostname()}:${process.pid}:${newId('n').slice(-6)}`;
    this.opts = { ...DEFAULTS, ...opts, timeZone: opts.timeZone ?? deps.config?.timeZone ?? DEFAULTS.timeZone };
    this.listen();
  }

  private get db(): Db {
    return this.deps.db.kysely;
  }

  private now(): number {
    return this.deps.clock.now();
  }

  // ── the loop ─────────────────────────────────────────────────────────────

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.kick(), this.opts.tickMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  private kick(): void {
    if (this.running) return;
    this.running = this.runOnce()
      .then(() => undefined)
      .catch((err: unknown) => this.deps.logger.error({ err }, 'campaign scheduler failed; retrying on the next tick'))
      .finally(() => {
        this.running = null;
      });
  }

  /** One round: claims every live campaign whose lease is free (or ours) and moves it on. Returns the ones it ran. */
  async runOnce(): Promise<string[]> {
    const now = this.now();
    const free = (q: ReturnType<typeof this.liveQuery>) =>
      q.where((eb) => eb.or([eb('lease_owner', 'is', null), eb('lease_owner', '=', this.nodeId), eb('lease_until', '<', now)]));
    const ids = await free(this.liveQuery()).select('id').execute();
    const ran: string[] = [];
    for (const { id } of ids) {
      const claimed = await this.db
        .updateTable('campaigns')
        .set({ lease_owner: this.nodeId, lease_until: now + this.opts.leaseMs })
        .where('id', '=', id)
        .where('status', 'in', ['running', 'paused'])
        .where((eb) => eb.or([eb('lease_owner', 'is', null), eb('lease_owner', '=', this.nodeId), eb('lease_until', '<', now)]))
        .executeTakeFirst();
      if (Number(claimed.numUpdatedRows) === 0) continue;
      await this.tick(id);
      ran.push(id);
    }
    return ran;
  }

  private liveQuery() {
    return this.db.selectFrom('campaigns').where('status', 'in', ['running', 'paused']);
  }

  /** Gives up this process's leases (a graceful stop) so another process carries on at once. */
  async releaseLeases(): Promise<void> {
    await this.db
      .updateTable('campaigns')
      .set({ lease_owner: null, lease_until: null })
      .where('lease_owner', '=', this.nodeId)
      .execute();
  }

  private async tick(id: string): Promise<void> {
    const c = await this.db.selectFrom('campaigns').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    const now = this.now();
    await this.expire(c, now);
    if (c.status === 'running') {
      const figures = await this.figures(c.id, c.counted_from);
      const tripped = judge(JSON.parse(c.thresholds) as Thresholds, figures);
      if (tripped) {
        // The figures the reason names, not a later count: devices keep finishing meanwhile.
        await this.pause(c, `Paused itself: ${tripped.reason}`, tripped.criterion, ENGINE_ACTOR, figures);
      } else {
        await this.advance(c, now);
      }
    }
    const counts = await this.counts(c.id);
    if (c.status === 'running' && counts.queued === 0 && counts.notified === 0 && counts.downloading === 0) {
      const done = await this.db
        .updateTable('campaigns')
        .set({ status: 'completed', finished_at: now, updated_at: now, lease_owner: null, lease_until: null })
        .where('id', '=', c.id)
        .where('status', '=', 'running')
        .executeTakeFirst();
      if (Number(done.numUpdatedRows) === 0) return; // paused in this very tick
      await audit(this.db, now, ENGINE_ACTOR, 'campaign.completed', `campaign:${c.id}`, { counts });
      await this.sample(c.id, now, counts);
      return;
    }
    if (c.sampled_at === null || now - c.sampled_at >= this.opts.sampleEveryMs) await this.sample(c.id, now, counts);
  }

  /** In-flight executions past their window end: did not come back, never answered, or (queued while offline) expired. */
  private async expire(c: CampaignRow, now: number): Promise<void> {
    const late = await this.db
      .selectFrom('campaign_executions')
      .select(['sn_key', 'sn', 'state', 'detail'])
      .where('campaign_id', '=', c.id)
      .where('state', 'in', [...IN_FLIGHT])
      .where('deadline_at', '<', now)
      .limit(2_000)
      .execute();
    for (const e of late) {
      const detail = e.state === 'downloading' ? 'did_not_come_back' : e.detail === 'queued_offline' ? 'expired' : 'no_response';
      await this.move(c.id, e.sn_key, e.sn, [e.state as ExecState], 'timed_out', detail, now);
    }
  }

  /** Stage progression and dispatch at the stage's rate. */
  private async advance(c: CampaignRow, now: number): Promise<void> {
    const stages = JSON.parse(c.stages) as StagesSpec;
    let stage = c.stage;
    let rate = c.rate_per_min;
    let dispatchAt = c.dispatch_at ?? now;
    const inStage = await this.stageCounts(c.id, stage);
    const ended = inStage.total - inStage.queued - inStage.inFlight;
    const size = stage === 0 ? inStage.total : stages.stage_size;
    // A stage ends when all its devices ended (the canary) or stage_size of them did, within the criteria.
    if ((stage === 0 && inStage.queued === 0 && inStage.inFlight === 0) || (stage > 0 && ended >= size)) {
      const nextRateValue = stage === 0 ? stages.rate_per_minute : nextRate(stages, rate);
      stage += 1;
      rate = nextRateValue;
      dispatchAt = now;
      await this.db
        .updateTable('campaigns')
        .set({ stage, rate_per_min: rate, dispatch_at: dispatchAt, updated_at: now })
        .where('id', '=', c.id)
        .execute();
      await audit(this.db, now, ENGINE_ACTOR, 'campaign.stage', `campaign:${c.id}`, { stage, rate_per_minute: rate });
    }
    if (stage === 0) {
      // The canary (its executions were marked stage 0 at creation): all at once.
      if (inStage.queued > 0) await this.dispatch(c, 0, Math.min(inStage.queued, this.opts.maxPerTick), now);
      return;
    }
    const dispatchedInStage = stage === c.stage ? inStage.total : 0;
    const room = stages.stage_size - dispatchedInStage;
    if (room <= 0) return;
    const due = Math.floor(((now - dispatchAt) * rate) / 60_000);
    const n = Math.min(due, room, this.opts.maxPerTick);
    if (n <= 0) return;
    const sent = await this.dispatch(c, stage, n, now);
    // Fewer devices could be told than were due (the rest are outside their maintenance window):
    // the rate restarts from now, so no backlog bursts out when their window opens.
    const next = sent < n && c.maintenance_window ? now : dispatchAt + Math.round((sent * 60_000) / rate);
    if (next !== dispatchAt) {
      await this.db.updateTable('campaigns').set({ dispatch_at: next, updated_at: now }).where('id', '=', c.id).execute();
    }
  }

  /** The time zones organisations have set (cached), for the maintenance-window filter. */
  private async orgZones(): Promise<string[]> {
    const t = performance.now();
    if (this.zones && this.zones.until > t) return this.zones.list;
    const rows = await this.db
      .selectFrom('org_settings')
      .select('time_zone')
      .distinct()
      .where('time_zone', 'is not', null)
      .execute();
    const list = rows.map((r) => r.time_zone).filter((z): z is string => typeof z === 'string' && isTimeZone(z));
    this.zones = { until: t + ZONES_CACHE_MS, list };
    return list;
  }

  /** Tells the next `n` queued devices (inside their maintenance window, when there is one); returns how many left the queue. */
  private async dispatch(c: CampaignRow, stage: number, n: number, now: number): Promise<number> {
    const win = c.maintenance_window ? (JSON.parse(c.maintenance_window) as MaintenanceWindow) : null;
    let q = this.db
      .selectFrom('campaign_executions as e')
      .innerJoin('devices as d', 'd.id', 'e.device_id')
      .leftJoin('org_settings as s', (j) => j.onRef('s.org_id', '=', 'd.owner_id').on('d.owner_type', '=', 'org'))
      .select(['e.sn_key', 'e.sn', 'd.online', 'd.firmware_version', 'd.model_id', 'd.vendor_id', 's.time_zone'])
      .where('e.campaign_id', '=', c.id)
      .where('e.state', '=', 'queued')
      .where((eb) => (stage === 0 ? eb('e.stage', '=', 0) : eb('e.stage', 'is', null)));
    if (win) {
      // The owner's time zone: the organisation's setting, else the instance's (personal and unbound devices too).
      const open = (await this.orgZones()).filter((z) => insideWindow(win, now, z));
      const instanceOpen = insideWindow(win, now, this.opts.timeZone);
      if (open.length === 0 && !instanceOpen) return 0;
      q = q.where((eb) =>
        eb.or([
          ...(open.length ? [eb('s.time_zone', 'in', open)] : []),
          ...(instanceOpen ? [eb('s.time_zone', 'is', null)] : []),
        ]),
      );
    }
    const rows = await q.orderBy('e.seq').limit(n).execute();
    for (const d of rows) {
      const offline = d.online !== 1;
      if (d.firmware_version === c.version) {
        await this.move(c.id, d.sn_key, d.sn, ['queued'], 'succeeded', 'already_current', now, { stage });
        continue;
      }
      if (offline && c.offline === 'skip') {
        await this.move(c.id, d.sn_key, d.sn, ['queued'], 'skipped', 'offline', now, { stage });
        continue;
      }
      // With a maintenance window, a push queued for an offline device lasts only as long as the window.
      const wait = !offline
        ? 0
        : win
          ? Math.min(c.queue_expiry_sec * 1000, leftInWindow(win, now, d.time_zone ?? this.opts.timeZone))
          : c.queue_expiry_sec * 1000;
      // Durable first: the device may answer before push() returns.
      const moved = await this.move(c.id, d.sn_key, d.sn, ['queued'], 'notified', offline ? 'queued_offline' : null, now, {
        stage,
        notified_at: now,
        deadline_at: now + wait + c.window_sec * 1000,
        from_version: d.firmware_version,
      });
      if (!moved) continue;
      try {
        const r = await this.pushes.push(d.sn, 'push_update_firmware', undefined, {
          durable: true,
          ttlSec: Math.max(60, Math.ceil(wait / 1000) + c.window_sec),
          by: ENGINE_ACTOR,
        });
        // Cloud devices hear of it through their vendor's update_firmware callback.
        await this.events.emit({
          type: 'device.firmware_requested',
          sn: d.sn,
          modelId: d.model_id,
          vendorId: d.vendor_id,
          operId: r.command_id ?? newId('op'),
          version: c.version,
          at: now,
        });
      } catch (err) {
        this.deps.logger.warn({ err, sn: d.sn, campaign: c.id }, 'campaign push failed');
        await this.move(c.id, d.sn_key, d.sn, ['notified'], 'failed', 'push_failed', now);
      }
    }
    return rows.length;
  }

  // ── transitions ──────────────────────────────────────────────────────────

  /** One durable, audited transition; false when the execution was no longer in a `from` state. */
  async move(
    campaignId: string,
    key: string,
    sn: string,
    from: readonly ExecState[],
    to: ExecState,
    detail: string | null,
    now: number,
    extra: { stage?: number; notified_at?: number; deadline_at?: number; from_version?: string | null } = {},
  ): Promise<boolean> {
    const ended = !['queued', ...IN_FLIGHT].includes(to);
    return this.db.transaction().execute(async (trx) => {
      // One `from` state at a time: the stored counts need the state the execution left.
      for (const was of from) {
        const r = await trx
          .updateTable('campaign_executions')
          .set({ state: to, detail, updated_at: now, ...(ended ? { finished_at: now } : {}), ...extra })
          .where('campaign_id', '=', campaignId)
          .where('sn_key', '=', key)
          .where('state', '=', was)
          .executeTakeFirst();
        if (Number(r.numUpdatedRows) === 0) continue;
        await audit(trx, now, ENGINE_ACTOR, `campaign.execution.${to}`, `device:${sn}`, { campaign_id: campaignId, detail });
        // Last before commit: every transition of the campaign waits on these rows, so hold them briefly.
        await adjustCounts(trx, campaignId, moved(was, to));
        return true;
      }
      return false;
    });
  }

  async pause(c: CampaignRow, reason: string, criterion: string | null, by: string, judged?: Figures): Promise<boolean> {
    const now = this.now();
    const figures = judged ?? (await this.figures(c.id, c.counted_from));
    const ok = await this.db.transaction().execute(async (trx) => {
      const r = await trx
        .updateTable('campaigns')
        .set({
          status: 'paused',
          pause_reason: reason,
          pause_figures: JSON.stringify({ criterion, ...figures }),
          paused_at: now,
          updated_at: now,
        })
        .where('id', '=', c.id)
        .where('status', '=', 'running')
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) return false;
      await audit(trx, now, by, 'campaign.paused', `campaign:${c.id}`, { reason, criterion, figures });
      return true;
    });
    if (!ok) return false;
    await this.sample(c.id, now, await this.counts(c.id));
    if (criterion) {
      // Tell the vendor's people who may run campaigns, and its webhooks (rollout.paused).
      const people = await this.db
        .selectFrom('vendor_members')
        .select('user_id')
        .where('vendor_id', '=', c.vendor_id)
        .where('role', 'in', ['vendor_admin', 'engineer'])
        .execute();
      await this.notifications.notify(
        people.map((p) => p.user_id),
        {
          kind: 'campaign.paused',
          title: 'Firmware campaign paused itself',
          body: `${c.name} (${c.version}): ${reason}`,
          link: `/vendors/${c.vendor_id}/campaigns/${c.id}`,
          data: { campaign_id: c.id, vendor_id: c.vendor_id, criterion, figures },
        },
      );
      if (c.org_id) {
        // An organisation's campaign: its super admins, and the device admin who started it, are told too.
        const starter = c.created_by.startsWith('user:') ? c.created_by.slice(5) : '';
        const admins = await this.db
          .selectFrom('org_members')
          .select('user_id')
          .where('org_id', '=', c.org_id)
          .where((eb) =>
            eb.or([eb('role', '=', 'super_admin'), eb.and([eb('role', '=', 'device_admin'), eb('user_id', '=', starter)])]),
          )
          .execute();
        await this.notifications.notify(
          admins.map((p) => p.user_id),
          {
            kind: 'campaign.paused',
            title: 'Firmware campaign paused itself',
            body: `${c.name} (${c.version}): ${reason}`,
            link: `/orgs/${c.org_id}/campaigns/${c.id}`,
            data: { campaign_id: c.id, org_id: c.org_id, criterion, figures },
          },
        );
      }
      await this.events.emit({
        type: 'campaign.paused',
        campaignId: c.id,
        vendorId: c.vendor_id,
        modelId: c.model_id,
        name: c.name,
        version: c.version,
        criterion,
        reason,
        figures,
        at: now,
      });
    }
    return true;
  }

  // ── figures ──────────────────────────────────────────────────────────────

  /** Executions by state, as stored by every transition (campaigns.counts.ts), not counted. */
  async counts(campaignId: string): Promise<Counts> {
    return readCounts(this.db, campaignId);
  }

  /** Executions ended since `from`; queued-while-offline ones that expired are not judged (the device never heard). */
  async figures(campaignId: string, from: number): Promise<Figures> {
    const rows = await this.db
      .selectFrom('campaign_executions')
      .select((eb) => ['state', 'detail', eb.fn.countAll<string | number>().as('n')])
      .where('campaign_id', '=', campaignId)
      .where('state', 'in', ['succeeded', 'failed', 'timed_out'])
      .where('finished_at', '>=', from)
      .groupBy(['state', 'detail'])
      .execute();
    const f: Figures = { executed: 0, succeeded: 0, failed: 0, timed_out: 0, did_not_come_back: 0 };
    for (const r of rows) {
      const n = Number(r.n);
      if (r.state === 'timed_out' && r.detail === 'expired') continue;
      f.executed += n;
      if (r.state === 'succeeded') f.succeeded += n;
      else if (r.state === 'failed') f.failed += n;
      else {
        f.timed_out += n;
        if (r.detail === 'did_not_come_back') f.did_not_come_back += n;
      }
    }
    return f;
  }

  private async stageCounts(campaignId: string, stage: number): Promise<{ total: number; queued: number; inFlight: number }> {
    const rows = await this.db
      .selectFrom('campaign_executions')
      .select((eb) => ['state', eb.fn.countAll<string | number>().as('n')])
      .where('campaign_id', '=', campaignId)
      .where('stage', '=', stage)
      .groupBy('state')
      .execute();
    let total = 0;
    let queued = 0;
    let inFlight = 0;
    for (const r of rows) {
      const n = Number(r.n);
      total += n;
      if (r.state === 'queued') queued += n;
      if ((IN_FLIGHT as string[]).includes(r.state)) inFlight += n;
    }
    return { total, queued, inFlight };
  }

  async sample(campaignId: string, at: number, counts: Counts): Promise<void> {
    await this.db
      .insertInto('campaign_samples')
      .values({ campaign_id: campaignId, at, counts: JSON.stringify(counts) })
      .onConflict((oc) => oc.columns(['campaign_id', 'at']).doUpdateSet({ counts: JSON.stringify(counts) }))
      .execute();
    await this.db.updateTable('campaigns').set({ sampled_at: at }).where('id', '=', campaignId).execute();
  }

  // ── device signals ───────────────────────────────────────────────────────

  /** Forget what this process believed about running campaigns (a campaign was created or resumed here). */
  invalidate(modelId: string): void {
    this.active.delete(modelId);
  }

  private async modelHasCampaign(modelId: string): Promise<boolean> {
    const t = performance.now();
    const hit = this.active.get(modelId);
    if (hit && hit.until > t) return hit.yes;
    const row = await this.db
      .selectFrom('campaigns')
      .select('id')
      .where('model_id', '=', modelId)
      .where('status', 'in', ['running', 'paused'])
      .limit(1)
      .executeTakeFirst();
    this.active.set(modelId, { until: t + ACTIVE_CACHE_MS, yes: !!row });
    return !!row;
  }

  /** The device's in-flight execution, if a live campaign told it to upgrade. */
  private async inFlight(sn: string, modelId: string) {
    if (!(await this.modelHasCampaign(modelId))) return undefined;
    return this.db
      .selectFrom('campaign_executions as e')
      .innerJoin('campaigns as c', 'c.id', 'e.campaign_id')
      .select(['e.campaign_id', 'e.sn_key', 'e.sn', 'e.state', 'c.version', 'c.firmware_id', 'c.error_report_threshold'])
      .where('e.sn_key', '=', snKey(sn))
      .where('e.state', 'in', [...IN_FLIGHT])
      .where('c.status', 'in', ['running', 'paused'])
      .executeTakeFirst();
  }

  /**
   * What get_firmware_info answers a device a campaign told to upgrade (the campaign's image, not
   * the model's current one); marks it downloading. Undefined when no campaign concerns it.
   */
  async infoFor(d: { sn: string; modelId: string }): Promise<FirmwareInfo | undefined> {
    const e = await this.inFlight(d.sn, d.modelId);
    if (!e) return undefined;
    const fw = await this.db.selectFrom('firmware').selectAll().where('id', '=', e.firmware_id).executeTakeFirst();
    if (!fw) return undefined;
    if (e.state === 'notified') await this.move(e.campaign_id, e.sn_key, e.sn, ['notified'], 'downloading', null, this.now());
    // The same answer (and per-device signed link) the firmware feature gives for a model's current image.
    return this.firmware.deviceInfo(fw, d.sn);
  }

  private listen(): void {
    // subscribe_corp with a version: the new one is success; the old one after downloading is a failed install.
    this.events.on('device.subscribed', async (ev) => {
      const e = await this.inFlight(ev.sn, ev.modelId);
      if (!e) return;
      if (ev.firmwareVersion === e.version) {
        await this.move(e.campaign_id, e.sn_key, e.sn, IN_FLIGHT, 'succeeded', null, ev.at);
      } else if (e.state === 'downloading') {
        await this.move(e.campaign_id, e.sn_key, e.sn, ['downloading'], 'failed', 'came_back_old_version', ev.at);
      }
    });
    // report_firmware_upgrade_result (cloud devices, or a WSS device that reports).
    this.events.on('device.firmware_result', async (ev) => {
      const e = await this.inFlight(ev.sn, ev.modelId);
      if (!e) return;
      const ok = ev.errcode === 0 && (ev.curVersion === null || ev.curVersion === e.version);
      await this.move(
        e.campaign_id,
        e.sn_key,
        e.sn,
        IN_FLIGHT,
        ok ? 'succeeded' : 'failed',
        ok ? null : 'reported_failure',
        ev.at,
      );
    });
    // Error reports while upgrading (e.g. a bad checksum) are counted; the campaign's threshold fails it.
    this.events.on('device.error_report', async (ev) => {
      const e = await this.inFlight(ev.sn, ev.modelId);
      if (e?.state !== 'downloading') return;
      await this.errorReported(e.campaign_id, e.sn_key, e.sn, Number(e.error_report_threshold), ev.at);
    });
  }

  /**
   * One error_report from a downloading device: counted on its execution and, once the count
   * reaches `threshold`, the execution fails (detail `error_reports`; the audit record names the
   * count) — the count, the transition, its audit and the stored counts in one transaction. The
   * increment is conditional on `downloading` and locks the row, so reports arriving on two
   * processes at once are both counted and exactly one of them ends the execution. Returns the
   * count, or null when the execution was no longer downloading.
   */
  async errorReported(
    campaignId: string,
    key: string,
    sn: string,
    threshold: number,
    at: number,
  ): Promise<{ reports: number; failed: boolean } | null> {
    return this.db.transaction().execute(async (trx) => {
      const r = await trx
        .updateTable('campaign_executions')
        .set((eb) => ({ error_reports: eb('error_reports', '+', 1), updated_at: at }))
        .where('campaign_id', '=', campaignId)
        .where('sn_key', '=', key)
        .where('state', '=', 'downloading')
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) return null;
      const row = await trx
        .selectFrom('campaign_executions')
        .select('error_reports')
        .where('campaign_id', '=', campaignId)
        .where('sn_key', '=', key)
        .executeTakeFirstOrThrow();
      const reports = Number(row.error_reports);
      if (reports < threshold) return { reports, failed: false };
      const detail = 'error_reports';
      await trx
        .updateTable('campaign_executions')
        .set({ state: 'failed', detail, finished_at: at, updated_at: at })
        .where('campaign_id', '=', campaignId)
        .where('sn_key', '=', key)
        .where('state', '=', 'downloading')
        .execute();
      await audit(trx, at, ENGINE_ACTOR, 'campaign.execution.failed', `device:${sn}`, {
        campaign_id: campaignId,
        detail,
        reason: `${reports} error reports while downloading, at the campaign's threshold of ${threshold}`,
        error_reports: reports,
        threshold,
      });
      await adjustCounts(trx, campaignId, moved('downloading', 'failed'));
      return { reports, failed: true };
    });
  }
}
