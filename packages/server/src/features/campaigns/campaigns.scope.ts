import { snKey } from '@bindery/protocol';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { type Principal, requireVendor } from '../../shared/principal.js';
import type { DeviceManagementService } from '../binding/manage.service.js';
import { OrgStanding } from '../organisations/standing.js';

export type OrgDeviceLister = Pick<DeviceManagementService, 'modelsInRange'>;

export interface TargetOrg {
  id: string;
  name: string;
  /** Its devices of the vendor's models (of the one model when asked). */
  devices: number;
}

export interface TargetDepartment {
  id: string;
  parent_id: string | null;
  name: string;
}

/**
 * The devices of an organisation the actor's range holds, as the organisation's device list shows
 * them (the list's own rule, so a campaign never reaches further than that page does): sn_key →
 * model.
 */
export async function devicesInRange(
  lister: OrgDeviceLister,
  actor: Principal,
  orgId: string,
  modelId?: string,
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const [sn, model] of await lister.modelsInRange(actor, orgId, modelId)) out.set(snKey(sn), model);
  return out;
}

/**
 * What a vendor's campaign form offers as owner targets: the organisations that own devices of the
 * vendor's models, and one such organisation's departments. An organisation owning none of them
 * does not exist for the vendor (the same answer as an unknown one).
 */
export class CampaignTargets {
  private readonly standing: OrgStanding;

  constructor(private readonly deps: Pick<Deps, 'db' | 'clock'>) {
    this.standing = new OrgStanding(deps);
  }

  private get db() {
    return this.deps.db.kysely;
  }

  async orgs(actor: Principal, vendorId: string, modelId?: string): Promise<TargetOrg[]> {
    requireVendor(actor, vendorId, 'firmware');
    let q = this.db
      .selectFrom('devices as d')
      .innerJoin('models as m', 'm.model_id', 'd.model_id')
      .innerJoin('organisations as o', 'o.id', 'd.owner_id')
      .select((eb) => ['o.id', 'o.name', eb.fn.countAll<string | number>().as('devices')])
      .where('m.vendor_id', '=', vendorId)
      .where('d.owner_type', '=', 'org');
    if (modelId) q = q.where('d.model_id', '=', modelId);
    const rows = await q.groupBy(['o.id', 'o.name']).orderBy('o.name').orderBy('o.id').limit(1_000).execute();
    return rows.map((r) => ({ id: r.id, name: r.name, devices: Number(r.devices) }));
  }

  async departments(actor: Principal, vendorId: string, orgId: string): Promise<TargetDepartment[]> {
    requireVendor(actor, vendorId, 'firmware');
    const owns = await this.db
      .selectFrom('devices as d')
      .innerJoin('models as m', 'm.model_id', 'd.model_id')
      .select('d.id')
      .where('m.vendor_id', '=', vendorId)
      .where('d.owner_type', '=', 'org')
      .where('d.owner_id', '=', orgId)
      .limit(1)
      .executeTakeFirst();
    if (!owns) fail('ORG_NOT_FOUND');
    // Sub-merchant organisations get their root department on first read.
    await this.standing.tree(orgId);
    return this.db
      .selectFrom('departments')
      .select(['id', 'parent_id', 'name'])
      .where('org_id', '=', orgId)
      .orderBy('name')
      .orderBy('id')
      .execute();
  }
}
