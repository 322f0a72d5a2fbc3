import { SYSTEM_CLI, type VendorCapability, type VendorRole } from '../../src/shared/principal.js';
import { PASSWORD, USERS, VENDOR_PEOPLE, type VendorPerson, type Who } from './authz-matrix.fixture.js';
import type { Ctx, Req, Row } from './authz-matrix.rows.js';

/**
 * The matrix, continued (issue 13 item 1): vendor people by role. Vendor A has an admin, an engineer
 * and a production worker; vendor B an admin (the fixture). Every row that allows vendor A's key
 * gets its vendor people from VENDOR_ROUTE_CAPS (the capability the route needs, as
 * shared/principal.ts grants it by role); a route missing there is a vendor admin's only, which is
 * what requireVendor does without a capability. vendor B's admin passes where vendor B's key does.
 * Rows any signed-in person passes let them pass too. The other rows' req/effect/hidden see a
 * stand-in principal of the same standing (vendorA, vendorB or outsider), so they need no change.
 */
const json = (url: string, payload: unknown): Req => ({ url, payload });
const get = (url: string): Req => ({ url });

const ROLE_OF: Record<VendorPerson, VendorRole> = {
  vAdminA: 'vendor_admin',
  vEngineerA: 'engineer',
  vProductionA: 'production',
  vAdminB: 'vendor_admin',
};
const CAPS: Record<VendorRole, ReadonlySet<VendorCapability | 'none'>> = {
  vendor_admin: new Set([
    'read',
    'devices',
    'devices.write',
    'models',
    'firmware',
    'integrations',
    'batches',
    'relations',
    'pairing',
    'keys',
    'people',
  ]),
  engineer: new Set(['read', 'devices', 'models', 'firmware', 'integrations']),
  production: new Set(['read', 'devices', 'batches', 'relations', 'pairing']),
};

