import { PassThrough, Readable } from 'node:stream';
import { isValidSn, type LabelFormat, labelContent, snKey } from '@bindery/protocol';
import ExcelJS from 'exceljs';
import type { ModelsTable } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { AppError, fail } from '../../errors.js';
import { audit } from '../../shared/audit.js';
import { csvChunks } from '../../shared/csv.js';
import { type Principal, requireVendor } from '../../shared/principal.js';
import { verifCodeFor } from '../binding/scan.js';
import type { ModelsService } from '../models/models.service.js';
import type { DeviceListQuery } from './devices.repo.js';
import type { DevicesService } from './devices.service.js';

/** SNs one paste may register (all or nothing). Label batches are the way to make more. */
export const MAX_BULK_SNS = 1000;
/** Rows one static-QR spreadsheet may carry. */
export const MAX_SHEET_ROWS = 100_000;

export interface BulkLineError {
  line: number;
  sn: string;
  reason: 'invalid_sn' | 'duplicate_in_list' | 'already_registered';
}

export const SHEET_HEADER = ['SN', 'model', 'PK', 'hw_code', 'static QR URL', 'label content', 'verification code'];

/**
 * The vendor's fleet in bulk (issue 13, item 3): registering a pasted list of SNs, and the static-QR
 * spreadsheet seed 001 hands out after registration, for any selection of the fleet list.
 */
export class FleetService {
  constructor(
    private readonly deps: Pick<Deps, 'db' | 'clock' | 'secrets' | 'config' | 'metrics'>,
    private readonly models: ModelsService,
    private readonly devices: DevicesService,
  ) {}

  /**
   * Registers every SN of the list, or none: a line that is no valid SN, repeats an earlier line
   * (SNs ignore case) or is already registered rejects the whole list (IMPORT_REJECTED with each
   * line's reason), so a retried paste never registers half.
   */
  async registerMany(actor: Principal, modelId: string, sns: unknown): Promise<{ registered: number; sns: string[] }> {
    const model = await this.models.getActiveRow(actor, modelId, 'devices.write');
    if (!Array.isArray(sns) || sns.length === 0 || sns.length > MAX_BULK_SNS) {
      fail('VALIDATION_FAILED', `sns must list 1–${MAX_BULK_SNS} SNs`);
    }
    const errors: BulkLineError[] = [];
    const firstLine = new Map<string, number>();
    for (const [i, raw] of sns.entries()) {
      const sn = typeof raw === 'string' ? raw.trim() : String(raw);
      const key = snKey(sn);
      if (!isValidSn(sn)) errors.push({ line: i + 1, sn, reason: 'invalid_sn' });
      else if (firstLine.has(key)) errors.push({ line: i + 1, sn, reason: 'duplicate_in_list' });
      else firstLine.set(key, i + 1);
    }
    const taken = await this.devices.repo.findBySnKeys([...firstLine.keys()]);
    for (const t of taken) {
      const line = firstLine.get(t.sn_key)!;
      errors.push({ line, sn: String(sns[line - 1]).trim(), reason: 'already_registered' });
    }
    if (errors.length) {
      errors.sort((a, b) => a.line - b.line);
      throw new AppError('IMPORT_REJECTED', `${errors.length} of ${sns.length} lines have errors; nothing was registered`, {
        errors,
      });
    }
    const now = this.deps.clock.now();
    const clean = sns.map((s) => String(s).trim());
    const attrs = { app_scene_code: model.app_scene_code ?? null };
    const rows = clean.map((sn) => this.devices.newDeviceRow(model, sn, now, attrs));
    try {
      await this.deps.db.kysely.transaction().execute(async (trx) => {
        await this.devices.repo.with(trx).insertMany(rows);
        await audit(trx, now, actor, 'device.register_many', `model:${modelId}`, { count: rows.length });
      });
    } catch (e) {
      // Another paste won the race for one of these SNs between the check and the insert.
      if (this.deps.db.caps.isUniqueViolation(e))
        fail('SN_TAKEN', 'An SN of the list was registered meanwhile; nothing was registered');
      throw e;
    }
    this.deps.metrics.counter('bindery_devices_registered_total', 'Devices registered').inc(rows.length);
    this.devices.announceRegistered(model, clean, now);
    return { registered: rows.length, sns: clean };
  }

