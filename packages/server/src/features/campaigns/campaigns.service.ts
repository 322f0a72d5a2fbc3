import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { audit, principalLabel } from '../../shared/audit.js';
import { canActForVendor, type Principal, requireVendor } from '../../shared/principal.js';
import type { DevicesService } from '../devices/devices.service.js';
import { sortableId } from '../gateway/sortable-id.js';
import type { ModelsService } from '../models/models.service.js';
import { manageable, type OrgContext } from '../organisations/permissions.js';
import { OrgStanding } from '../organisations/standing.js';
import { adjustCounts, initCounts } from './campaigns.counts.js';
import type { CampaignEngine } from './campaigns.engine.js';
import {
  type CampaignRow,
  type CampaignStatus,
  type Counts,
  canarySize,
  DEFAULT_ERROR_REPORT_THRESHOLD,
  EXEC_STATES,
  type ExecState,
  errorReportThresholdProblems,
  type Figures,
  IN_FLIGHT,
  type StagesSpec,
  type TargetSpec,
  type Thresholds,
  validateSpec,
} from './campaigns.model.js';
import { CampaignTargets, devicesInRange, type OrgDeviceLister } from './campaigns.scope.js';
import { resolveTarget } from './campaigns.target.js';
import { type ExecutionView, execView } from './campaigns.view.js';
import { type MaintenanceWindow, normaliseWindow, validateWindow } from './campaigns.window.js';

export type { ExecutionView };

export interface CreateCampaignInput {
  name: string;
  model_id: string;
  firmware_id: string;
  target?: TargetSpec;
  /** Notify devices only inside this window, in their owner's time zone. */
  maintenance_window?: MaintenanceWindow;
  stages: StagesSpec;
  thresholds: Thresholds;
  offline?: 'skip' | 'queue';
  queue_expiry_sec?: number;
  window_sec?: number;
  /** error_reports a downloading device may send before its execution fails (default DEFAULT_ERROR_REPORT_THRESHOLD). */
  error_report_threshold?: number;
}

export interface CampaignView {
  id: string;
  vendor_id: string;
  /** The organisation running it; null for the vendor's own. */
  org_id: string | null;
  maintenance_window: MaintenanceWindow | null;
  model_id: string;
  firmware_id: string;
  version: string;
  name: string;
  status: CampaignStatus;
  target: TargetSpec;
  stages: StagesSpec;
  thresholds: Thresholds;
  offline: 'skip' | 'queue';
  queue_expiry_sec: number;
  window_sec: number;
  error_report_threshold: number;
  total: number;
  stage: number;
  rate_per_minute: number;
  counts: Counts;
  pause_reason: string | null;
  pause_figures: (Figures & { criterion: string | null }) | null;
  paused_at: string | null;
  created_by: string;
  created_at: string;
  finished_at: string | null;
}

export interface OrgCampaignModel {
  model_id: string;
  name: string;
  vendor_name: string;
  /** The organisation's devices of the model. */
  devices: number;
  firmware: Array<{ id: string; version: string; is_current: boolean }>;
}

const MAX_SNS = 100_000;
type ExecRow = Parameters<typeof execView>[0] & { seq: number; sn_key: string };
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/**
 * Staged firmware campaigns for a vendor's model (issue 14): who may run them (the vendor's
 * people with the firmware capability), which devices they target, and pause / resume / cancel /
 * retry by hand. The moving parts (stages, rates, abort criteria, device signals) are the engine's.
 */
export class CampaignsService {
  constructor(
    private readonly deps: Pick<Deps, 'db' | 'clock'>,
    private readonly models: ModelsService,
    private readonly devices: DevicesService,
    readonly engine: CampaignEngine,
    /** The organisation device list, whose range rule bounds a device admin's campaigns. */
    private readonly orgDevices: OrgDeviceLister,
  ) {
    this.standing = new OrgStanding(deps);
    this.targets = new CampaignTargets(deps);
  }

  private readonly standing: OrgStanding;
  /** Owner organisations and departments a vendor's form may target. */
  readonly targets: CampaignTargets;

  private get db() {
    return this.deps.db.kysely;
  }

