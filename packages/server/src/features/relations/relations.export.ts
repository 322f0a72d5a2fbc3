import type { Kysely } from 'kysely';
import type { Database } from '../../adapters/storage/schema.js';
import { fail } from '../../errors.js';
import { csvChunks } from '../../shared/csv.js';
import { type Principal, requireVendor } from '../../shared/principal.js';
import { COLUMNS, headerText, type Lang } from './relations.columns.js';

const PAGE = 1000;

/**
 * A vendor's current pairings as a relation file (csv, UTF-8 with BOM, every column of the
 * template plus the extras), streamed page by page. The headers are the import's own, so the file
 * can be edited and imported again. Every cell goes through the shared csv writer, so a value
 * stored from an earlier import (a device name "=HYPERLINK(…)") reaches the spreadsheet as text.
 * A model token exports only its own model's devices.
 */
export async function relationsCsv(
  db: Kysely<Database>,
  actor: Principal,
  vendorId: string,
  lang: Lang,
): Promise<AsyncGenerator<Buffer>> {
  requireVendor(actor, vendorId, 'relations');
  if (lang !== 'zh' && lang !== 'en') fail('VALIDATION_FAILED', "lang must be 'zh' or 'en'");
  const vendor = await db.selectFrom('vendors').select('id').where('id', '=', vendorId).executeTakeFirst();
  if (!vendor) fail('VENDOR_NOT_FOUND');
  const modelOnly = actor.kind === 'model' ? actor.modelId : null;

  async function* rows(): AsyncGenerator<Array<string | null>> {
    yield COLUMNS.map((c) => headerText(c, lang));
    for (let after = 0; ; ) {
      let q = db
        .selectFrom('devices')
        .innerJoin('models', 'models.model_id', 'devices.model_id')
        .select([
          'devices.id',
          'devices.sn',
          'devices.device_key',
          'models.product_key',
          'devices.device_name',
          'devices.cert_fingerprint',
          'devices.camera_sn',
          'devices.app_scene_code',
          'devices.operating_system',
        ])
        .where('devices.vendor_id', '=', vendorId)
        .where('devices.device_key', 'is not', null)
        .where('devices.id', '>', after);
      if (modelOnly) q = q.where('devices.model_id', '=', modelOnly);
      const page = await q.orderBy('devices.id').limit(PAGE).execute();
      if (page.length === 0) return;
      for (const d of page) {
        const byKey: Record<string, string | null> = {
          device_key: d.device_key,
          product_key: d.product_key,
          sn: d.sn,
          device_name: d.device_name,
          cert_fingerprint: d.cert_fingerprint,
          camera_sn: d.camera_sn,
          app_scene_code: d.app_scene_code,
          operating_system: d.operating_system,
        };
        yield COLUMNS.map((c) => byKey[c.key] ?? null);
      }
      after = page[page.length - 1]!.id;
    }
  }
  return csvChunks(rows(), { bom: true });
}
