import { isValidSn, snKey } from '@bindery/protocol';
import { parse } from 'csv-parse/sync';
import type { Insertable } from 'kysely';
import type { DeviceInspectionsTable } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { audit, principalLabel } from '../../shared/audit.js';
import { canActForVendor, isOperator, type Principal } from '../../shared/principal.js';
import { assertCaller, type MerchantCaller, type MerchantService, rfc3339 } from './merchant.service.js';

/**
 * Only vendors (and operators) import inspections. Checked before any record is read, so a person
 * gets 403 rather than a per-record report that says which SNs exist.
 */
function requireVendorSide(actor: Principal): void {
  if (isOperator(actor) || actor.kind === 'vendor_key' || actor.kind === 'model') return;
  fail('FORBIDDEN', 'Only vendors import inspection records');
}

/** A factory inspection record as vendors import it (API JSON or one csv line). */
export interface InspectionInput {
  device_sn: string;
  wired_mac?: string;
  wireless_mac?: string;
  bluetooth_mac?: string;
  app_version?: string;
  camera_sn?: string;
  imei?: string;
  result: string;
  errors?: string[];
  warnings?: string[];
  inspect_time: string;
}

/** The §A4 body of GET /v3/iotmanage/device-inspections/{device_sn}. */
export interface InspectionView {
  device_sn: string;
  wired_mac: string;
  wireless_mac: string;
  bluetooth_mac: string;
  app_version: string;
  camera_sn: string;
  imei: string;
  result: string;
  errors: string[];
  warnings: string[];
  inspect_time: string;
}

export const INSPECTION_RESULTS = ['SUCCESS', 'WARN', 'FAIL'] as const;
export const INSPECTION_CSV_COLUMNS = [
  'device_sn',
  'wired_mac',
  'wireless_mac',
  'bluetooth_mac',
  'app_version',
  'camera_sn',
  'imei',
  'result',
  'errors',
  'warnings',
  'inspect_time',
] as const;
const REQUIRED_COLUMNS = ['device_sn', 'result', 'inspect_time'];
/** The most records one import may carry, and the most errors one rejection lists. */
export const MAX_INSPECTION_RECORDS = 100_000;
const MAX_REPORTED_ERRORS = 200;

const MAC_RE = /^[0-9A-Fa-f]{2}(?:[:-]?[0-9A-Fa-f]{2}){5}$/;
const IMEI_RE = /^[0-9]{14,16}$/;
const RFC3339_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;
const V3_SN_RE = /^[0-9A-Za-z]{5,200}$/;

type Located = { line?: number; index?: number };
type Problem = Located & { message: string };
type Items = Array<{ at: Located; input: Partial<InspectionInput> }>;

/** Which devices an import may write records for, and what a refused SN reads as. */
interface ImportScope {
  allows(d: { vendor_id: string; merchant_org_id: string | null }): boolean;
  refusal(sn: string): string;
  /** The organisation whose audit log shows the import (a merchant's own). */
  orgId?: string;
}

/**
 * Factory inspection records: vendors import them (all-or-nothing, every error with its line),
 * merchants read them for the devices in their fleet through /v3.
 */
export class InspectionsService {
  constructor(
    private readonly deps: Pick<Deps, 'db' | 'clock'>,
    /** Who may manage a merchant (its super admins import for the devices in its list). */
    private readonly merchants?: Pick<MerchantService, 'managed'>,
  ) {}

  private get db() {
    return this.deps.db.kysely;
  }

  /** Imports JSON records; errors are reported by array index. */
  async importRecords(actor: Principal, records: unknown): Promise<{ imported: number }> {
    requireVendorSide(actor);
    if (!Array.isArray(records)) fail('VALIDATION_FAILED', 'records must be an array');
    return this.importAll(
      actor,
      records.map((r, index) => ({ at: { index }, input: r as Partial<InspectionInput> })),
      'api',
      vendorScope(actor),
    );
  }

  /**
   * Imports a csv (header line naming INSPECTION_CSV_COLUMNS; errors and warnings are `|`-separated
   * lists). Any bad line rejects the whole file; every error names its line.
   */
  async importCsv(actor: Principal, text: string): Promise<{ imported: number }> {
    requireVendorSide(actor);
    return this.importAll(actor, parseCsv(text), 'csv', vendorScope(actor));
  }