  /** A vendor's campaign: its people with the firmware capability, over any devices of its model. */
  async create(actor: Principal, vendorId: string, input: CreateCampaignInput): Promise<CampaignView> {
    requireVendor(actor, vendorId, 'firmware');
    const model = await this.models.getRow(actor, input.model_id, 'firmware');
    if (model.vendor_id !== vendorId) fail('MODEL_NOT_FOUND');
    return this.launch(actor, model, null, input, input.target ?? {});
  }

  /**
   * An organisation's campaign (admins; the model must allow it): always limited to the devices
   * bound to the organisation, the image one the vendor published for the model. A device admin's
   * is further limited to the devices their range holds (as the organisation's device list shows
   * them to them), and a department they name must be inside their scope.
   */
  async createForOrg(actor: Principal, orgId: string, input: CreateCampaignInput): Promise<CampaignView> {
    const ctx = await this.standing.context(actor, orgId);
    this.standing.requireAdmin(ctx);
    const model = await this.db.selectFrom('models').selectAll().where('model_id', '=', input.model_id).executeTakeFirst();
    if (!model) fail('MODEL_NOT_FOUND');
    if (model.org_campaigns_allowed !== 1) fail('CAMPAIGN_NOT_ALLOWED');
    const target = input.target ?? {};
    if (target.org_id !== undefined && target.org_id !== orgId)
      fail('VALIDATION_FAILED', 'target.org_id must be this organisation');
    let within: Map<string, string> | undefined;
    if (scopedAdmin(ctx)) {
      const reach = manageable(ctx);
      if (target.department_id && reach !== 'all' && ctx.tree.has(target.department_id) && !reach.has(target.department_id))
        fail('OUTSIDE_SCOPE');
      within = await devicesInRange(this.orgDevices, actor, orgId, model.model_id);
    }
    return this.launch(actor, model, orgId, input, { ...target, org_id: orgId }, within);
  }

  /** Models whose devices the organisation owns and whose vendor lets it run campaigns, with their published images. */
  async orgOptions(actor: Principal, orgId: string): Promise<OrgCampaignModel[]> {
    const ctx = await this.standing.context(actor, orgId);
    this.standing.requireAdmin(ctx);
    const all = await this.db
      .selectFrom('devices as d')
      .innerJoin('models as m', 'm.model_id', 'd.model_id')
      .innerJoin('vendors as v', 'v.id', 'm.vendor_id')
      .select((eb) => ['m.model_id', 'm.name', 'v.name as vendor_name', eb.fn.countAll<string | number>().as('devices')])
      .where('d.owner_type', '=', 'org')
      .where('d.owner_id', '=', orgId)
      .where('m.org_campaigns_allowed', '=', 1)
      .groupBy(['m.model_id', 'm.name', 'v.name'])
      .orderBy('m.name')
      .execute();
    // A device admin counts (and is offered) only the models of the devices in their range.
    let models = all.map((m) => ({ ...m, devices: Number(m.devices) }));
    if (scopedAdmin(ctx)) {
      const mine = new Map<string, number>();
      for (const m of (await devicesInRange(this.orgDevices, actor, orgId)).values()) mine.set(m, (mine.get(m) ?? 0) + 1);
      models = models.filter((m) => mine.has(m.model_id)).map((m) => ({ ...m, devices: mine.get(m.model_id)! }));
    }
    if (models.length === 0) return [];
    const fws = await this.db
      .selectFrom('firmware')
      .select(['id', 'model_id', 'version', 'is_current', 'created_at'])
      .where(
        'model_id',
        'in',
        models.map((m) => m.model_id),
      )
      .orderBy('created_at', 'desc')
      .execute();
    return models.map((m) => ({
      model_id: m.model_id,
      name: m.name,
      vendor_name: m.vendor_name,
      devices: m.devices,
      firmware: fws
        .filter((f) => f.model_id === m.model_id)
        .map((f) => ({ id: f.id, version: f.version, is_current: f.is_current === 1 })),
    }));
  }

