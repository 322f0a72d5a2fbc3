import { snKey } from '@bindery/protocol';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { DepartmentTree } from '../organisations/permissions.js';
import { IN_FLIGHT, type TargetSpec } from './campaigns.model.js';

type Db = Deps['db']['kysely'];

export interface TargetDevice {
  id: number;
  sn: string;
  sn_key: string;
  firmware_version: string | null;
}

/**
 * The devices a campaign's target names: the model's devices narrowed by version, online state,
 * owner organisation, department (with its sub-departments, as an organisation's device list
 * filters: a device is in a department when its visibility range names the department or a user
 * of it) and an SN list; without those already on `version` or busy in another live campaign.
 * `within` (sn_keys) narrows it further to a device admin's range.
 */
export async function resolveTarget(
  db: Db,
  modelId: string,
  version: string,
  target: TargetSpec,
  within?: ReadonlyMap<string, unknown> | ReadonlySet<string>,
): Promise<TargetDevice[]> {
  let q = db
    .selectFrom('devices')
    .select(['id', 'sn', 'sn_key', 'firmware_version'])
    .where('model_id', '=', modelId)
    .orderBy('id');
  if (target.online_only) q = q.where('online', '=', 1);
  if (target.org_id) q = q.where('owner_type', '=', 'org').where('owner_id', '=', target.org_id);
  if (target.department_id) {
    const orgId = target.org_id;
    if (!orgId) fail('VALIDATION_FAILED', 'target.department_id needs target.org_id');
    const rows = await db.selectFrom('departments').select(['id', 'parent_id']).where('org_id', '=', orgId).execute();
    if (!rows.some((r) => r.id === target.department_id)) fail('DEPARTMENT_NOT_FOUND');
    const sub = [...new DepartmentTree(rows).closure([target.department_id])];
    q = q.where((eb) =>
      eb.exists(
        eb
          .selectFrom('device_visibility as v')
          .leftJoin('org_members as m', (j) => j.onRef('m.user_id', '=', 'v.user_id').on('m.org_id', '=', orgId))
          .select('v.id')
          .whereRef('v.device_id', '=', 'devices.id')
          .where((w) => w(w.fn.coalesce('v.department_id', 'm.department_id'), 'in', sub)),
      ),
    );
  }
  if (target.from_versions?.length) {
    const named = target.from_versions.filter((v): v is string => typeof v === 'string');
    const none = target.from_versions.includes(null);
    q = q.where((eb) =>
      eb.or([
        ...(named.length ? [eb('firmware_version', 'in', named)] : []),
        ...(none ? [eb('firmware_version', 'is', null)] : []),
      ]),
    );
  }
  let rows = await q.execute();
  if (target.sns) {
    const wanted = new Set(target.sns.map((s) => snKey(String(s))));
    rows = rows.filter((r) => wanted.has(r.sn_key));
  }
  if (within) rows = rows.filter((r) => within.has(r.sn_key));
  // Devices already on the image, or still in another live campaign, are not part of the rollout.
  const busy = await db
    .selectFrom('campaign_executions as e')
    .innerJoin('campaigns as c', 'c.id', 'e.campaign_id')
    .select('e.sn_key')
    .where('c.model_id', '=', modelId)
    .where('c.status', 'in', ['running', 'paused'])
    .where('e.state', 'in', ['queued', ...IN_FLIGHT])
    .execute();
  const taken = new Set(busy.map((b) => b.sn_key));
  return rows.filter((r) => r.firmware_version !== version && !taken.has(r.sn_key));
}
