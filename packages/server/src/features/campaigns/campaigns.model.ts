import type { Selectable } from 'kysely';
import type { CampaignsTable } from '../../adapters/storage/schema.js';

/** Where one device is in a campaign (issue 14 item 2). */
export type ExecState = 'queued' | 'notified' | 'downloading' | 'succeeded' | 'failed' | 'timed_out' | 'skipped' | 'cancelled';
export const EXEC_STATES: readonly ExecState[] = [
  'queued',
  'notified',
  'downloading',
  'succeeded',
  'failed',
  'timed_out',
  'skipped',
  'cancelled',
];
/** A device was told and has not come back yet. */
export const IN_FLIGHT: readonly ExecState[] = ['notified', 'downloading'];

export type CampaignStatus = 'running' | 'paused' | 'cancelled' | 'completed';
export type CampaignRow = Selectable<CampaignsTable>;

/**
 * Stage 0 is the canary (N devices or a percentage, all at once; the next stage waits until every
 * canary execution has ended). Stage k ≥ 1 releases devices at `rate_per_minute`; once
 * `stage_size` of them have ended within the criteria, the next stage's rate is multiplied by
 * `factor` (AWS IoT Jobs' exponential rollout), up to `max_rate_per_minute`.
 */
export interface StagesSpec {
  canary_count?: number;
  canary_percent?: number;
  rate_per_minute: number;
  factor: number;
  stage_size: number;
  max_rate_per_minute?: number;
}

/** Abort criteria: each percentage of executions ended, once `min_executions` have ended; null disables it. */
export interface Thresholds {
  min_executions: number;
  failure_pct: number | null;
  timeout_pct: number | null;
  did_not_come_back_pct: number | null;
}

export interface TargetSpec {
  /** Only devices currently on one of these versions (null in the list: devices that never reported one). */
  from_versions?: Array<string | null>;
  online_only?: boolean;
  /** Only these SNs (an uploaded list). */
  sns?: string[];
  /** Only devices owned by this organisation. */
  org_id?: string;
  /** Only the organisation's devices in this department or a sub-department (needs org_id). */
  department_id?: string;
}

export type Counts = Record<ExecState, number>;

export function emptyCounts(): Counts {
  return Object.fromEntries(EXEC_STATES.map((s) => [s, 0])) as Counts;
}

/** The figures abort criteria are judged on (executions ended since the campaign last started counting). */
export interface Figures {
  executed: number;
  succeeded: number;
  failed: number;
  timed_out: number;
  did_not_come_back: number;
}

/** Which criterion tripped, with a sentence that names the figures; null when all hold. */
export function judge(t: Thresholds, f: Figures): { criterion: string; reason: string } | null {
  if (f.executed === 0 || f.executed < t.min_executions) return null;
  const pct = (n: number) => (n * 100) / f.executed;
  const of = (n: number) =>
    `${n} of ${f.executed} executions ended (${f.succeeded} succeeded, ${f.failed} failed, ${f.timed_out} timed out, ${f.did_not_come_back} did not come back)`;
  const checks: Array<[string, number | null, number, string]> = [
    ['did_not_come_back', t.did_not_come_back_pct, f.did_not_come_back, 'did not come back'],
    ['failure', t.failure_pct, f.failed, 'failed'],
    ['timeout', t.timeout_pct, f.timed_out, 'timed out'],
  ];
  for (const [criterion, limit, n, words] of checks) {
    if (limit === null || limit === undefined) continue;
    if (pct(n) >= limit && n > 0) {
      return {
        criterion,
        reason: `${pct(n).toFixed(1)}% ${words}, at or above the ${limit}% threshold: ${of(n)}`,
      };
    }
  }
  return null;
}

/** Devices in the canary stage for a campaign of `total` devices. */
export function canarySize(s: StagesSpec, total: number): number {
  if (s.canary_count !== undefined) return Math.min(total, Math.max(0, Math.floor(s.canary_count)));
  if (s.canary_percent !== undefined) return Math.min(total, Math.ceil((total * s.canary_percent) / 100));
  return 0;
}

export function nextRate(s: StagesSpec, rate: number): number {
  const r = Math.ceil(rate * s.factor);
  return s.max_rate_per_minute ? Math.min(s.max_rate_per_minute, r) : r;
}

/**
 * error_reports a downloading device may send before its execution fails, when the campaign does
 * not say (issue 14 item 2: "error_reports past a threshold"). Not 1: firmware reports transient
 * trouble while it retries a download (a dropped link, a full flash it then clears), and one
 * report is not proof the image is bad; a device that gives up says so anyway by coming back on
 * its old version or reporting a failed upgrade, which fails it at once. Three is a retry loop
 * that keeps failing.
 */
export const DEFAULT_ERROR_REPORT_THRESHOLD = 3;
export const MAX_ERROR_REPORT_THRESHOLD = 1000;

/** The problem with an error_report threshold, if any (a whole number in [1, MAX_ERROR_REPORT_THRESHOLD]). */
export function errorReportThresholdProblems(v: unknown): string[] {
  return Number.isSafeInteger(v) && (v as number) >= 1 && (v as number) <= MAX_ERROR_REPORT_THRESHOLD
    ? []
    : [`error_report_threshold must be a whole number from 1 to ${MAX_ERROR_REPORT_THRESHOLD}`];
}

export function validateSpec(stages: StagesSpec, t: Thresholds): string[] {
  const p: string[] = [];
  const posInt = (v: unknown) => Number.isSafeInteger(v) && (v as number) > 0;
  if (stages.canary_count !== undefined && !(Number.isSafeInteger(stages.canary_count) && stages.canary_count >= 0)) {
    p.push('stages.canary_count must be a whole number ≥ 0');
  }
  if (stages.canary_percent !== undefined && !(stages.canary_percent > 0 && stages.canary_percent <= 100)) {
    p.push('stages.canary_percent must be in (0, 100]');
  }
  if (!posInt(stages.rate_per_minute)) p.push('stages.rate_per_minute must be a whole number ≥ 1');
  if (!(stages.factor >= 1 && stages.factor <= 10)) p.push('stages.factor must be between 1 and 10');
  if (!posInt(stages.stage_size)) p.push('stages.stage_size must be a whole number ≥ 1');
  if (stages.max_rate_per_minute !== undefined && !posInt(stages.max_rate_per_minute)) {
    p.push('stages.max_rate_per_minute must be a whole number ≥ 1');
  }
  if (!(Number.isSafeInteger(t.min_executions) && t.min_executions >= 1)) p.push('thresholds.min_executions must be ≥ 1');
  for (const k of ['failure_pct', 'timeout_pct', 'did_not_come_back_pct'] as const) {
    const v = t[k];
    if (v !== null && !(typeof v === 'number' && v > 0 && v <= 100)) p.push(`thresholds.${k} must be in (0, 100] or null`);
  }
  return p;
}
