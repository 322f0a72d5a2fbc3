import type { ExecState } from './campaigns.model.js';

/** One device's execution as the API shows it. */
export interface ExecutionView {
  campaign_id: string;
  sn: string;
  stage: number | null;
  state: ExecState;
  detail: string | null;
  from_version: string | null;
  attempts: number;
  /** error_reports received while downloading in this attempt (the campaign's threshold fails it). */
  error_reports: number;
  notified_at: string | null;
  finished_at: string | null;
  updated_at: string;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function execView(e: {
  campaign_id: string;
  sn: string;
  stage: number | null;
  state: string;
  detail: string | null;
  from_version: string | null;
  attempts: number;
  error_reports: number;
  notified_at: number | null;
  finished_at: number | null;
  updated_at: number;
}): ExecutionView {
  return {
    campaign_id: e.campaign_id,
    sn: e.sn,
    stage: e.stage,
    state: e.state as ExecState,
    detail: e.detail,
    from_version: e.from_version,
    attempts: e.attempts,
    error_reports: Number(e.error_reports),
    notified_at: iso(e.notified_at === null ? null : Number(e.notified_at)),
    finished_at: iso(e.finished_at === null ? null : Number(e.finished_at)),
    updated_at: new Date(Number(e.updated_at)).toISOString(),
  };
}
