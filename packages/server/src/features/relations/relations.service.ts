import { snKey } from '@bindery/protocol';
import type { RelationImportsTable } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { AppError, fail } from '../../errors.js';
import { audit, principalLabel } from '../../shared/audit.js';
import { newId } from '../../shared/ids.js';
import { type Principal, requireVendor } from '../../shared/principal.js';
import { COLUMNS, type ColumnKey, columnDef, columnForHeader, headerText, type Lang } from './relations.columns.js';
import { relationsCsv } from './relations.export.js';
import { type ImportHistoryEntry, importHistory } from './relations.history.js';
import type { ImportLimits } from './relations.limits.js';
import { type ByteSource, type FileFormat, type RawRecord, RelationFileError, readRecords } from './relations.parse.js';
import { type PairingRow, type PairingWrite, RelationsRepo } from './relations.repo.js';
import {
  type Checked,
  checkAppSceneCode,
  checkCameraSn,
  checkDeviceKey,
  checkDeviceName,
  checkFingerprint,
  checkOperatingSystem,
  checkSn,
} from './relations.rules.js';
import { relationsTemplate } from './relations.template.js';

export type { FileFormat } from './relations.parse.js';

export interface ImportError {
  /** The line as a person sees it: the text line of a csv, the row of a sheet; the header is line 1. */
  line: number;
  /** The column's header as written in the file. */
  column?: string;
  value?: string;
  message: string;
}

export interface ImportReport {
  dry_run: boolean;
  /** True only when the pairings were written (no errors, not a dry run). */
  imported: boolean;
  /** The history entry; null for a dry run, which writes nothing. */
  import_id: string | null;
  /** Data rows read (blank rows are not counted). */
  rows: number;
  /** Devices that get a DeviceKey for the first time. */
  paired: number;
  /** Devices already paired with the same DeviceKey whose name, fingerprint or attributes change. */
  updated: number;
  /** Rows that match what is stored already. */
  unchanged: number;
  /** Every error found; `errors` lists the first MAX_REPORTED_ERRORS of them, by line. */
  error_count: number;
  errors: ImportError[];
}

export interface ImportOptions {
  format: FileFormat;
  dryRun?: boolean;
  /** The uploaded file's name, kept in the history. */
  fileName?: string;
  /** Called with the number of data rows read so far, every PROGRESS_EVERY rows and at the end. */
  onProgress?: (done: number) => void;
  /** Bounds on the file (relations.limits.ts); the defaults unless a caller needs tighter ones. */
  limits?: ImportLimits;
}

export type { ImportHistoryEntry } from './relations.history.js';

export const MAX_REPORTED_ERRORS = 1000;
/** Errors kept with a rejected import's history entry. */
const HISTORY_ERRORS = 50;
/** Rows in one file; the whole file is validated in memory before it is written. */
export const MAX_ROWS = 1_000_000;
const PROGRESS_EVERY = 1000;
const VALUE_SHOWN = 100;

/** One data row that passed the cell rules, waiting for the checks against the store. */
interface Candidate {
  line: number;
  dk: string;
  dkNorm: string;
  pk: string;
  modelId: string;
  sn: string | null;
  cells: Partial<Record<OptionalKey, string>>;
}

type OptionalKey = 'device_name' | 'cert_fingerprint' | 'camera_sn' | 'app_scene_code' | 'operating_system';

const OPTIONAL_RULES: Record<OptionalKey, (v: string) => Checked<string>> = {
  device_name: checkDeviceName,
  cert_fingerprint: checkFingerprint,
  camera_sn: checkCameraSn,
  app_scene_code: checkAppSceneCode,
  operating_system: checkOperatingSystem,
};
const OPTIONAL_KEYS = Object.keys(OPTIONAL_RULES) as OptionalKey[];

/** Collects errors: counts every one, keeps the first few. */
class ErrorList {
  readonly items: ImportError[] = [];
  count = 0;
  add(e: ImportError): void {
    this.count++;
    if (this.items.length < MAX_REPORTED_ERRORS) this.items.push(e);
  }
}

function shown(v: string): string {
  return v.length > VALUE_SHOWN ? `${v.slice(0, VALUE_SHOWN)}…` : v;
}

/**
 * Relation files (issue 2 §8, reference §B3): the production line's SN↔DeviceKey (IMEI/MAC)
 * pairs. The whole file is read (streamed) and validated before anything is written; then
 * every pairing is written in one transaction, or none is.
 */
