import { isValidSn, parseScan, snKey } from '@bindery/protocol';
import type { Selectable } from 'kysely';
import type { PairingsTable } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { audit, principalLabel } from '../../shared/audit.js';
import { csvChunks } from '../../shared/csv.js';
import { newId } from '../../shared/ids.js';
import { type Principal, requireVendor } from '../../shared/principal.js';
import type { ScanResolver } from '../binding/scan.js';
import type { DeviceRow, KyselyDevicesRepo } from '../devices/devices.repo.js';
import { COLUMNS, headerText, type Lang } from '../relations/relations.columns.js';
import { RelationsRepo } from '../relations/relations.repo.js';
import { checkDeviceKey, deviceKeyNorm } from '../relations/relations.rules.js';

/**
 * Why a station's pair was refused. The relation-file rules (relations.service.ts) with the
 * station's own two: the label must be of the station's batch, and a pair already made is a duplicate.
 */
export const REFUSALS = [
  'device_key_invalid',
  'label_unreadable',
  'unknown_sn',
  'other_model',
  'other_batch',
  'device_key_taken',
  'sn_taken',
  'duplicate',
] as const;
export type Refusal = (typeof REFUSALS)[number];

export interface PairInput {
  /** The station's key for this pair: the same key sent again gets the first answer, nothing is written twice. */
  idempotency_key: string;
  shift_id: string;
  station: string;
  /** The module's IMEI or MAC, as scanned. */
  device_key: string;
  /** The device's label as scanned: the static bind URL, the Quectel `pk=…&sn=…&v=1` content, a custom label, or a bare SN. */
  label: string;
  /** What the station pairs: a batch (its model follows) or a model. */
  batch_id?: string;
  model_id?: string;
  /** The station's clock when the pair was scanned (ms since the epoch). */
  scanned_at?: number;
}

export interface PairResult {
  outcome: 'paired' | 'refused';
  reason: Refusal | null;
  message: string;
  device_key: string;
  sn: string | null;
  product_key: string | null;
  /** The SN or DeviceKey the pair collided with (device_key_taken, sn_taken), when it is this vendor's. */
  conflict: string | null;
  /** True when this answer is the stored one of an earlier request with the same key. */
  replayed: boolean;
  at: string;
}

const IDEM_RE = /^[A-Za-z0-9_-]{8,64}$/;
const TAG_RE = /^[A-Za-z0-9_.:-]{1,64}$/;
const LABEL_MAX = 1024;
/** How long a station's batch and model are trusted without a read (they are never re-assigned). */
const TARGET_TTL_MS = 10_000;

interface Target {
  modelId: string;
  productKey: string;
  batchId: string | null;
}

type Verdict =
  | { ok: true; device: DeviceRow; key: string; norm: string }
  | { ok: false; reason: Refusal; message: string; device?: DeviceRow; conflict?: string | null };

/**
 * The pairing station (issue 13 item 6; docs/pairing.md): one SN↔DeviceKey pair per request, checked
 * by the relation file's rules and written with its history row and audit record in one transaction.
 * Idempotent by the station's key, so a queue replayed after a network drop pairs nothing twice.
 */
export class PairingService {
  private readonly relations: RelationsRepo;

  constructor(
    private readonly deps: Pick<Deps, 'db' | 'clock' | 'metrics'>,
    private readonly scans: ScanResolver,
    private readonly devices: KyselyDevicesRepo,
  ) {
    this.relations = new RelationsRepo(deps.db.kysely, deps.db.caps);
  }

  async pair(actor: Principal, vendorId: string, input: PairInput): Promise<PairResult> {
    const started = performance.now();
    requireVendor(actor, vendorId, 'pairing');
    if (!IDEM_RE.test(input.idempotency_key)) fail('VALIDATION_FAILED', 'idempotency_key must be 8–64 of A-Z a-z 0-9 _ -');
    if (!TAG_RE.test(input.shift_id) || !TAG_RE.test(input.station)) {
      fail('VALIDATION_FAILED', 'shift_id and station must be 1–64 of A-Z a-z 0-9 _ . : -');
    }
    const target = await this.target(actor, vendorId, input);
    const result =
      (await this.fastPair(actor, vendorId, target, input)) ?? (await this.judgedPair(actor, vendorId, target, input));
    if (!result.replayed) {
      this.deps.metrics
        .counter('bindery_pairing_pairs_total', 'Pairs sent by pairing stations', ['outcome'])
        .inc({ outcome: result.outcome });
      this.deps.metrics
        .histogram(
          'bindery_pairing_seconds',
          'Server time of one pairing-station pair',
          [],
          [0.002, 0.005, 0.01, 0.02, 0.05, 0.1],
        )
        .observe((performance.now() - started) / 1000);
    }
    return result;
  }

