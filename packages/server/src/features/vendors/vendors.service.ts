import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { audit } from '../../shared/audit.js';
import { newId } from '../../shared/ids.js';
import { isOperator, memberVendorIds, type Principal, requireOperator, requireVendor } from '../../shared/principal.js';

export interface VendorView {
  id: string;
  name: string;
  created_at: string;
}

export class VendorsService {
  constructor(private readonly deps: Pick<Deps, 'db' | 'clock'>) {}

  async create(actor: Principal, input: { name: string }): Promise<VendorView> {
    requireOperator(actor);
    const name = typeof input.name === 'string' ? input.name.trim() : '';
    if (name.length < 1 || name.length > 128) fail('VALIDATION_FAILED', 'name must be 1–128 characters');
    const now = this.deps.clock.now();
    const row = { id: newId('ven'), name, created_at: now };
    await this.deps.db.kysely.transaction().execute(async (trx) => {
      await trx.insertInto('vendors').values(row).execute();
      await audit(trx, now, actor, 'vendor.create', row.id, { name });
    });
    return view(row);
  }

  async get(actor: Principal, id: string): Promise<VendorView> {
    requireVendor(actor, id, 'read');
    const row = await this.deps.db.kysely.selectFrom('vendors').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) fail('VENDOR_NOT_FOUND');
    return view(row);
  }

  /** A vendor's keys, newest first (revoked ones too, marked); revoke with DELETE /api/v1/tokens/{id}. */
  async listKeys(actor: Principal, vendorId: string): Promise<VendorKeyView[]> {
    requireVendor(actor, vendorId, 'keys');
    await this.get(actor, vendorId);
    const rows = await this.deps.db.kysely
      .selectFrom('api_tokens')
      .select(['id', 'name', 'created_at', 'last_used_at', 'revoked_at'])
      .where('vendor_id', '=', vendorId)
      .orderBy('created_at', 'desc')
      .orderBy('id')
      .execute();
    const iso = (t: number | null) => (t === null ? null : new Date(Number(t)).toISOString());
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      created_at: new Date(Number(r.created_at)).toISOString(),
      last_used_at: iso(r.last_used_at),
      revoked_at: iso(r.revoked_at),
    }));
  }

  /** Operators see every vendor; a vendor key its own; a person the vendors they belong to. */
  async list(actor: Principal): Promise<VendorView[]> {
    let q = this.deps.db.kysely.selectFrom('vendors').selectAll().orderBy('created_at').orderBy('id');
    if (!isOperator(actor)) {
      const ids = actor.kind === 'vendor_key' ? [actor.vendorId] : memberVendorIds(actor);
      if (ids.length === 0) return [];
      q = q.where('id', 'in', ids);
    }
    return (await q.execute()).map(view);
  }
}

/** A vendor key as its vendor's admins (and operators) see it: never its value. */
export interface VendorKeyView {
  id: string;
  name: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

function view(r: { id: string; name: string; created_at: number }): VendorView {
  return { id: r.id, name: r.name, created_at: new Date(r.created_at).toISOString() };
}