/** What each vendor route needs. 'none': machines only (vendor keys), no person of the vendor. */
export const VENDOR_ROUTE_CAPS: Record<string, VendorCapability | 'none'> = {
  'GET /api/v1/vendors/{vendorId}': 'read',
  'POST /api/v1/vendors/{vendorId}/keys': 'keys',
  'GET /api/v1/vendors/{vendorId}/keys': 'keys',
  'DELETE /api/v1/tokens/{id}': 'keys',
  'POST /api/v1/vendors/{vendorId}/models': 'models',
  'GET /api/v1/vendors/{vendorId}/models': 'read',
  'GET /api/v1/models/{modelId}': 'read',
  'PATCH /api/v1/models/{modelId}': 'models',
  'PUT /api/v1/models/{modelId}/archived': 'models',
  'POST /api/v1/models/{modelId}/secret': 'models',
  'GET /api/v1/models/{modelId}/seed-secret-no': 'models',
  'GET /api/v1/models/{modelId}/ticket': 'models',
  'GET /api/v1/models/{modelId}/bind-settings': 'read',
  'PUT /api/v1/models/{modelId}/bind-settings': 'models',
  'POST /api/v1/models/{modelId}/devices': 'devices.write',
  'POST /api/v1/models/{modelId}/devices/bulk': 'devices.write',
  'DELETE /api/v1/devices/{sn}': 'devices.write',
  'POST /api/v1/devices/{sn}/commands': 'devices.write',
  'POST /api/v1/devices/{sn}/login-codes': 'devices.write',
  'GET /api/v1/vendors/{vendorId}/devices': 'devices',
  'GET /api/v1/devices/{sn}': 'devices',
  'GET /api/v1/devices/{sn}/commands': 'devices',
  'GET /api/v1/devices/{sn}/logs': 'devices',
  'GET /api/v1/devices/{sn}/logs/{id}': 'devices',
  'GET /api/v1/devices/{sn}/error-reports': 'devices',
  'GET /api/v1/vendors/{vendorId}/devices/qr-sheet': 'batches',
  'GET /api/v1/devices/{sn}/secret-no': 'batches',
  'GET /api/v1/devices/{sn}/verif-code': 'batches',
  'POST /api/v1/models/{modelId}/batches': 'batches',
  'GET /api/v1/models/{modelId}/batches': 'batches',
  'GET /api/v1/vendors/{vendorId}/batches': 'batches',
  'GET /api/v1/batches/{batchId}': 'batches',
  'GET /api/v1/batches/{batchId}/download': 'batches',
  'GET /api/v1/batches/{batchId}/secrets.csv': 'batches',
  'GET /api/v1/batches/{batchId}/labels-a4.pdf': 'batches',
  'GET /api/v1/batches/{batchId}/labels-roll.pdf': 'batches',
  'GET /api/v1/batches/{batchId}/preview.svg': 'batches',
  'POST /api/v1/vendors/{vendorId}/relations/import': 'relations',
  'GET /api/v1/vendors/{vendorId}/relations/export.csv': 'relations',
  'GET /api/v1/vendors/{vendorId}/relations/imports': 'relations',
  'POST /api/v1/vendors/{vendorId}/pairing/pairs': 'pairing',
  'GET /api/v1/vendors/{vendorId}/pairing/shifts/{shiftId}': 'pairing',
  'GET /api/v1/vendors/{vendorId}/pairing/shifts/{shiftId}/relations.csv': 'pairing',
  'POST /api/v1/models/{modelId}/firmware': 'firmware',
  'GET /api/v1/models/{modelId}/firmware': 'firmware',
  'GET /api/v1/models/{modelId}/firmware/fleet': 'firmware',
  'POST /api/v1/models/{modelId}/firmware/upload': 'firmware',
  'POST /api/v1/models/{modelId}/firmware/{id}/current': 'firmware',
  'POST /api/v1/vendors/{vendorId}/campaigns': 'firmware',
  'GET /api/v1/vendors/{vendorId}/campaigns': 'read',
  'GET /api/v1/vendors/{vendorId}/campaign-orgs': 'firmware',
  'GET /api/v1/vendors/{vendorId}/campaign-orgs/{orgId}/departments': 'firmware',
  'GET /api/v1/vendors/{vendorId}/fleet-stats': 'read',
  'GET /api/v1/campaigns/{campaignId}': 'read',
  'GET /api/v1/campaigns/{campaignId}/samples': 'read',
  'GET /api/v1/campaigns/{campaignId}/executions': 'read',
  'POST /api/v1/campaigns/{campaignId}/pause': 'firmware',
  'POST /api/v1/campaigns/{campaignId}/resume': 'firmware',
  'POST /api/v1/campaigns/{campaignId}/retry': 'firmware',
  'POST /api/v1/campaigns/{campaignId}/cancel': 'firmware',
  'GET /api/v1/devices/{sn}/campaigns': 'devices',
  'GET /api/v1/models/{modelId}/callback': 'integrations',
  'PUT /api/v1/models/{modelId}/callback': 'integrations',
  'DELETE /api/v1/models/{modelId}/callback': 'integrations',
  'GET /api/v1/vendors/{vendorId}/callback': 'integrations',
  'PUT /api/v1/vendors/{vendorId}/callback': 'integrations',
  'DELETE /api/v1/vendors/{vendorId}/callback': 'integrations',
  'POST /api/v1/vendors/{vendorId}/webhooks': 'integrations',
  'GET /api/v1/vendors/{vendorId}/webhooks': 'integrations',
  'GET /api/v1/vendors/{vendorId}/deliveries': 'integrations',
  'DELETE /api/v1/webhooks/{id}': 'integrations',
  'GET /api/v1/deliveries/{id}': 'integrations',
  'POST /api/v1/deliveries/{id}/redeliver': 'integrations',
  'POST /api/v1/webhooks/{id}/test': 'integrations',
  'POST /api/v1/models/{modelId}/callback/test': 'integrations',
  'POST /api/v1/vendors/{vendorId}/callback/test': 'integrations',
  // Inspection records come from the factory's systems: vendor keys import them, people only read.
  'POST /api/v1/inspections': 'none',
  'POST /api/v1/inspections/import': 'none',
  'GET /api/v1/inspections/{sn}': 'devices',
};