  /** The organisation's campaigns: all of them for super admins, their own for a device admin. */
  async listForOrg(actor: Principal, orgId: string, opts: { status?: CampaignStatus } = {}): Promise<CampaignView[]> {
    const ctx = await this.standing.context(actor, orgId);
    this.standing.requireAdmin(ctx);
    let q = this.db.selectFrom('campaigns').selectAll().where('org_id', '=', orgId);
    if (scopedAdmin(ctx)) q = q.where('created_by', '=', principalLabel(actor));
    if (opts.status) q = q.where('status', '=', opts.status);
    const rows = await q.orderBy('created_at', 'desc').limit(200).execute();
    return Promise.all(rows.map(async (r) => this.view(r, await this.engine.counts(r.id))));
  }

  private async launch(
    actor: Principal,
    model: { model_id: string; vendor_id: string },
    orgId: string | null,
    input: CreateCampaignInput,
    target: TargetSpec,
    within?: ReadonlyMap<string, string>,
  ): Promise<CampaignView> {
    const vendorId = model.vendor_id;
    const fw = await this.db
      .selectFrom('firmware')
      .selectAll()
      .where('id', '=', input.firmware_id)
      .where('model_id', '=', model.model_id)
      .executeTakeFirst();
    if (!fw) fail('FIRMWARE_NOT_FOUND', 'No such firmware for this model');
    const problems = validateSpec(input.stages, input.thresholds);
    if (typeof input.name !== 'string' || input.name.trim() === '' || input.name.length > 120)
      problems.push('name must be 1–120 characters');
    const window = input.window_sec ?? 1800;
    const expiry = input.queue_expiry_sec ?? 7 * 86_400;
    if (!(Number.isSafeInteger(window) && window >= 1 && window <= 7 * 86_400)) problems.push('window_sec must be 1 s – 7 days');
    if (!(Number.isSafeInteger(expiry) && expiry >= 60 && expiry <= 30 * 86_400))
      problems.push('queue_expiry_sec must be 60 s – 30 days');
    const errorReportThreshold = input.error_report_threshold ?? DEFAULT_ERROR_REPORT_THRESHOLD;
    problems.push(...errorReportThresholdProblems(errorReportThreshold));
    if (target.sns && target.sns.length > MAX_SNS) problems.push(`target.sns may list at most ${MAX_SNS} SNs`);
    if (input.maintenance_window) problems.push(...validateWindow(input.maintenance_window));
    if (problems.length) fail('VALIDATION_FAILED', problems.join('; '), { problems });

    const rows = await resolveTarget(this.db, model.model_id, fw.version, target, within);
    if (rows.length === 0)
      fail('VALIDATION_FAILED', 'No device of the model matches the target (or all already run this version)');

    const now = this.deps.clock.now();
    const id = sortableId('cmp', now, 8);
    const canary = canarySize(input.stages, rows.length);
    const row: CampaignRow = {
      id,
      vendor_id: vendorId,
      org_id: orgId,
      model_id: model.model_id,
      firmware_id: fw.id,
      version: fw.version,
      name: input.name.trim(),
      status: 'running',
      target: JSON.stringify(target),
      stages: JSON.stringify(input.stages),
      thresholds: JSON.stringify(input.thresholds),
      offline: input.offline ?? 'queue',
      queue_expiry_sec: expiry,
      window_sec: window,
      error_report_threshold: errorReportThreshold,
      total: rows.length,
      stage: 0,
      rate_per_min: input.stages.rate_per_minute,
      dispatch_at: null,
      counted_from: 0,
      pause_reason: null,
      pause_figures: null,
      paused_at: null,
      lease_owner: null,
      lease_until: null,
      sampled_at: null,
      created_by: principalLabel(actor),
      created_at: now,
      updated_at: now,
      finished_at: null,
      maintenance_window: input.maintenance_window ? JSON.stringify(normaliseWindow(input.maintenance_window)) : null,
    };
    const per = this.deps.db.caps.insertChunk(14);
    await this.db.transaction().execute(async (trx) => {
      await trx.insertInto('campaigns').values(row).execute();
      await initCounts(trx, id, rows.length);
      for (let i = 0; i < rows.length; i += per) {
        await trx
          .insertInto('campaign_executions')
          .values(
            rows.slice(i, i + per).map((d, j) => ({
              campaign_id: id,
              sn_key: d.sn_key,
              sn: d.sn,
              device_id: d.id,
              seq: i + j,
              stage: i + j < canary ? 0 : null,
              state: 'queued',
              detail: null,
              from_version: d.firmware_version,
              attempts: 1,
              notified_at: null,
              deadline_at: null,
              finished_at: null,
              updated_at: now,
              error_reports: 0,
            })),
          )
          .execute();
      }
      await audit(trx, now, actor, 'campaign.create', `campaign:${id}`, {
        vendor_id: vendorId,
        ...(orgId ? { org_id: orgId } : {}),
        model_id: model.model_id,
        version: fw.version,
        devices: rows.length,
        canary,
        error_report_threshold: errorReportThreshold,
      });
    });
    this.engine.invalidate(model.model_id);
    return this.view(row, await this.engine.counts(id));
  }