export class RelationsService {
  readonly repo: RelationsRepo;

  constructor(private readonly deps: Pick<Deps, 'db' | 'clock' | 'metrics'>) {
    this.repo = new RelationsRepo(deps.db.kysely, deps.db.caps);
  }

  /** The batch-import template (relations.template.ts). */
  template(format: FileFormat, lang: Lang): Promise<Buffer> {
    return relationsTemplate(format, lang);
  }

  /** The vendor's pairings as a csv relation file (relations.export.ts). */
  exportCsv(actor: Principal, vendorId: string, lang: Lang): Promise<AsyncGenerator<Buffer>> {
    return relationsCsv(this.deps.db.kysely, actor, vendorId, lang);
  }

  /**
   * Imports a relation file for a vendor. Returns the report; a report with errors means
   * nothing was written (the HTTP route answers it with IMPORT_REJECTED). Throws only for
   * what is not about the file's content: permissions, an unknown vendor, an upload that
   * breaks off or is too large.
   */
  async importFile(actor: Principal, vendorId: string, input: ByteSource, opts: ImportOptions): Promise<ImportReport> {
    const startedAt = this.deps.clock.now();
    const dryRun = opts.dryRun === true;
    try {
      requireVendor(actor, vendorId, 'relations');
      if (opts.format !== 'csv' && opts.format !== 'xlsx') fail('VALIDATION_FAILED', "format must be 'csv' or 'xlsx'");
      const vendor = await this.deps.db.kysely.selectFrom('vendors').select('id').where('id', '=', vendorId).executeTakeFirst();
      if (!vendor) fail('VENDOR_NOT_FOUND');
    } catch (e) {
      if (isReadable(input)) input.destroy();
      throw e;
    }

    // A model token may import only its own model's rows; other principals, the vendor's models.
    let models = this.deps.db.kysely.selectFrom('models').select(['model_id', 'product_key']).where('vendor_id', '=', vendorId);
    if (actor.kind === 'model') models = models.where('model_id', '=', actor.modelId);
    const modelByPk = new Map((await models.execute()).map((m) => [m.product_key, m.model_id]));

    // Two lists, each in line order, so the first errors reported are the first lines.
    const cellErrors = new ErrorList();
    const storeErrors = new ErrorList();
    const { rows, candidates, columnName } = await this.readAndCheckCells(input, opts, modelByPk, cellErrors);
    const plan = await this.checkAgainstStore(candidates, vendorId, modelByPk, columnName, storeErrors, startedAt);

    const report: ImportReport = {
      dry_run: dryRun,
      imported: false,
      import_id: null,
      rows,
      paired: plan.paired,
      updated: plan.updated,
      unchanged: plan.unchanged,
      error_count: cellErrors.count + storeErrors.count,
      errors: [...cellErrors.items, ...storeErrors.items].sort((a, b) => a.line - b.line).slice(0, MAX_REPORTED_ERRORS),
    };
    if (dryRun) return report;

    const importId = newId('imp');
    const history = (result: 'imported' | 'rejected', errorCount: number, errs: ImportError[]): RelationImportsTable => ({
      id: importId,
      vendor_id: vendorId,
      actor: principalLabel(actor),
      file_name: opts.fileName ?? null,
      format: opts.format,
      result,
      rows,
      paired: result === 'imported' ? plan.paired : 0,
      updated: result === 'imported' ? plan.updated : 0,
      unchanged: result === 'imported' ? plan.unchanged : 0,
      error_count: errorCount,
      errors: errs.length ? JSON.stringify(errs.slice(0, HISTORY_ERRORS)) : null,
      started_at: startedAt,
      finished_at: this.deps.clock.now(),
    });

    if (report.error_count > 0) {
      await this.recordRejected(actor, history('rejected', report.error_count, report.errors));
      return { ...report, import_id: importId };
    }

    try {
      await this.deps.db.kysely.transaction().execute(async (trx) => {
        const changed = await this.repo.with(trx).applyPairings(plan.writes);
        if (changed !== plan.writes.length) throw new ConcurrentChange();
        const entry = history('imported', 0, []);
        await this.repo.with(trx).insertImport(entry);
        await audit(trx, entry.finished_at, actor, 'relations.import', `vendor:${vendorId}`, {
          import_id: importId,
          file_name: opts.fileName ?? null,
          rows,
          paired: plan.paired,
          updated: plan.updated,
          unchanged: plan.unchanged,
        });
      });
    } catch (e) {
      if (!(e instanceof ConcurrentChange) && !this.deps.db.caps.isUniqueViolation(e)) throw e;
      // Another writer paired one of these devices or keys after validation: nothing was written.
      const err: ImportError = {
        line: 0,
        message:
          'Some of these devices or device keys were paired by someone else during the import; nothing was imported, import the file again',
      };
      await this.recordRejected(actor, history('rejected', 1, [err]));
      return { ...report, import_id: importId, error_count: 1, errors: [err] };
    }
    this.deps.metrics
      .counter('bindery_relation_rows_paired_total', 'Devices paired with a DeviceKey by relation imports')
      .inc(plan.paired);
    return { ...report, imported: true, import_id: importId };
  }