/** Whether `who` (a vendor person) passes the row, and the principal of the same standing. */
function standing(row: Row, who: VendorPerson): { allowed: boolean; proxy: Who } {
  const allow = row.allow as readonly Who[];
  if (allow.includes('outsider')) {
    // Every person passes; the stand-in is their vendor's key where it passes too (a filtered list shows them their vendor).
    const key: Who = who === 'vAdminB' ? 'vendorB' : 'vendorA';
    return { allowed: true, proxy: allow.includes(key) ? key : 'outsider' };
  }
  if (who === 'vAdminB')
    return allow.includes('vendorB') ? { allowed: true, proxy: 'vendorB' } : { allowed: false, proxy: 'outsider' };
  if (!allow.includes('vendorA')) return { allowed: false, proxy: 'outsider' };
  const cap = VENDOR_ROUTE_CAPS[row.op];
  const allowed = cap === undefined ? ROLE_OF[who] === 'vendor_admin' : cap !== 'none' && CAPS[ROLE_OF[who]].has(cap);
  return { allowed, proxy: allowed ? 'vendorA' : 'outsider' };
}

const isVendorPerson = (who: Who): who is VendorPerson => (VENDOR_PEOPLE as readonly Who[]).includes(who);

/** Adds the vendor people to every row but this file's own (lists built from WHO get theirs recomputed). */
export function withVendorRoles(table: Row[]): Row[] {
  return table.map((row) => {
    if (!Array.isArray(row.allow) || VENDOR_ROLE_ROWS.includes(row)) return row;
    const allow = (row.allow as readonly Who[]).filter((w) => !isVendorPerson(w));
    const proxyOf = (who: Who): Who => (isVendorPerson(who) ? standing(row, who).proxy : who);
    const ctx = (c: Ctx): Ctx => ({ ...c, who: proxyOf(c.who) });
    return {
      ...row,
      allow: [...allow, ...VENDOR_PEOPLE.filter((v) => standing(row, v).allowed)],
      req: (c) => row.req(ctx(c)),
      ...(row.effect ? { effect: (c: Ctx) => row.effect!(ctx(c)) } : {}),
      ...(row.after ? { after: (c: Ctx) => row.after!(ctx(c)) } : {}),
      ...(row.refuse ? { refuse: (who: Who) => row.refuse!(proxyOf(who)) } : {}),
      ...(row.hidden ? { hidden: (w, who) => row.hidden!(w, proxyOf(who)) } : {}),
      ...(row.either ? { either: [...row.either, ...VENDOR_PEOPLE.filter((v) => row.either!.includes(proxyOf(v)))] } : {}),
    } satisfies Row;
  });
}

/** Who manages vendor A's people: operators and its admin (vendor keys are machines, not admins of people). */
const PEOPLE_A: readonly Who[] = ['operator', 'vAdminA'];

/** A new member of vendor A with `role`, joined by invitation; returns their user id. */
async function newMember(c: Ctx, role: VendorRole): Promise<string> {
  const s = c.w.h.services;
  const u = await s.accounts.createUser(SYSTEM_CLI, { username: `vm${c.w.next().toLowerCase()}`, password: PASSWORD });
  const { token } = await s.vendorPeople.createInvite(SYSTEM_CLI, c.w.vendorA, { role });
  await s.vendorPeople.acceptInvite(token, { kind: 'user', userId: u.id, isOperator: false });
  return u.id;
}

const memberRole = async (c: Ctx) =>
  (
    await c.w.h.deps.db.kysely
      .selectFrom('vendor_members')
      .select('role')
      .where('vendor_id', '=', c.w.vendorA)
      .where('user_id', '=', c.state.user!)
      .executeTakeFirst()
  )?.role ?? null;