  async list(actor: Principal, vendorId: string, opts: { status?: CampaignStatus } = {}): Promise<CampaignView[]> {
    requireVendor(actor, vendorId, 'read');
    let q = this.db.selectFrom('campaigns').selectAll().where('vendor_id', '=', vendorId);
    if (opts.status) q = q.where('status', '=', opts.status);
    const rows = await q.orderBy('created_at', 'desc').limit(200).execute();
    return Promise.all(rows.map(async (r) => this.view(r, await this.engine.counts(r.id))));
  }

  /** The campaign, when the actor may act on it (see access). */
  private async row(actor: Principal, id: string, cap: 'read' | 'firmware'): Promise<CampaignRow> {
    return (await this.access(actor, id, cap)).row;
  }

  /**
   * The campaign and the actor's standing on it: the vendor's people (read or firmware) on every
   * campaign of its models; an organisation's super admins on all of the organisation's own; a
   * device admin on the ones they started, seeing only the devices their range holds (`scoped`).
   */
  private async access(
    actor: Principal,
    id: string,
    cap: 'read' | 'firmware',
  ): Promise<{ row: CampaignRow; scoped: { orgId: string } | null }> {
    const r = await this.db.selectFrom('campaigns').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) fail('CAMPAIGN_NOT_FOUND');
    if (r.org_id && actor.kind === 'user' && !actor.isOperator) {
      const ctx = await this.standing.context(actor, r.org_id);
      if (ctx.role === 'super_admin') return { row: r, scoped: null };
      if (scopedAdmin(ctx) && r.created_by === principalLabel(actor)) return { row: r, scoped: { orgId: r.org_id } };
    }
    try {
      requireVendor(actor, r.vendor_id, cap);
    } catch (e) {
      // Someone else's campaign does not exist for them; a read-only member is refused outright.
      if (!canActForVendor(actor, r.vendor_id, 'read')) fail('CAMPAIGN_NOT_FOUND');
      throw e;
    }
    return { row: r, scoped: null };
  }

  async get(actor: Principal, id: string): Promise<CampaignView> {
    const r = await this.readable(actor, id);
    return this.view(r, await this.engine.counts(r.id));
  }

  /** The campaign when the actor may read it; one nobody may read does not exist for them. */
  private async readable(actor: Principal, id: string): Promise<CampaignRow> {
    return (await this.readAccess(actor, id)).row;
  }

  private readAccess(actor: Principal, id: string): ReturnType<CampaignsService['access']> {
    return this.access(actor, id, 'read').catch((e) => {
      if ((e as { code?: string }).code === 'FORBIDDEN') fail('CAMPAIGN_NOT_FOUND');
      throw e;
    });
  }

  /** Counts by state over time, oldest first, for the progress chart. */
  async samples(actor: Principal, id: string): Promise<Array<{ at: string; counts: Counts }>> {
    // The access check only: counting 100 000 executions again for each of the page's requests was
    // most of their time (bench:campaign-100k).
    await this.readable(actor, id);
    const rows = await this.db
      .selectFrom('campaign_samples')
      .select(['at', 'counts'])
      .where('campaign_id', '=', id)
      .orderBy('at')
      .limit(5_000)
      .execute();
    return rows.map((r) => ({ at: new Date(Number(r.at)).toISOString(), counts: JSON.parse(r.counts) as Counts }));
  }

  async executions(
    actor: Principal,
    id: string,
    opts: { state?: ExecState; after?: number; limit?: number } = {},
  ): Promise<{ executions: ExecutionView[]; next_after: number | null }> {
    const { row, scoped } = await this.readAccess(actor, id);
    const limit = Math.min(Math.max(opts.limit ?? 100, 1), 500);
    if (opts.state && !EXEC_STATES.includes(opts.state))
      fail('VALIDATION_FAILED', `state must be one of ${EXEC_STATES.join(', ')}`);
    // A device admin sees the devices their range holds now (a device moved out since is hidden).
    const within = scoped ? await devicesInRange(this.orgDevices, actor, scoped.orgId, row.model_id) : null;
    const batch = within ? 500 : limit + 1;
    const rows: ExecRow[] = [];
    let after = opts.after;
    for (;;) {
      const got = await this.executionBatch(id, opts.state, after, batch);
      for (const e of got) {
        after = e.seq;
        if (!within || within.has(e.sn_key)) rows.push(e);
        if (rows.length > limit) break;
      }
      if (rows.length > limit || got.length < batch) break;
    }
    const page = rows.slice(0, limit);
    return {
      executions: page.map(execView),
      next_after: rows.length > limit ? page[page.length - 1]!.seq : null,
    };
  }

  private executionBatch(id: string, state: ExecState | undefined, after: number | undefined, limit: number): Promise<ExecRow[]> {
    let q = this.db.selectFrom('campaign_executions').selectAll().where('campaign_id', '=', id);
    if (state) q = q.where('state', '=', state);
    if (after !== undefined) q = q.where('seq', '>', after);
    return q.orderBy('seq').limit(limit).execute();
  }

  /** A device's executions, newest campaign first (the device page). */
  async forDevice(actor: Principal, sn: string): Promise<ExecutionView[]> {
    const d = await this.devices.getRow(actor, sn, 'devices');
    const rows = await this.db
      .selectFrom('campaign_executions')
      .selectAll()
      .where('sn_key', '=', d.sn_key)
      .orderBy('updated_at', 'desc')
      .limit(20)
      .execute();
    return rows.map(execView);
  }

  async pause(actor: Principal, id: string): Promise<CampaignView> {
    const r = await this.row(actor, id, 'firmware');
    if (r.status !== 'running') fail('CAMPAIGN_STATE', `The campaign is ${r.status}; only a running campaign can be paused`);
    await this.engine.pause(r, `Paused by ${principalLabel(actor)}`, null, principalLabel(actor));
    return this.get(actor, id);
  }

  /** Resumes; abort criteria count again from now (the figures that paused it are acknowledged). */
  async resume(actor: Principal, id: string): Promise<CampaignView> {
    const r = await this.row(actor, id, 'firmware');
    if (r.status !== 'paused') fail('CAMPAIGN_STATE', `The campaign is ${r.status}; only a paused campaign can be resumed`);
    const now = this.deps.clock.now();
    await this.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('campaigns')
        .set({
          status: 'running',
          counted_from: now,
          pause_reason: null,
          pause_figures: null,
          paused_at: null,
          dispatch_at: now,
          updated_at: now,
        })
        .where('id', '=', id)
        .where('status', '=', 'paused')
        .execute();
      await audit(trx, now, actor, 'campaign.resumed', `campaign:${id}`, { acknowledged: r.pause_reason });
    });
    this.engine.invalidate(r.model_id);
    return this.get(actor, id);
  }

  /** Stops for good: devices not yet told are cancelled; devices already upgrading carry on unwatched. */
  async cancel(actor: Principal, id: string): Promise<CampaignView> {
    const r = await this.row(actor, id, 'firmware');
    if (r.status === 'cancelled' || r.status === 'completed') fail('CAMPAIGN_STATE', `The campaign is already ${r.status}`);
    const now = this.deps.clock.now();
    await this.db.transaction().execute(async (trx) => {
      // State by state, so the stored counts move by exactly what each update changed.
      const delta: Partial<Record<ExecState, number>> = {};
      let cancelled = 0;
      for (const was of ['queued', ...IN_FLIGHT] as const) {
        const n = await trx
          .updateTable('campaign_executions')
          .set({ state: 'cancelled', detail: 'campaign_cancelled', finished_at: now, updated_at: now })
          .where('campaign_id', '=', id)
          .where('state', '=', was)
          .executeTakeFirst();
        const k = Number(n.numUpdatedRows);
        delta[was] = -k;
        cancelled += k;
      }
      delta.cancelled = cancelled;
      await adjustCounts(trx, id, delta);
      await trx
        .updateTable('campaigns')
        .set({ status: 'cancelled', finished_at: now, updated_at: now, lease_owner: null, lease_until: null })
        .where('id', '=', id)
        .execute();
      await audit(trx, now, actor, 'campaign.cancelled', `campaign:${id}`, { executions_cancelled: cancelled });
    });
    await this.engine.sample(id, now, await this.engine.counts(id));
    return this.get(actor, id);
  }

  /** Failed and timed-out executions go back to the queue (of the current stage); a finished campaign runs again. */
  async retryFailed(actor: Principal, id: string): Promise<CampaignView & { retried: number }> {
    const r = await this.row(actor, id, 'firmware');
    if (r.status === 'cancelled') fail('CAMPAIGN_STATE', 'The campaign is cancelled');
    const now = this.deps.clock.now();
    const retried = await this.db.transaction().execute(async (trx) => {
      const delta: Partial<Record<ExecState, number>> = {};
      let count = 0;
      for (const was of ['failed', 'timed_out'] as const) {
        const n = await trx
          .updateTable('campaign_executions')
          .set((eb) => ({
            state: 'queued',
            stage: null,
            detail: null,
            notified_at: null,
            deadline_at: null,
            finished_at: null,
            updated_at: now,
            // A new attempt: the reports of the last one do not count against it.
            error_reports: 0,
            attempts: eb('attempts', '+', 1),
          }))
          .where('campaign_id', '=', id)
          .where('state', '=', was)
          .executeTakeFirst();
        const k = Number(n.numUpdatedRows);
        delta[was] = -k;
        count += k;
      }
      delta.queued = count;
      await adjustCounts(trx, id, delta);
      if (count > 0 && r.status === 'completed') {
        await trx
          .updateTable('campaigns')
          .set({ status: 'running', finished_at: null, updated_at: now, counted_from: now })
          .where('id', '=', id)
          .execute();
      }
      await audit(trx, now, actor, 'campaign.retry_failed', `campaign:${id}`, { executions: count });
      return count;
    });
    this.engine.invalidate(r.model_id);
    return { ...(await this.get(actor, id)), retried };
  }

  private view(r: CampaignRow, counts: Counts): CampaignView {
    return {
      id: r.id,
      vendor_id: r.vendor_id,
      org_id: r.org_id,
      maintenance_window: r.maintenance_window ? (JSON.parse(r.maintenance_window) as MaintenanceWindow) : null,
      model_id: r.model_id,
      firmware_id: r.firmware_id,
      version: r.version,
      name: r.name,
      status: r.status as CampaignStatus,
      target: JSON.parse(r.target) as TargetSpec,
      stages: JSON.parse(r.stages) as StagesSpec,
      thresholds: JSON.parse(r.thresholds) as Thresholds,
      offline: r.offline as 'skip' | 'queue',
      queue_expiry_sec: r.queue_expiry_sec,
      window_sec: r.window_sec,
      error_report_threshold: Number(r.error_report_threshold),
      total: r.total,
      stage: r.stage,
      rate_per_minute: r.rate_per_min,
      counts,
      pause_reason: r.pause_reason,
      pause_figures: r.pause_figures ? (JSON.parse(r.pause_figures) as Figures & { criterion: string | null }) : null,
      paused_at: iso(r.paused_at === null ? null : Number(r.paused_at)),
      created_by: r.created_by,
      created_at: new Date(Number(r.created_at)).toISOString(),
      finished_at: iso(r.finished_at === null ? null : Number(r.finished_at)),
    };
  }
}

/** A device admin (not an operator, not a super admin): their campaigns reach only their range. */
function scopedAdmin(ctx: OrgContext): boolean {
  return !ctx.isOperator && ctx.role === 'device_admin';
}