  /**
   * The usual pair — a valid DeviceKey, a label naming its device by hw_code or SN, the device of
   * the station's model and batch and not yet paired — as one transaction of three statements: the
   * device's update says by its WHERE clause that every rule holds (RETURNING the device), then the
   * audit record and the log row. No read before: the log row's unique key answers a replay, and
   * the unique index on device_key_norm a DeviceKey paired elsewhere. Undefined when the update
   * changes nothing or a key collides (both rolled back, nothing written): the judged path then
   * finds the reason, or the stored answer. (On PostgreSQL each statement is a round trip, and under
   * load each round trip is a wait for the CPU: bench/pairing.ts.)
   */
  private async fastPair(actor: Principal, vendorId: string, target: Target, input: PairInput): Promise<PairResult | undefined> {
    const dk = checkDeviceKey(input.device_key.trim());
    const by = labelKey(input.label, target);
    if (!dk.ok || !by) return undefined;
    const now = this.deps.clock.now();
    try {
      return await this.deps.db.kysely.transaction().execute(async (trx) => {
        let update = trx
          .updateTable('devices')
          .set({ device_key: dk.value.key, device_key_norm: dk.value.norm, paired_at: now })
          .where(by.column, '=', by.value)
          .where('vendor_id', '=', vendorId)
          .where('model_id', '=', target.modelId)
          .where('device_key_norm', 'is', null);
        if (target.batchId !== null) update = update.where('batch_id', '=', target.batchId);
        const device = await update.returning(['id', 'sn']).executeTakeFirst();
        if (!device) throw new NotUsual();
        const row = this.logRow(actor, vendorId, target, input, now, {
          outcome: 'paired',
          device_id: device.id,
          sn: device.sn,
          product_key: target.productKey,
        });
        await audit(trx, now, actor, 'pairing.pair', `device:${device.sn}`, {
          device_key: dk.value.key,
          station: input.station,
          shift_id: input.shift_id,
          batch_id: target.batchId,
        });
        await trx.insertInto('pairings').values(row).execute();
        return view(row, false);
      });
    } catch (e) {
      if (e instanceof NotUsual || this.deps.db.caps.isUniqueViolation(e)) return undefined;
      throw e;
    }
  }

  /** A pairings row: what the station sent and the answer it got. */
  private logRow(
    actor: Principal,
    vendorId: string,
    target: Target,
    input: PairInput,
    now: number,
    answer: Pick<PairingsTable, 'outcome' | 'device_id' | 'sn' | 'product_key'> &
      Partial<Pick<PairingsTable, 'reason' | 'message' | 'conflict'>>,
  ): PairingsTable {
    return {
      id: newId('pair'),
      vendor_id: vendorId,
      idem_key: input.idempotency_key,
      shift_id: input.shift_id,
      station: input.station,
      model_id: target.modelId,
      batch_id: target.batchId,
      device_key: input.device_key.slice(0, 64),
      label: input.label.slice(0, 256),
      reason: null,
      message: null,
      conflict: null,
      ...answer,
      actor: principalLabel(actor),
      scanned_at: Number.isSafeInteger(input.scanned_at) ? input.scanned_at! : null,
      created_at: now,
    };
  }

