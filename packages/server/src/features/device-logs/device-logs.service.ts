import { createHash } from 'node:crypto';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import type { DomainEvents } from '../../shared/domain-events.js';
import { type Principal, requireOperator } from '../../shared/principal.js';
import type { DevicesService } from '../devices/devices.service.js';
import { sortableId } from '../gateway/sortable-id.js';

export interface DeviceLogView {
  id: string;
  req_id: string;
  size: number;
  sha256: string;
  uploaded_at: string;
}

export interface ErrorReportView {
  id: number;
  errcode: number;
  errmsg: string;
  reported_at: string;
}

/** The device a gateway connection speaks for (the gateway has checked its signature and secret). */
export interface DeviceRef {
  id: number;
  sn: string;
}

/** Longest errmsg kept from an error_report; the rest is cut. */
export const ERRMSG_MAX = 1024;

/**
 * What devices send about themselves: log files (binary `upload_log`, stored under
 * BINDERY_DATA_DIR/device-logs) and error reports (`error_report`). Devices write through the
 * gateway (a system principal); people who may manage the device — for now operators and the
 * device's vendor — list and download.
 */
export class DeviceLogsService {
  private readonly dir: string;
  constructor(
    private readonly deps: Pick<Deps, 'db' | 'clock' | 'config'>,
    private readonly devices: DevicesService,
    /** Uploads and error reports become lifecycle events (vendor webhooks). */
    private readonly lifecycle: { events: DomainEvents; logger: Logger } | null = null,
  ) {
    this.dir = path.join(deps.config.dataDir, 'device-logs');
  }

  private get db() {
    return this.deps.db.kysely;
  }

  /** Stores one uploaded log and keeps only the newest `keep` of the device. */
  async storeLog(actor: Principal, device: DeviceRef, reqId: string, data: Buffer, keep: number): Promise<DeviceLogView> {
    requireOperator(actor);
    const id = sortableId('log', this.deps.clock.now());
    const dir = path.join(this.dir, String(device.id));
    await mkdir(dir, { recursive: true });
    const fileName = `${id}.log`;
    const file = path.join(dir, fileName);
    await writeFile(file, data, { flag: 'wx' });
    const row = {
      id,
      device_id: device.id,
      req_id: reqId.slice(0, 256),
      size: data.length,
      sha256: createHash('sha256').update(data).digest('hex'),
      file_name: fileName,
      uploaded_at: this.deps.clock.now(),
    };
    try {
      await this.db.insertInto('device_logs').values(row).execute();
    } catch (e) {
      await rm(file, { force: true });
      throw e;
    }
    this.fact(device.id, { type: 'device.log_uploaded', logId: id });
    const old = await this.db
      .selectFrom('device_logs')
      .select(['id', 'file_name'])
      .where('device_id', '=', device.id)
      .orderBy('uploaded_at', 'desc')
      .orderBy('id', 'desc')
      .offset(Math.max(1, keep))
      .limit(1000)
      .execute();
    if (old.length > 0) {
      await this.db
        .deleteFrom('device_logs')
        .where(
          'id',
          'in',
          old.map((o) => o.id),
        )
        .execute();
      await Promise.all(old.map((o) => rm(path.join(dir, o.file_name), { force: true })));
    }
    return logView(row);
  }

  async listLogs(actor: Principal, sn: string): Promise<DeviceLogView[]> {
    const d = await this.devices.getRow(actor, sn, 'devices');
    const rows = await this.db
      .selectFrom('device_logs')
      .selectAll()
      .where('device_id', '=', d.id)
      .orderBy('uploaded_at', 'desc')
      .orderBy('id', 'desc')
      .execute();
    return rows.map(logView);
  }

  async logFile(actor: Principal, sn: string, logId: string): Promise<{ path: string; size: number; name: string }> {
    const d = await this.devices.getRow(actor, sn, 'devices');
    const row = await this.db
      .selectFrom('device_logs')
      .selectAll()
      .where('id', '=', logId)
      .where('device_id', '=', d.id)
      .executeTakeFirst();
    if (!row) fail('LOG_NOT_FOUND');
    const p = path.join(this.dir, String(d.id), row.file_name);
    try {
      await stat(p);
    } catch {
      fail('LOG_NOT_FOUND', 'The log file is missing from the data directory');
    }
    const at = new Date(row.uploaded_at).toISOString().replace(/[:.]/g, '-');
    return { path: p, size: row.size, name: `${d.sn}-${at}.log` };
  }

  async recordError(actor: Principal, device: DeviceRef, errcode: number, errmsg: string): Promise<void> {
    requireOperator(actor);
    const r = await this.db
      .insertInto('device_error_reports')
      .values({ device_id: device.id, errcode, errmsg: errmsg.slice(0, ERRMSG_MAX), reported_at: this.deps.clock.now() })
      .returning('id')
      .executeTakeFirstOrThrow();
    this.fact(device.id, { type: 'device.error_report', reportId: String(r.id) });
  }

  /** Announced without waiting: the device's frame must not wait on listeners. */
  private fact(
    deviceId: number,
    e: { type: 'device.log_uploaded'; logId: string } | { type: 'device.error_report'; reportId: string },
  ): void {
    const lc = this.lifecycle;
    if (!lc) return;
    const at = this.deps.clock.now();
    void (async () => {
      const d = await this.db
        .selectFrom('devices')
        .select(['sn', 'model_id', 'vendor_id'])
        .where('id', '=', deviceId)
        .executeTakeFirst();
      if (d) await lc.events.emit({ ...e, sn: d.sn, modelId: d.model_id, vendorId: d.vendor_id, at });
    })().catch((err: unknown) => lc.logger.error({ err, type: e.type }, 'lifecycle event failed'));
  }

  async listErrors(actor: Principal, sn: string, limit = 100): Promise<ErrorReportView[]> {
    const d = await this.devices.getRow(actor, sn, 'devices');
    const rows = await this.db
      .selectFrom('device_error_reports')
      .selectAll()
      .where('device_id', '=', d.id)
      .orderBy('id', 'desc')
      .limit(Math.min(Math.max(limit, 1), 500))
      .execute();
    return rows.map((r) => ({
      id: r.id,
      errcode: r.errcode,
      errmsg: r.errmsg,
      reported_at: new Date(r.reported_at).toISOString(),
    }));
  }

  /** Error reports older than `before` are removed (the gateway's maintenance sweep). */
  async purgeErrors(before: number): Promise<number> {
    const r = await this.db.deleteFrom('device_error_reports').where('reported_at', '<', before).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}

function logView(r: { id: string; req_id: string; size: number; sha256: string; uploaded_at: number }): DeviceLogView {
  return { id: r.id, req_id: r.req_id, size: r.size, sha256: r.sha256, uploaded_at: new Date(r.uploaded_at).toISOString() };
}
