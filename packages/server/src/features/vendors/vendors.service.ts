import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { audit } from '../../shared/audit.js';
import { newId } from '../../shared/ids.js';
import { isOperator, type Principal, requireOperator, requireVendor } from '../../shared/principal.js';

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
    requireVendor(actor, id);
    const row = await this.deps.db.kysely.selectFrom('vendors').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) fail('VENDOR_NOT_FOUND');
    return view(row);
  }

  /** Operators see every vendor; a vendor key sees its own. */
  async list(actor: Principal): Promise<VendorView[]> {
    let q = this.deps.db.kysely.selectFrom('vendors').selectAll().orderBy('created_at').orderBy('id');
    if (!isOperator(actor)) {
      if (actor.kind !== 'vendor_key') return [];
      q = q.where('id', '=', actor.vendorId);
    }
    return (await q.execute()).map(view);
  }
}

function view(r: { id: string; name: string; created_at: number }): VendorView {
  return { id: r.id, name: r.name, created_at: new Date(r.created_at).toISOString() };
}