export const VENDOR_ROLE_ROWS: Row[] = [
  {
    op: 'GET /api/v1/vendors/{vendorId}/members',
    allow: PEOPLE_A,
    req: ({ w }) => get(`/api/v1/vendors/${w.vendorA}/members`),
  },
  {
    op: 'PATCH /api/v1/vendors/{vendorId}/members/{userId}',
    allow: PEOPLE_A,
    req: async (c) => {
      c.state.user = await newMember(c, 'production');
      return json(`/api/v1/vendors/${c.w.vendorA}/members/${c.state.user}`, { role: 'engineer' });
    },
    effect: async (c) => {
      const role = await memberRole(c);
      const want = PEOPLE_A.includes(c.who) ? 'engineer' : 'production';
      return role === want ? null : `role is ${role}, expected ${want}`;
    },
  },
  {
    op: 'DELETE /api/v1/vendors/{vendorId}/members/{userId}',
    allow: PEOPLE_A,
    req: async (c) => {
      c.state.user = await newMember(c, 'engineer');
      return { url: `/api/v1/vendors/${c.w.vendorA}/members/${c.state.user}` };
    },
    effect: async (c) => {
      const role = await memberRole(c);
      if (PEOPLE_A.includes(c.who)) return role === null ? null : 'allowed, but still a member';
      return role === 'engineer' ? null : 'refused, but the member changed';
    },
  },
  {
    op: 'POST /api/v1/vendors/{vendorId}/invites',
    allow: PEOPLE_A,
    req: ({ w }) => json(`/api/v1/vendors/${w.vendorA}/invites`, { role: 'production' }),
  },
  {
    op: 'GET /api/v1/vendors/{vendorId}/invites',
    allow: PEOPLE_A,
    req: ({ w }) => get(`/api/v1/vendors/${w.vendorA}/invites`),
  },
  {
    op: 'DELETE /api/v1/vendors/{vendorId}/invites/{id}',
    allow: PEOPLE_A,
    req: async (c) => {
      const r = await c.w.h.services.vendorPeople.createInvite(SYSTEM_CLI, c.w.vendorA, { role: 'engineer' });
      c.state.invite = r.invite.id;
      return { url: `/api/v1/vendors/${c.w.vendorA}/invites/${r.invite.id}` };
    },
    effect: async (c) => {
      const row = await c.w.h.deps.db.kysely
        .selectFrom('vendor_invites')
        .select('revoked_at')
        .where('id', '=', c.state.invite!)
        .executeTakeFirstOrThrow();
      const revoked = row.revoked_at !== null;
      return revoked === PEOPLE_A.includes(c.who) ? null : `revoked: ${revoked}`;
    },
  },
  {
    op: 'POST /api/v1/vendor-invites/preview',
    allow: 'public',
    req: async (c) => {
      const r = await c.w.h.services.vendorPeople.createInvite(SYSTEM_CLI, c.w.vendorB, { role: 'engineer' });
      return json('/api/v1/vendor-invites/preview', { token: r.token });
    },
  },
  {
    // Into a throwaway vendor, so no principal of the world changes. Anonymous signs up; people
    // accept as themselves; a vendor key is nobody who could join.
    op: 'POST /api/v1/vendor-invites/accept',
    allow: ['anonymous', ...USERS, ...VENDOR_PEOPLE],
    refuse: () => [401, 403, 404],
    req: async (c) => {
      const s = c.w.h.services;
      const v = await s.vendors.create(SYSTEM_CLI, { name: `T ${c.w.next()}` });
      const r = await s.vendorPeople.createInvite(SYSTEM_CLI, v.id, { role: 'production' });
      return c.who === 'anonymous'
        ? json('/api/v1/vendor-invites/accept', { token: r.token, username: `s${c.w.next().toLowerCase()}`, password: PASSWORD })
        : json('/api/v1/vendor-invites/accept', { token: r.token });
    },
  },
];