  private async recordRejected(actor: Principal, row: RelationImportsTable): Promise<void> {
    await this.deps.db.kysely.transaction().execute(async (trx) => {
      await this.repo.with(trx).insertImport(row);
      await audit(trx, row.finished_at, actor, 'relations.import_rejected', `vendor:${row.vendor_id}`, {
        import_id: row.id,
        file_name: row.file_name,
        rows: row.rows,
        error_count: row.error_count,
      });
    });
  }

  /** Pass 1, streamed: the header, then every row's cells and in-file duplicates. */
  private async readAndCheckCells(
    input: ByteSource,
    opts: ImportOptions,
    modelByPk: Map<string, string>,
    errors: ErrorList,
  ): Promise<{ rows: number; candidates: Candidate[]; columnName: (key: ColumnKey) => string }> {
    const candidates: Candidate[] = [];
    let header: HeaderMap | null = null;
    let rows = 0;
    // A column's name as the file writes it, for error messages; the English name when absent.
    const columnName = (key: ColumnKey): string => {
      const i = header ? header.at[key] : -1;
      return i >= 0 ? header!.names[i]! : headerText(columnDef(key), 'en');
    };
    const seen: SeenKeys = { dk: new Map(), sn: new Map() };

    try {
      for await (const rec of readRecords(input, opts.format, opts.limits)) {
        if (isBlank(rec.cells)) continue;
        if (!header) {
          header = this.readHeader(rec.line, rec.cells, errors);
          if (!header) return { rows: 0, candidates: [], columnName };
          continue;
        }
        rows++;
        if (rows > MAX_ROWS) {
          errors.add({ line: rec.line, message: `A file may hold at most ${MAX_ROWS} rows; split it` });
          return { rows: rows - 1, candidates: [], columnName };
        }
        if (rows % PROGRESS_EVERY === 0) opts.onProgress?.(rows);
        // A row with any error is reported and goes no further; the others are checked against the store.
        const errorsBefore = errors.count;
        const candidate = checkRow(rec, header, modelByPk, seen, columnName, errors);
        if (candidate && errors.count === errorsBefore) candidates.push(candidate);
      }
    } catch (e) {
      if (e instanceof RelationFileError) {
        errors.add({ line: e.line, message: e.message });
        return { rows, candidates, columnName };
      }
      throw e;
    }
    if (!header) errors.add({ line: 1, message: 'The file is empty: it needs the header line and at least one row' });
    else if (rows === 0) errors.add({ line: header.line + 1, message: 'The file has a header but no rows' });
    opts.onProgress?.(rows);
    return { rows, candidates, columnName };
  }

  /** Maps header cells to columns; null when the file cannot be read without a missing column. */
  private readHeader(line: number, raw: string[], errors: ErrorList): HeaderMap | null {
    const names = raw.map((c) => c.replace(/^\uFEFF/, '').trim());
    const byIndex: Array<ColumnKey | null> = [];
    const seen = new Map<ColumnKey, number>();
    let fatal = false;
    names.forEach((name, i) => {
      if (name === '') {
        byIndex.push(null);
        return;
      }
      const key = columnForHeader(name);
      byIndex.push(key ?? null);
      if (!key) {
        errors.add({ line, column: name, message: `Unknown column ${shown(name)}; the columns are listed in the template` });
        fatal = true;
      } else if (seen.has(key)) {
        errors.add({ line, column: name, message: `Column ${name} appears twice (also column ${seen.get(key)! + 1})` });
        fatal = true;
      } else seen.set(key, i);
    });
    for (const c of COLUMNS) {
      if (c.required && !seen.has(c.key)) {
        errors.add({ line, message: `The required column ${headerText(c, 'zh')} (${headerText(c, 'en')}) is missing` });
        fatal = true;
      }
    }
    if (fatal) return null;
    const at = Object.fromEntries(COLUMNS.map((c) => [c.key, seen.get(c.key) ?? -1])) as Record<ColumnKey, number>;
    return { line, byIndex, names, at };
  }