  /**
   * Merchant self-service: the same csv, for the devices in the merchant's list only (its own and
   * its sub-merchants'); operators and the merchant organisation's super admins (docs/merchant.md).
   */
  async importCsvForMerchant(actor: Principal, mchid: string, text: string): Promise<{ imported: number }> {
    if (!this.merchants) fail('INTERNAL', 'merchant inspections are not wired');
    const m = await this.merchants.managed(actor, mchid);
    return this.importAll(actor, parseCsv(text), 'csv', {
      allows: (d) => d.merchant_org_id === m.org.id,
      refusal: (sn) => `no device with SN ${sn} is in the list of merchant ${mchid}`,
      orgId: m.org.id,
    });
  }

  private async importAll(
    actor: Principal,
    items: Items,
    source: 'api' | 'csv',
    scope: ImportScope,
  ): Promise<{ imported: number }> {
    if (items.length === 0) fail('IMPORT_REJECTED', 'The file has no records; nothing was imported', { errors: [] });
    if (items.length > MAX_INSPECTION_RECORDS) {
      fail('IMPORT_REJECTED', undefined, { errors: [{ message: `at most ${MAX_INSPECTION_RECORDS} records per import` }] });
    }
    const problems: Problem[] = [];
    const firstAt = new Map<string, Located>();
    const valid: Array<{ at: Located; sn: string; key: string; row: Omit<Insertable<DeviceInspectionsTable>, 'device_id'> }> = [];
    const now = this.deps.clock.now();
    for (const { at, input } of items) {
      const p = validateInspection(input);
      const sn = typeof input.device_sn === 'string' ? input.device_sn : '';
      const key = isValidSn(sn) ? snKey(sn) : '';
      if (key) {
        const seen = firstAt.get(key);
        if (seen) p.push(`device_sn ${sn} appears again (first at ${describe(seen)})`);
        else firstAt.set(key, at);
      }
      if (p.length) {
        for (const message of p) problems.push({ ...at, message });
        continue;
      }
      valid.push({
        at,
        sn,
        key,
        row: {
          wired_mac: normaliseMac(input.wired_mac),
          wireless_mac: normaliseMac(input.wireless_mac),
          bluetooth_mac: normaliseMac(input.bluetooth_mac),
          app_version: input.app_version ?? '',
          camera_sn: input.camera_sn ?? '',
          imei: input.imei ?? '',
          result: String(input.result).toUpperCase(),
          errors: JSON.stringify(input.errors ?? []),
          warnings: JSON.stringify(input.warnings ?? []),
          inspect_time: Date.parse(input.inspect_time!),
          imported_at: now,
          imported_by: principalLabel(actor),
        },
      });
    }

    // Resolve SNs to devices the actor may act for; another vendor's device reads as unknown.
    const devices = new Map<string, { id: number; vendor_id: string; merchant_org_id: string | null }>();
    const keys = valid.map((v) => v.key);
    for (let i = 0; i < keys.length; i += 500) {
      const rows = await this.db
        .selectFrom('devices')
        .select(['id', 'sn_key', 'vendor_id', 'merchant_org_id'])
        .where('sn_key', 'in', keys.slice(i, i + 500))
        .execute();
      for (const r of rows) devices.set(r.sn_key, { id: r.id, vendor_id: r.vendor_id, merchant_org_id: r.merchant_org_id });
    }
    const rows: Insertable<DeviceInspectionsTable>[] = [];
    for (const v of valid) {
      const d = devices.get(v.key);
      if (!d || !scope.allows(d)) {
        problems.push({ ...v.at, message: scope.refusal(v.sn) });
        continue;
      }
      rows.push({ device_id: d.id, ...v.row });
    }
    if (problems.length) {
      problems.sort((a, b) => (a.line ?? a.index ?? 0) - (b.line ?? b.index ?? 0));
      fail('IMPORT_REJECTED', `The records have ${problems.length} error(s); nothing was imported`, {
        errors: problems.slice(0, MAX_REPORTED_ERRORS),
        error_count: problems.length,
      });
    }

    const chunk = this.deps.db.caps.insertChunk(13);
    await this.db.transaction().execute(async (trx) => {
      for (let i = 0; i < rows.length; i += chunk) {
        await trx
          .insertInto('device_inspections')
          .values(rows.slice(i, i + chunk))
          .onConflict((oc) =>
            oc.column('device_id').doUpdateSet((eb) => ({
              wired_mac: eb.ref('excluded.wired_mac'),
              wireless_mac: eb.ref('excluded.wireless_mac'),
              bluetooth_mac: eb.ref('excluded.bluetooth_mac'),
              app_version: eb.ref('excluded.app_version'),
              camera_sn: eb.ref('excluded.camera_sn'),
              imei: eb.ref('excluded.imei'),
              result: eb.ref('excluded.result'),
              errors: eb.ref('excluded.errors'),
              warnings: eb.ref('excluded.warnings'),
              inspect_time: eb.ref('excluded.inspect_time'),
              imported_at: eb.ref('excluded.imported_at'),
              imported_by: eb.ref('excluded.imported_by'),
            })),
          )
          .execute();
      }
      await audit(trx, now, actor, 'inspection.import', 'inspections', { source, records: rows.length }, scope.orgId);
    });
    return { imported: rows.length };
  }