  /**
   * Every other pair, and the usual one when the fast path changed nothing: the stored answer of
   * the key if there is one, else the relation rules judged on the device as read, then one
   * transaction of the pairing (when it holds), the audit record and the log row.
   */
  private async judgedPair(actor: Principal, vendorId: string, target: Target, input: PairInput): Promise<PairResult> {
    const db = this.deps.db.kysely;
    const stored = await this.stored(vendorId, input.idempotency_key);
    if (stored) return view(stored, true);

    // Two attempts: a pair another station wrote between our checks and our write is seen on the second.
    for (let attempt = 0; ; attempt++) {
      // The holder of a DeviceKey is looked up to name it; the fast path has already found the
      // usual pair, so a key collision is likelier here than not.
      const verdict = await this.check(vendorId, target, input, true);
      const now = this.deps.clock.now();
      const row = this.logRow(
        actor,
        vendorId,
        target,
        input,
        now,
        verdict.ok
          ? { outcome: 'paired', device_id: verdict.device.id, sn: verdict.device.sn, product_key: target.productKey }
          : {
              outcome: 'refused',
              device_id: null,
              sn: verdict.device?.sn ?? null,
              // The station's product key when the device is of its model; unknown otherwise.
              product_key: verdict.device?.model_id === target.modelId ? target.productKey : null,
              reason: verdict.reason,
              message: verdict.message,
              conflict: verdict.conflict ?? null,
            },
      );
      try {
        await db.transaction().execute(async (trx) => {
          if (verdict.ok) {
            const changed = await this.relations.with(trx).applyPairings([
              {
                id: verdict.device.id,
                device_key: verdict.key,
                device_key_norm: verdict.norm,
                device_name: verdict.device.device_name,
                cert_fingerprint: verdict.device.cert_fingerprint,
                camera_sn: verdict.device.camera_sn,
                app_scene_code: verdict.device.app_scene_code,
                operating_system: verdict.device.operating_system,
                paired_at: now,
              },
            ]);
            if (changed !== 1) throw new Raced();
            await audit(trx, now, actor, 'pairing.pair', `device:${verdict.device.sn}`, {
              device_key: verdict.key,
              station: input.station,
              shift_id: input.shift_id,
              batch_id: target.batchId,
            });
          }
          await trx.insertInto('pairings').values(row).execute();
        });
      } catch (e) {
        const unique = this.deps.db.caps.isUniqueViolation(e);
        if (!(e instanceof Raced) && !unique) throw e;
        // The same key from a concurrent retry: its answer stands.
        const first = await this.stored(vendorId, input.idempotency_key);
        if (first) return view(first, true);
        if (attempt < 1) continue;
        throw e;
      }
      return view(row, false);
    }
  }

  private stored(vendorId: string, key: string): Promise<Selectable<PairingsTable> | undefined> {
    return this.deps.db.kysely
      .selectFrom('pairings')
      .selectAll()
      .where('vendor_id', '=', vendorId)
      .where('idem_key', '=', key)
      .executeTakeFirst();
  }

  /** Product keys by model id (a model's product key never changes). */
  private readonly pks = new Map<string, string>();

  private async productKey(modelId: string): Promise<string | undefined> {
    const known = this.pks.get(modelId);
    if (known !== undefined) return known;
    const m = await this.deps.db.kysely
      .selectFrom('models')
      .select('product_key')
      .where('model_id', '=', modelId)
      .executeTakeFirst();
    if (m && this.pks.size < 10_000) this.pks.set(modelId, m.product_key);
    return m?.product_key;
  }

  /** What stations named lately (a batch's model and vendor never change), for a few seconds. */
  private readonly targets = new Map<string, { at: number; vendorId: string; target: Target }>();

  /** The station's model (and batch), which must be this vendor's (a model token's: its own model). */
  private async target(actor: Principal, vendorId: string, input: PairInput): Promise<Target> {
    const key = `${input.batch_id ?? ''}|${input.model_id ?? ''}`;
    const now = this.deps.clock.now();
    const hit = this.targets.get(key);
    const t =
      hit && hit.vendorId === vendorId && now - hit.at < TARGET_TTL_MS ? hit.target : await this.loadTarget(vendorId, input);
    if (!hit || hit.target !== t) {
      if (this.targets.size >= 1000) this.targets.clear();
      this.targets.set(key, { at: now, vendorId, target: t });
    }
    // A model token pairs its own model's devices only.
    if (actor.kind === 'model' && actor.modelId !== t.modelId) fail('MODEL_NOT_FOUND');
    return t;
  }

  private async loadTarget(vendorId: string, input: PairInput): Promise<Target> {
    const db = this.deps.db.kysely;
    let modelId = input.model_id;
    let batchId: string | null = null;
    if (input.batch_id !== undefined) {
      const b = await db
        .selectFrom('batches')
        .select(['id', 'model_id', 'vendor_id'])
        .where('id', '=', input.batch_id)
        .executeTakeFirst();
      if (!b || b.vendor_id !== vendorId) fail('BATCH_NOT_FOUND');
      if (modelId !== undefined && modelId !== b.model_id) fail('VALIDATION_FAILED', 'model_id is not the model of batch_id');
      modelId = b.model_id;
      batchId = b.id;
    }
    if (modelId === undefined) fail('VALIDATION_FAILED', 'Say what the station pairs: batch_id or model_id');
    const m = await db
      .selectFrom('models')
      .select(['model_id', 'product_key', 'vendor_id'])
      .where('model_id', '=', modelId)
      .executeTakeFirst();
    if (!m || m.vendor_id !== vendorId) fail('MODEL_NOT_FOUND');
    return { modelId: m.model_id, productKey: m.product_key, batchId };
  }