  /** Pass 2: every candidate against the stored devices, in batches; builds the writes. */
  private async checkAgainstStore(
    candidates: Candidate[],
    vendorId: string,
    modelByPk: Map<string, string>,
    col: (key: ColumnKey) => string,
    errors: ErrorList,
    now: number,
  ): Promise<{ writes: PairingWrite[]; paired: number; updated: number; unchanged: number }> {
    const pkOfModel = new Map([...modelByPk].map(([pk, id]) => [id, pk]));
    const snKeys = candidates.filter((c) => c.sn !== null).map((c) => snKey(c.sn!));
    const bySn = new Map((await this.repo.findBySnKeys(snKeys)).map((d) => [d.sn_key, d]));
    const byDk = new Map(
      (await this.repo.findByDeviceKeyNorms(candidates.map((c) => c.dkNorm))).map((d) => [d.device_key_norm!, d]),
    );

    const writes: PairingWrite[] = [];
    let paired = 0;
    let updated = 0;
    let unchanged = 0;
    for (const c of candidates) {
      const holder = byDk.get(c.dkNorm);
      let device: PairingRow;
      if (c.sn !== null) {
        const d = bySn.get(snKey(c.sn));
        if (!d || d.vendor_id !== vendorId) {
          errors.add({ line: c.line, column: col('sn'), value: c.sn, message: `SN ${c.sn} is not registered` });
          continue;
        }
        if (d.model_id !== c.modelId) {
          errors.add({
            line: c.line,
            column: col('sn'),
            value: c.sn,
            message: `SN ${d.sn} belongs to ProductKey ${pkOfModel.get(d.model_id) ?? 'of another model'}, not ${c.pk}`,
          });
          continue;
        }
        if (d.device_key_norm !== null && d.device_key_norm !== c.dkNorm) {
          errors.add({
            line: c.line,
            column: col('sn'),
            value: c.sn,
            message: `SN ${d.sn} is already paired with DeviceKey ${d.device_key}`,
          });
          continue;
        }
        if (holder && holder.id !== d.id) {
          errors.add({
            line: c.line,
            column: col('device_key'),
            value: c.dk,
            message:
              holder.vendor_id === vendorId
                ? `DeviceKey ${c.dk} is already paired with SN ${holder.sn}`
                : `DeviceKey ${c.dk} is already paired with another device`,
          });
          continue;
        }
        device = d;
      } else {
        // No SN: the row can only refer to the device this DeviceKey is already paired with.
        if (!holder || holder.vendor_id !== vendorId || holder.model_id !== c.modelId) {
          errors.add({
            line: c.line,
            column: col('sn'),
            message: `The SN is required: DeviceKey ${c.dk} is not yet paired with a device of ProductKey ${c.pk}`,
          });
          continue;
        }
        device = holder;
      }

      // Empty optional cells keep what is stored: a file never erases data it does not mention.
      const next: PairingWrite = {
        id: device.id,
        device_key: c.dk,
        device_key_norm: c.dkNorm,
        device_name: c.cells.device_name ?? device.device_name,
        cert_fingerprint: c.cells.cert_fingerprint ?? device.cert_fingerprint,
        camera_sn: c.cells.camera_sn ?? device.camera_sn,
        app_scene_code: c.cells.app_scene_code ?? device.app_scene_code,
        operating_system: c.cells.operating_system ?? device.operating_system,
        paired_at: device.paired_at ?? now,
      };
      if (device.device_key_norm === null) {
        paired++;
        writes.push(next);
      } else if (
        next.device_key !== device.device_key ||
        next.device_name !== device.device_name ||
        next.cert_fingerprint !== device.cert_fingerprint ||
        next.camera_sn !== device.camera_sn ||
        next.app_scene_code !== device.app_scene_code ||
        next.operating_system !== device.operating_system
      ) {
        updated++;
        writes.push(next);
      } else unchanged++;
    }
    return { writes, paired, updated, unchanged };
  }