  /** One device's record, for the vendor (or an operator). */
  async get(actor: Principal, sn: string): Promise<InspectionView> {
    if (!isValidSn(sn)) fail('INVALID_SN', undefined, { sn });
    const row = await this.lookup(snKey(sn));
    if (!row || !canActForVendor(actor, row.vendor_id, 'devices')) fail('DEVICE_NOT_FOUND', `No device with SN ${sn}`);
    if (row.result === null) fail('NOT_FOUND', `Device ${sn} has no inspection record`);
    return toView(row);
  }

  /** §A4 device-inspections: only for a device in the calling merchant's fleet. */
  async forMerchant(caller: MerchantCaller, sn: string): Promise<InspectionView> {
    assertCaller(caller);
    if (!V3_SN_RE.test(sn)) {
      fail('PARAM_ERROR', 'device_sn must be 5–200 letters and digits', {
        field: 'device_sn',
        value: sn,
        issue: 'must match ^[0-9A-Za-z]{5,200}$',
        location: 'path',
      });
    }
    const row = await this.lookup(snKey(sn));
    if (!row || row.merchant_org_id !== caller.orgId) {
      fail('RESOURCE_NOT_EXISTS', `No device with SN ${sn} belongs to this merchant`);
    }
    if (row.result === null) fail('RESOURCE_NOT_EXISTS', `Device ${sn} has no inspection record`);
    return toView(row);
  }

  private lookup(key: string) {
    return this.db
      .selectFrom('devices as d')
      .leftJoin('device_inspections as i', 'i.device_id', 'd.id')
      .select([
        'd.sn',
        'd.vendor_id',
        'd.merchant_org_id',
        'i.wired_mac',
        'i.wireless_mac',
        'i.bluetooth_mac',
        'i.app_version',
        'i.camera_sn',
        'i.imei',
        'i.result',
        'i.errors',
        'i.warnings',
        'i.inspect_time',
      ])
      .where('d.sn_key', '=', key)
      .executeTakeFirst();
  }
}

/** A csv of inspection records (errors by line), before any record is checked. */
function parseCsv(text: string): Items {
  let parsed: Array<{ record: Record<string, string>; info: { lines: number } }>;
  let header: string[] = [];
  try {
    parsed = parse(text, {
      bom: true,
      columns: (h: string[]) => {
        header = h.map((c) => c.trim().toLowerCase());
        return header;
      },
      skip_empty_lines: true,
      trim: true,
      info: true,
      relax_column_count: false,
    });
  } catch (e) {
    const line = (e as { lines?: number }).lines;
    fail('IMPORT_REJECTED', undefined, { errors: [{ line, message: `not a readable csv: ${(e as Error).message}` }] });
  }
  const headerProblems: Problem[] = [];
  for (const c of header) {
    if (!(INSPECTION_CSV_COLUMNS as readonly string[]).includes(c)) {
      headerProblems.push({ line: 1, message: `unknown column "${c}"; columns are ${INSPECTION_CSV_COLUMNS.join(', ')}` });
    }
  }
  for (const c of REQUIRED_COLUMNS) {
    if (!header.includes(c)) headerProblems.push({ line: 1, message: `the required column ${c} is missing` });
  }
  if (headerProblems.length) fail('IMPORT_REJECTED', undefined, { errors: headerProblems });
  const list = (v: string | undefined) =>
    (v ?? '')
      .split('|')
      .map((s) => s.trim())
      .filter(Boolean);
  return parsed.map(({ record, info }) => ({
    at: { line: info.lines },
    input: { ...record, errors: list(record.errors), warnings: list(record.warnings) } as Partial<InspectionInput>,
  }));
}