  /** The relation file's rules for one pair (docs/relations.md), plus the station's batch. */
  private async check(vendorId: string, target: Target, input: PairInput, lookupHolder: boolean): Promise<Verdict> {
    const dk = checkDeviceKey(input.device_key.trim());
    if (!dk.ok) return { ok: false, reason: 'device_key_invalid', message: dk.message };
    const device = await this.deviceOfLabel(input.label);
    if (device === 'unreadable') {
      return { ok: false, reason: 'label_unreadable', message: 'This is not a label: scan the QR code on the device label' };
    }
    // Another vendor's device is as unknown as no device: nothing leaks.
    if (!device || device.vendor_id !== vendorId) {
      return { ok: false, reason: 'unknown_sn', message: 'This label is not a device registered to this vendor' };
    }
    if (device.model_id !== target.modelId) {
      return {
        ok: false,
        reason: 'other_model',
        device,
        message: `SN ${device.sn} is a device of another model, not ${target.productKey}`,
      };
    }
    if (target.batchId !== null && device.batch_id !== target.batchId) {
      return { ok: false, reason: 'other_batch', device, message: `SN ${device.sn} is not in batch ${target.batchId}` };
    }
    const { key, norm } = dk.value;
    if (device.device_key_norm === norm) {
      return { ok: false, reason: 'duplicate', device, message: `SN ${device.sn} is already paired with DeviceKey ${key}` };
    }
    if (device.device_key_norm !== null) {
      return {
        ok: false,
        reason: 'sn_taken',
        device,
        conflict: device.device_key,
        message: `SN ${device.sn} is already paired with DeviceKey ${device.device_key}`,
      };
    }
    const [holder] = lookupHolder ? await this.relations.findByDeviceKeyNorms([norm]) : [];
    if (holder) {
      const ours = holder.vendor_id === vendorId;
      return {
        ok: false,
        reason: 'device_key_taken',
        device,
        conflict: ours ? holder.sn : null,
        message: ours
          ? `DeviceKey ${key} is already paired with SN ${holder.sn}`
          : `DeviceKey ${key} is already paired with another device`,
      };
    }
    return { ok: true, device, key, norm };
  }

  /** The device a scanned label names: any label format the binding scan reads, or a bare SN. */
  private async deviceOfLabel(label: string): Promise<DeviceRow | undefined | 'unreadable'> {
    const text = label.trim();
    if (text.length === 0 || text.length > LABEL_MAX) return 'unreadable';
    // The built-in forms in one read each; the rest (custom templates) through the binding's resolver.
    const scan = parseScan(text);
    if (scan.kind === 'static_bind') return this.devices.findByHwCode(scan.hwCode);
    if (scan.kind === 'quectel') {
      const d = isValidSn(scan.sn) ? await this.devices.findBySn(scan.sn) : undefined;
      // The label's product key must be the device's model's.
      return d && (await this.productKey(d.model_id)) === scan.pk ? d : undefined;
    }
    if (scan.kind !== 'unknown') return 'unreadable';
    if (isValidSn(text)) {
      const d = await this.devices.findBySn(text);
      if (d) return d;
    }
    const r = await this.scans.resolve(text);
    if (r.kind === 'quectel') return r.device;
    return isValidSn(text) ? undefined : 'unreadable';
  }

