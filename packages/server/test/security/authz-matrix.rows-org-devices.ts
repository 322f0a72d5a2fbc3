import type { Who } from './authz-matrix.fixture.js';
import type { Ctx, Req, Row } from './authz-matrix.rows.js';

/** The matrix, continued (issue 12): an organisation's device csv and bulk actions, the audit log. */
const OP: readonly Who[] = ['operator'];
const ORG1_ALL: readonly Who[] = ['operator', 'superAdmin', 'deviceAdmin', 'member1', 'member2'];
/** Those who manage a device inside the device admin's scope. */
const ORG1_ADMINS: readonly Who[] = ['operator', 'superAdmin', 'deviceAdmin'];
const SUPER: readonly Who[] = ['operator', 'superAdmin'];
const get = (url: string): Req => ({ url });

/** After a bulk action: the device changed exactly when the principal was allowed to change it. */
const bulkEffect =
  (allowed: readonly Who[], changed: (c: Ctx) => Promise<boolean>) =>
  async (c: Ctx): Promise<string | null> => {
    const did = await changed(c);
    if (allowed.includes(c.who) && !did) return 'allowed, but the device did not change';
    if (!allowed.includes(c.who) && did) return 'refused, but the device changed';
    return null;
  };

export const ORG_DEVICES_ROWS: Row[] = [
  {
    op: 'GET /api/v1/orgs/{orgId}/devices.csv',
    allow: ORG1_ALL,
    req: ({ w }) => get(`/api/v1/orgs/${w.org1}/devices.csv`),
    // As the list: members see only what they bound; the device admin only their scope.
    hidden: (w, who) =>
      who === 'member1' || who === 'member2' ? [w.sn.orgIn, w.sn.orgOut] : who === 'deviceAdmin' ? [w.sn.orgOut] : [],
  },
  {
    op: 'POST /api/v1/orgs/{orgId}/devices/bulk-unbind',
    allow: ORG1_ADMINS,
    req: async (c) => {
      c.state.sn = await c.w.boundDevice('in');
      return { url: `/api/v1/orgs/${c.w.org1}/devices/bulk-unbind`, payload: { sns: [c.state.sn] } };
    },
    effect: bulkEffect(ORG1_ADMINS, async ({ w, state }) => {
      const d = await w.h.deps.db.kysely.selectFrom('devices').select('owner_id').where('sn', '=', state.sn!).executeTakeFirst();
      return d?.owner_id === null;
    }),
  },
  {
    op: 'POST /api/v1/orgs/{orgId}/devices/bulk-move',
    allow: ORG1_ADMINS,
    req: async (c) => {
      c.state.sn = await c.w.boundDevice('in');
      // Visible to a user instead of the scoped department, so a move to the department is a change.
      await c.w.h.deps.db.kysely
        .updateTable('device_visibility')
        .set({ department_id: null, user_id: c.w.userIds.member1 })
        .where('device_id', '=', c.w.h.deps.db.kysely.selectFrom('devices').select('id').where('sn', '=', c.state.sn))
        .execute();
      return {
        url: `/api/v1/orgs/${c.w.org1}/devices/bulk-move`,
        payload: { sns: [c.state.sn], department_id: c.w.dept.scoped },
      };
    },
    effect: bulkEffect(ORG1_ADMINS, async ({ w, state }) => {
      const rows = await w.h.deps.db.kysely
        .selectFrom('device_visibility as v')
        .innerJoin('devices as d', 'd.id', 'v.device_id')
        .select('v.department_id')
        .where('d.sn', '=', state.sn!)
        .execute();
      return rows.length === 1 && rows[0]!.department_id === w.dept.scoped;
    }),
  },
  { op: 'GET /api/v1/orgs/{orgId}/audit', allow: SUPER, req: ({ w }) => get(`/api/v1/orgs/${w.org1}/audit`) },
  { op: 'GET /api/v1/orgs/{orgId}/audit.csv', allow: SUPER, req: ({ w }) => get(`/api/v1/orgs/${w.org1}/audit.csv`) },
  { op: 'GET /api/v1/audit', allow: OP, req: () => get('/api/v1/audit') },
  { op: 'GET /api/v1/audit.csv', allow: OP, req: () => get('/api/v1/audit.csv') },
];
