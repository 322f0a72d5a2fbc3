import { createHash } from 'node:crypto';
import { hasValidCheckChar } from '@bindery/protocol';
import type { Kysely, Selectable } from 'kysely';
import type { CallbackEndpointsTable, Database } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { AppError } from '../../errors.js';
import { newId } from '../../shared/ids.js';
import { typedSnNeedsCode } from '../binding/bind-proof.js';
import type { DevicesService } from '../devices/devices.service.js';
import type { Outbox } from './outbox.js';
import { envelope } from './payloads.js';
import type { WecomAttempt } from './transport.js';

export interface VerifyDeviceContext {
  db: Kysely<Database>;
  clock: Deps['clock'];
  logger: Deps['logger'];
  outbox: Outbox;
  devices: DevicesService;
  /** Sends one sealed verify_device callback to a provider URL (through the outbound policy). */
  send(ep: Selectable<CallbackEndpointsTable>, plaintext: string, timestampSec: number): Promise<WecomAttempt>;
}

interface Candidate {
  model_id: string;
  vendor_id: string;
  require_check_char: number;
  require_verif_code: number | null;
  typed_sn_mode: string | null;
}

/**
 * Whether `sn` could be a typed SN of one of these models that the binder could go on to bind:
 * a model that requires check characters only takes SNs that carry a valid one (the only SN shape
 * a model states), and a model whose typed SNs need the label's verification code cannot bind an
 * SN nobody registered (no label exists). Without this a typo on any bind page would become a
 * callback to every vendor (issue 11, finding 5).
 */
function looksLikeOneOf(sn: string, models: Candidate[]): boolean {
  return models.some(
    (m) =>
      !typedSnNeedsCode({ typed_sn_mode: m.typed_sn_mode, require_verif_code: m.require_verif_code ?? undefined }) &&
      (m.require_check_char !== 1 || hasValidCheckChar(sn)),
  );
}

function candidates(db: Kysely<Database>) {
  return db
    .selectFrom('models as m')
    .leftJoin('model_bind_settings as s', 's.model_id', 'm.model_id')
    .select(['m.model_id', 'm.vendor_id', 'm.require_check_char', 's.require_verif_code', 's.typed_sn_mode']);
}

/**
 * An SN typed on the bind page that nobody registered: every vendor with verify_device on (only
 * the product key's vendor when one was given) whose models could have made the SN is asked
 * within 1 s; the first that answers `{is_valid: true, modelid}` for one of its own models gets
 * the SN registered under that model. Returns whether the SN is now registered.
 *
 * Its caller, the binding service (BindGate), is to call this only for signed-in binders and to
 * count an SN that stays unknown in its lockout; the requests go through the outbound policy like
 * every other callback.
 */
export async function verifyUnknownSn(c: VerifyDeviceContext, sn: string, modelId?: string): Promise<boolean> {
  let q = candidates(c.db);
  if (modelId) q = q.where('m.model_id', '=', modelId);
  const models: Candidate[] = await q.execute();
  if (!models.length) return false;
  const byVendor = new Map<string, Candidate[]>();
  for (const m of models) byVendor.set(m.vendor_id, [...(byVendor.get(m.vendor_id) ?? []), m]);
  const vendorIds = [...byVendor].filter(([, ms]) => looksLikeOneOf(sn, ms)).map(([v]) => v);
  if (!vendorIds.length) return false;
  const eps = await c.db
    .selectFrom('callback_endpoints')
    .selectAll()
    .where('kind', '=', 'vendor')
    .where('verify_device', '=', 1)
    .where('vendor_id', 'in', vendorIds)
    .execute();
  if (!eps.length) return false;
  const md5 = createHash('md5').update(sn, 'utf8').digest('hex');
  const now = Math.floor(c.clock.now() / 1000);
  const answers = await Promise.all(
    eps.map(async (ep) => {
      const id = newId('dlv');
      const payload = envelope('event', 'verify_device', {
        reqId: id,
        createtime: now,
        serviceCorpid: ep.vendor_id,
        extra: { device_sn_md5: md5 },
      });
      const r = await c.send(ep, JSON.stringify(payload), now);
      await c.outbox
        .record(
          {
            id,
            targetKind: 'vendor',
            targetId: ep.id,
            vendorId: ep.vendor_id,
            orgId: null,
            sn: null,
            eventType: 'verify_device',
            payload,
          },
          r,
        )
        .catch((err) => c.logger.error({ err }, 'could not log the verify_device callback'));
      const v = r.ok && r.vendorReply?.kind === 'json' ? r.vendorReply.value : null;
      if (v?.is_valid !== true || typeof v.modelid !== 'string') return null;
      return { vendorId: ep.vendor_id, modelId: v.modelid };
    }),
  );
  for (const a of answers) {
    if (!a || (modelId && a.modelId !== modelId)) continue;
    // A vendor may only vouch for SNs of its own models, and only in a shape those models use.
    const m = models.find((x) => x.model_id === a.modelId);
    if (!m || m.vendor_id !== a.vendorId || !looksLikeOneOf(sn, [m])) continue;
    try {
      await c.devices.register({ kind: 'system', name: 'verify_device' }, m.model_id, sn);
      return true;
    } catch (e) {
      // Registered meanwhile (another bind page, the vendor itself): the SN is known now.
      if (e instanceof AppError && e.code === 'SN_TAKEN') return true;
      throw e;
    }
  }
  return false;
}