  /** A shift's pairs as a relation file (the import's own csv: UTF-8 with BOM, its headers), in pairing order. */
  async shiftCsv(actor: Principal, vendorId: string, shiftId: string, lang: Lang): Promise<AsyncGenerator<Buffer>> {
    requireVendor(actor, vendorId, 'pairing');
    if (lang !== 'zh' && lang !== 'en') fail('VALIDATION_FAILED', "lang must be 'zh' or 'en'");
    if (!TAG_RE.test(shiftId)) fail('VALIDATION_FAILED', 'shift_id must be 1–64 of A-Z a-z 0-9 _ . : -');
    const db = this.deps.db.kysely;
    async function* rows(): AsyncGenerator<Array<string | null>> {
      yield COLUMNS.map((c) => headerText(c, lang));
      for (let after = { at: -1, id: '' }; ; ) {
        const page = await db
          .selectFrom('pairings')
          .innerJoin('devices', 'devices.id', 'pairings.device_id')
          .select([
            'pairings.id',
            'pairings.created_at',
            'pairings.device_key as paired_key',
            'devices.device_key',
            'devices.device_key_norm',
            'pairings.product_key',
            'devices.sn',
          ])
          .where('pairings.vendor_id', '=', vendorId)
          .where('pairings.shift_id', '=', shiftId)
          .where('pairings.outcome', '=', 'paired')
          .where((eb) =>
            eb.or([
              eb('pairings.created_at', '>', after.at),
              eb.and([eb('pairings.created_at', '=', after.at), eb('pairings.id', '>', after.id)]),
            ]),
          )
          .orderBy('pairings.created_at')
          .orderBy('pairings.id')
          .limit(1000)
          .execute();
        if (page.length === 0) return;
        for (const p of page) {
          // Only pairs that still stand: a device unpaired (or paired anew) since leaves no row.
          if (p.device_key === null || p.device_key_norm !== deviceKeyNorm(p.paired_key)) continue;
          const byKey: Record<string, string | null> = { device_key: p.device_key, product_key: p.product_key, sn: p.sn };
          yield COLUMNS.map((c) => byKey[c.key] ?? null);
        }
        const last = page[page.length - 1]!;
        after = { at: Number(last.created_at), id: last.id };
      }
    }
    return csvChunks(rows(), { bom: true });
  }

  /** A shift's counts over every station that used the shift id. */
  async shiftSummary(
    actor: Principal,
    vendorId: string,
    shiftId: string,
  ): Promise<{ shift_id: string; paired: number; refused: number; first_at: string | null; last_at: string | null }> {
    requireVendor(actor, vendorId, 'pairing');
    const rows = await this.deps.db.kysely
      .selectFrom('pairings')
      .select((eb) => [
        'outcome',
        eb.fn.countAll<string | number>().as('n'),
        eb.fn.min('created_at').as('first'),
        eb.fn.max('created_at').as('last'),
      ])
      .where('vendor_id', '=', vendorId)
      .where('shift_id', '=', shiftId)
      .groupBy('outcome')
      .execute();
    const n = (o: string) => Number(rows.find((r) => r.outcome === o)?.n ?? 0);
    const firsts = rows.map((r) => Number(r.first));
    const lasts = rows.map((r) => Number(r.last));
    return {
      shift_id: shiftId,
      paired: n('paired'),
      refused: n('refused'),
      first_at: firsts.length ? new Date(Math.min(...firsts)).toISOString() : null,
      last_at: lasts.length ? new Date(Math.max(...lasts)).toISOString() : null,
    };
  }
}

class Raced extends Error {}
/** The fast path's update changed nothing: not the usual pair. */
class NotUsual extends Error {}

/**
 * The column and value that name a label's device without a read, for the fast path: the static
 * bind URL's hw_code, the SN of a Quectel label of the station's product key, or a bare SN. Null
 * for anything else (custom templates go through the binding's resolver on the judged path).
 */
function labelKey(label: string, target: Target): { column: 'hw_code' | 'sn_key'; value: string } | null {
  const text = label.trim();
  if (text.length === 0 || text.length > LABEL_MAX) return null;
  const scan = parseScan(text);
  if (scan.kind === 'static_bind') return { column: 'hw_code', value: scan.hwCode };
  if (scan.kind === 'quectel')
    return scan.pk === target.productKey && isValidSn(scan.sn) ? { column: 'sn_key', value: snKey(scan.sn) } : null;
  return scan.kind === 'unknown' && isValidSn(text) ? { column: 'sn_key', value: snKey(text) } : null;
}

function view(r: Selectable<PairingsTable> | PairingsTable, replayed: boolean): PairResult {
  return {
    outcome: r.outcome === 'paired' ? 'paired' : 'refused',
    reason: (r.reason as Refusal | null) ?? null,
    message: r.message ?? `SN ${r.sn} is paired with DeviceKey ${r.device_key}`,
    device_key: r.device_key,
    sn: r.sn,
    product_key: r.product_key,
    conflict: r.conflict,
    replayed,
    at: new Date(Number(r.created_at)).toISOString(),
  };
}