  /**
   * The static-QR spreadsheet (csv or xlsx) of a selection: explicit SNs, or the fleet list's filters.
   * One row per device: SN, model, PK, hw_code, the static bind URL to print as a QR code, the label
   * content of the model's format, and the verification code printed beside it (no secrets).
   */
  async qrSheet(
    actor: Principal,
    q: Omit<DeviceListQuery, 'limit' | 'after'> & { vendorId: string },
    format: 'csv' | 'xlsx',
  ): Promise<Readable> {
    // Label content and verification codes: production's (and the admin's), like the batch manifest.
    requireVendor(actor, q.vendorId, 'batches');
    if (q.snKeys && q.snKeys.length > MAX_BULK_SNS)
      fail('VALIDATION_FAILED', `select at most ${MAX_BULK_SNS} SNs, or use filters`);
    await audit(this.deps.db.kysely, this.deps.clock.now(), actor, 'device.qr_sheet', `vendor:${q.vendorId}`, {
      format,
      ...(q.snKeys ? { count: q.snKeys.length } : {}),
    });
    const rows = this.sheetRows(q);
    if (format === 'csv') return Readable.from(csvChunks(prepend(SHEET_HEADER, rows), { bom: true }));
    return xlsxStream(rows);
  }

  private async *sheetRows(q: Omit<DeviceListQuery, 'limit' | 'after'>): AsyncGenerator<string[]> {
    const models = new Map<string, ModelsTable>();
    let after: string | undefined;
    let n = 0;
    for (;;) {
      const page = await this.devices.repo.list({ ...q, after, limit: 1000 });
      for (const d of page) {
        if (n++ >= MAX_SHEET_ROWS) return;
        let m = models.get(d.model_id);
        if (!m) {
          m = await this.deps.db.kysely
            .selectFrom('models')
            .selectAll()
            .where('model_id', '=', d.model_id)
            .executeTakeFirstOrThrow();
          models.set(d.model_id, m);
        }
        yield [
          d.sn,
          m.name,
          m.product_key,
          d.hw_code,
          this.devices.qrCode(d.hw_code),
          labelContent(this.deps.config.publicUrl, m.label_format as LabelFormat, m.label_template, {
            pk: m.product_key,
            sn: d.sn,
            hwCode: d.hw_code,
          }),
          verifCodeFor(this.deps.secrets.open(d.secret_no_enc), d.sn),
        ];
      }
      if (page.length < 1000) return;
      after = page.at(-1)!.sn_key;
    }
  }
}

async function* prepend<T>(first: T, rest: AsyncIterable<T>): AsyncGenerator<T> {
  yield first;
  yield* rest;
}

function xlsxStream(rows: AsyncIterable<string[]>): Readable {
  const pt = new PassThrough({ highWaterMark: 256 * 1024 });
  const write = async () => {
    const wb = new ExcelJS.stream.xlsx.WorkbookWriter({ stream: pt, useSharedStrings: false, useStyles: true });
    const ws = wb.addWorksheet('devices', { views: [{ state: 'frozen', ySplit: 1 }] });
    const widths = [24, 20, 14, 26, 70, 70, 18];
    ws.columns = SHEET_HEADER.map((header, k) => ({ header, width: widths[k] }));
    ws.getRow(1).font = { bold: true };
    for await (const r of rows) ws.addRow(r).commit();
    ws.commit();
    await wb.commit();
  };
  write().catch((e: Error) => pt.destroy(e));
  return pt;
}