/** Vendors import for their own devices (operators for any). */
function vendorScope(actor: Principal): ImportScope {
  return {
    allows: (d) => canActForVendor(actor, d.vendor_id, 'devices'),
    refusal: (sn) => `no device with SN ${sn} is registered to you`,
  };
}

type LookupRow = {
  sn: string;
  wired_mac: string | null;
  wireless_mac: string | null;
  bluetooth_mac: string | null;
  app_version: string | null;
  camera_sn: string | null;
  imei: string | null;
  result: string | null;
  errors: string | null;
  warnings: string | null;
  inspect_time: number | null;
};

function toView(r: LookupRow): InspectionView {
  return {
    device_sn: r.sn,
    wired_mac: r.wired_mac ?? '',
    wireless_mac: r.wireless_mac ?? '',
    bluetooth_mac: r.bluetooth_mac ?? '',
    app_version: r.app_version ?? '',
    camera_sn: r.camera_sn ?? '',
    imei: r.imei ?? '',
    result: r.result ?? '',
    errors: JSON.parse(r.errors ?? '[]') as string[],
    warnings: JSON.parse(r.warnings ?? '[]') as string[],
    inspect_time: rfc3339(Number(r.inspect_time)),
  };
}

function describe(at: Located): string {
  return at.line !== undefined ? `line ${at.line}` : `index ${at.index}`;
}

function normaliseMac(v: string | undefined): string {
  if (!v) return '';
  const hex = v.replace(/[:-]/g, '').toUpperCase();
  return hex.match(/.{2}/g)!.join(':');
}

/** Problems with one record, as sentences. */
export function validateInspection(r: Partial<InspectionInput>): string[] {
  const p: string[] = [];
  if (typeof r !== 'object' || r === null) return ['the record must be an object'];
  if (!isValidSn(r.device_sn)) p.push('device_sn must be 1–128 characters of 0-9, A-Z, a-z');
  if (typeof r.result !== 'string' || !(INSPECTION_RESULTS as readonly string[]).includes(r.result.toUpperCase())) {
    p.push(`result must be one of ${INSPECTION_RESULTS.join(', ')}`);
  }
  if (typeof r.inspect_time !== 'string' || !RFC3339_RE.test(r.inspect_time) || Number.isNaN(Date.parse(r.inspect_time))) {
    p.push('inspect_time must be an RFC 3339 time such as 2024-05-01T10:00:00.000+08:00');
  }
  for (const f of ['wired_mac', 'wireless_mac', 'bluetooth_mac'] as const) {
    const v = r[f];
    if (v !== undefined && v !== '' && (typeof v !== 'string' || !MAC_RE.test(v)))
      p.push(`${f} must be a MAC address like AA:BB:CC:DD:EE:FF`);
  }
  if (r.imei !== undefined && r.imei !== '' && (typeof r.imei !== 'string' || !IMEI_RE.test(r.imei))) {
    p.push('imei must be 14–16 digits');
  }
  for (const f of ['app_version', 'camera_sn'] as const) {
    const v = r[f];
    if (v !== undefined && (typeof v !== 'string' || v.length > 64)) p.push(`${f} must be a string of at most 64 characters`);
  }
  for (const f of ['errors', 'warnings'] as const) {
    const v = r[f];
    if (v === undefined) continue;
    if (!Array.isArray(v) || v.length > 50 || v.some((s) => typeof s !== 'string' || s.length > 256)) {
      p.push(`${f} must be a list of at most 50 strings of at most 256 characters`);
    }
  }
  return p;
}