  /** The import history of a vendor, newest first (relations.history.ts). */
  listImports(
    actor: Principal,
    vendorId: string,
    q: { limit?: number; cursor?: string } = {},
  ): Promise<{ imports: ImportHistoryEntry[]; next_cursor: string | null }> {
    return importHistory(this.deps.db.kysely, this.repo, actor, vendorId, q);
  }
}

interface HeaderMap {
  line: number;
  /** The column of each header cell; null for an empty header cell. */
  byIndex: Array<ColumnKey | null>;
  names: string[];
  /** Each column's index in the file, -1 when absent. */
  at: Record<ColumnKey, number>;
}

/** The first line each normalised DeviceKey and SN key was seen on. */
interface SeenKeys {
  dk: Map<string, number>;
  sn: Map<string, number>;
}

function isBlank(cells: string[]): boolean {
  for (const c of cells) if (c.trim() !== '') return false;
  return true;
}

function cellOf(cells: string[], h: HeaderMap, key: ColumnKey): string {
  const i = h.at[key];
  return i >= 0 ? (cells[i]?.trim() ?? '') : '';
}

/**
 * The cell rules of one data row (no closures per row: this runs 100 000 times a file). Adds
 * the row's errors and returns what the store checks need, or null when there is nothing to check.
 */
function checkRow(
  rec: RawRecord,
  h: HeaderMap,
  modelByPk: Map<string, string>,
  seen: SeenKeys,
  col: (key: ColumnKey) => string,
  errors: ErrorList,
): Candidate | null {
  const { line, cells } = rec;
  for (let i = 0; i < cells.length; i++) {
    if (h.byIndex[i] == null && cells[i]!.trim() !== '') {
      errors.add({
        line,
        value: shown(cells[i]!.trim()),
        message: `Column ${i + 1} has a value but no header; name the column or clear it`,
      });
    }
  }
  for (const p of rec.problems ?? []) {
    errors.add({ line, column: h.names[p.index], value: shown(cells[p.index]?.trim() ?? ''), message: p.message });
  }

  const dkRaw = cellOf(cells, h, 'device_key');
  const dk = checkDeviceKey(dkRaw);
  if (!dk.ok) errors.add({ line, column: col('device_key'), value: shown(dkRaw), message: dk.message });
  else {
    const first = seen.dk.get(dk.value.norm);
    if (first === undefined) seen.dk.set(dk.value.norm, line);
    else {
      errors.add({
        line,
        column: col('device_key'),
        value: shown(dkRaw),
        message: `DeviceKey ${dkRaw} is already on line ${first} of this file`,
      });
    }
  }

  const pk = cellOf(cells, h, 'product_key');
  const modelId = modelByPk.get(pk);
  if (pk === '') errors.add({ line, column: col('product_key'), message: 'ProductKey is required' });
  else if (!modelId) {
    errors.add({
      line,
      column: col('product_key'),
      value: shown(pk),
      message: `Unknown ProductKey ${shown(pk)}: it is not a model of this vendor`,
    });
  }

  const snRaw = cellOf(cells, h, 'sn');
  let sn: string | null = null;
  if (snRaw !== '') {
    const c = checkSn(snRaw);
    if (!c.ok) errors.add({ line, column: col('sn'), value: shown(snRaw), message: c.message });
    else {
      sn = c.value;
      const first = seen.sn.get(snKey(sn));
      if (first === undefined) seen.sn.set(snKey(sn), line);
      else {
        errors.add({
          line,
          column: col('sn'),
          value: sn,
          message: `SN ${sn} is already on line ${first} of this file (SNs ignore case)`,
        });
      }
    }
  }

  const optional: Candidate['cells'] = {};
  for (const key of OPTIONAL_KEYS) {
    const v = cellOf(cells, h, key);
    if (v === '') continue;
    const c = OPTIONAL_RULES[key](v);
    if (c.ok) optional[key] = c.value;
    else errors.add({ line, column: col(key), value: shown(v), message: c.message });
  }

  if (!dk.ok || !modelId) return null;
  return { line, dk: dk.value.key, dkNorm: dk.value.norm, pk, modelId, sn, cells: optional };
}

class ConcurrentChange extends Error {}

function isReadable(x: ByteSource): x is import('node:stream').Readable {
  return typeof (x as { destroy?: unknown }).destroy === 'function';
}

/** An AppError carrying a rejected report, for callers that prefer to throw (the HTTP route). */
export function importRejected(report: ImportReport): AppError {
  return new AppError('IMPORT_REJECTED', undefined, report);
}
