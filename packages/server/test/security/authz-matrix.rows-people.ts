import { SYSTEM_CLI } from '../../src/shared/principal.js';
import { EVERYONE_SIGNED_IN, PASSWORD, USERS, type Who } from './authz-matrix.fixture.js';
import type { Ctx, Req, Row } from './authz-matrix.rows.js';

/** The matrix, continued: people, organisations, notifications, callbacks, inspections, pages. */
const OP: readonly Who[] = ['operator'];
const VA: readonly Who[] = ['operator', 'vendorA'];
const ORG1_ALL: readonly Who[] = ['operator', 'superAdmin', 'deviceAdmin', 'member1', 'member2'];
const ORG1_ADMINS: readonly Who[] = ['operator', 'superAdmin', 'deviceAdmin'];
const SUPER: readonly Who[] = ['operator', 'superAdmin'];
const json = (url: string, payload: unknown): Req => ({ url, payload });
const get = (url: string): Req => ({ url });
const page = (op: string, url: string, extra: Partial<Row> = {}): Row => ({ op, allow: 'public', req: () => get(url), ...extra });
const consolePage = (path: string, url: string): Row => page(`GET ${path}`, url, { alsoOk: [503] });
const superAdmin = (c: Ctx) => c.w.asUser('superAdmin');
const newUser = async (c: Ctx) =>
  (await c.w.h.services.accounts.createUser(SYSTEM_CLI, { username: `u${c.w.next().toLowerCase()}`, password: PASSWORD })).id;
/**
 * Scan pages are for people (signed in or about to sign in). A vendor key gets the console's static
 * shell once it is built, or the page's own 403 before: either is right, the API decides the rest.
 */
const PAGE_VISITORS: Partial<Row> = { allow: ['anonymous', ...USERS], either: ['vendorA', 'vendorB'] };
/**
 * A bulk import answers for every record: another vendor's SN reads "not registered to you" in the
 * all-or-nothing report (422), which reveals nothing. Someone who is no vendor at all is refused
 * outright.
 * finding: people (no vendor) got the per-record 422 report instead of 403.
 */
const inspectionRefusal = (who: Who): readonly number[] => (who === 'vendorB' ? [403, 404, 422] : [403, 404]);

export const PEOPLE_ROWS: Row[] = [
  // ── sessions and the signed-in person ──────────────────────────────────
  {
    op: 'POST /api/v1/session',
    allow: 'public',
    req: ({ w }) => json('/api/v1/session', { username: w.usernames.outsider, password: PASSWORD }),
  },
  { op: 'GET /api/v1/session', allow: USERS, req: () => get('/api/v1/session') },
  // Logging out without a session is harmless.
  page('DELETE /api/v1/session', '/api/v1/session'),
  { op: 'GET /api/v1/me', allow: USERS, req: () => get('/api/v1/me') },
  { op: 'PATCH /api/v1/me', allow: USERS, req: ({ who }) => json('/api/v1/me', { display_name: who }) },
  {
    op: 'POST /api/v1/me/password',
    allow: USERS,
    last: true,
    req: ({ who }) => {
      const pw = who === 'operator' ? 'correct horse battery' : PASSWORD;
      return json('/api/v1/me/password', { current_password: pw, new_password: pw, keep_tokens: true });
    },
  },
  { op: 'GET /api/v1/me/tokens', allow: USERS, req: () => get('/api/v1/me/tokens') },
  { op: 'GET /api/v1/tokens', allow: USERS, req: () => get('/api/v1/tokens') },
  { op: 'POST /api/v1/me/tokens', allow: USERS, req: () => json('/api/v1/me/tokens', { name: 'n' }) },
  {
    // Member 1's own token: only member 1 revokes it here (operators use DELETE /api/v1/tokens/{id}).
    op: 'DELETE /api/v1/me/tokens/{id}',
    allow: ['operator', 'member1'],
    req: async ({ w }) => get(`/api/v1/me/tokens/${(await w.h.services.people.createToken(w.asUser('member1'), 'doomed')).id}`),
  },
  {
    op: 'POST /api/v1/users',
    allow: OP,
    req: ({ w }) => json('/api/v1/users', { username: `u${w.next().toLowerCase()}`, password: PASSWORD }),
  },

  // ── invitations ──────────────────────────────────────────────────────────
  {
    op: 'POST /api/v1/orgs/{orgId}/invites',
    allow: ORG1_ADMINS,
    req: ({ w }) => json(`/api/v1/orgs/${w.org1}/invites`, { role: 'member', department_id: w.dept.scoped }),
  },
  { op: 'GET /api/v1/orgs/{orgId}/invites', allow: ORG1_ADMINS, req: ({ w }) => get(`/api/v1/orgs/${w.org1}/invites`) },
  {
    // An invitation into "Other", outside the device admin's scope.
    // finding: device admins could revoke invitations outside their scope.
    op: 'DELETE /api/v1/orgs/{orgId}/invites/{id}',
    allow: SUPER,
    finding: 'device admins revoked invitations outside their scope',
    req: async (c) => {
      const r = await c.w.h.services.people.createInvite(superAdmin(c), c.w.org1, {
        role: 'member',
        departmentId: c.w.dept.other,
      });
      return get(`/api/v1/orgs/${c.w.org1}/invites/${r.invite.id}`);
    },
  },
  {
    op: 'POST /api/v1/invites/preview',
    allow: 'public',
    req: async (c) => {
      const r = await c.w.h.services.people.createInvite(superAdmin(c), c.w.org1, {
        role: 'member',
        departmentId: c.w.dept.other,
      });
      return json('/api/v1/invites/preview', { token: r.token });
    },
  },
  {
    // Into a throwaway organisation, so no principal of the world changes. Anonymous signs up;
    // people accept as themselves; a vendor key is nobody who could join.
    op: 'POST /api/v1/invites/accept',
    allow: ['anonymous', ...USERS],
    // A vendor key is not a signed-in person: "sign in (or sign up)".
    refuse: () => [401, 403, 404],
    req: async (c) => {
      const s = c.w.h.services;
      const admin = await newUser(c);
      const { organisation } = await s.organisations.create(SYSTEM_CLI, {
        name: `T ${c.w.next()}`,
        superAdmin: { userId: admin },
      });
      const r = await s.people.createInvite(SYSTEM_CLI, organisation.id, { role: 'member' });
      return c.who === 'anonymous'
        ? json('/api/v1/invites/accept', { token: r.token, username: `s${c.w.next().toLowerCase()}`, password: PASSWORD })
        : json('/api/v1/invites/accept', { token: r.token });
    },
  },

  // ── organisations ────────────────────────────────────────────────────────
  {
    op: 'POST /api/v1/orgs',
    allow: OP,
    req: ({ w }) =>
      json('/api/v1/orgs', {
        name: `O ${w.next()}`,
        super_admin: { username: `a${w.next().toLowerCase()}`, password: PASSWORD },
      }),
  },
  {
    // A filtered list: each sees the organisations they belong to (operators all, vendors none).
    op: 'GET /api/v1/orgs',
    allow: EVERYONE_SIGNED_IN,
    req: () => get('/api/v1/orgs'),
    hidden: (w, who) =>
      who === 'operator'
        ? []
        : who === 'otherOrgAdmin'
          ? [w.org1]
          : who === 'outsider' || who === 'vendorA' || who === 'vendorB'
            ? [w.org1, w.org2]
            : [w.org2],
  },
  { op: 'GET /api/v1/orgs/{orgId}', allow: ORG1_ALL, req: ({ w }) => get(`/api/v1/orgs/${w.org1}`) },
  {
    op: 'PATCH /api/v1/orgs/{orgId}/settings',
    allow: SUPER,
    req: ({ w }) => json(`/api/v1/orgs/${w.org1}/settings`, { member_binding: false }),
  },
  { op: 'GET /api/v1/orgs/{orgId}/departments', allow: ORG1_ALL, req: ({ w }) => get(`/api/v1/orgs/${w.org1}/departments`) },
  {
    op: 'POST /api/v1/orgs/{orgId}/departments',
    allow: SUPER,
    req: ({ w }) => json(`/api/v1/orgs/${w.org1}/departments`, { name: `D ${w.next()}` }),
  },
  {
    op: 'PATCH /api/v1/orgs/{orgId}/departments/{deptId}',
    allow: SUPER,
    req: ({ w }) => json(`/api/v1/orgs/${w.org1}/departments/${w.dept.spare}`, { name: 'Spare' }),
  },
  {
    op: 'DELETE /api/v1/orgs/{orgId}/departments/{deptId}',
    allow: SUPER,
    req: async (c) => {
      const d = await c.w.h.services.organisations.createDepartment(superAdmin(c), c.w.org1, { name: `Gone ${c.w.next()}` });
      return get(`/api/v1/orgs/${c.w.org1}/departments/${d.id}`);
    },
  },
  {
    op: 'GET /api/v1/orgs/{orgId}/members',
    allow: ORG1_ALL,
    req: ({ w }) => get(`/api/v1/orgs/${w.org1}/members`),
    // A member sees only the people inside their visibility range (their department's subtree).
    hidden: (w, who) => (who === 'member2' ? [w.userIds.member1] : who === 'member1' ? [w.userIds.member2] : []),
  },
  {
    // Admins invite an existing user (device admins into their scope); nobody is seated without
    // accepting, whoever asks.
    // finding: org admins (device admins too) could add any user of the installation to their organisation.
    op: 'POST /api/v1/orgs/{orgId}/members',
    allow: ORG1_ADMINS,
    finding: 'org admins added arbitrary users to their organisation',
    req: async (c) => {
      c.state.userId = await newUser(c);
      return json(`/api/v1/orgs/${c.w.org1}/members`, {
        user_id: c.state.userId,
        role: 'member',
        department_id: c.w.dept.scoped,
      });
    },
    effect: async ({ w, state }) => {
      const row = await w.h.deps.db.kysely
        .selectFrom('org_members')
        .select('user_id')
        .where('org_id', '=', w.org1)
        .where('user_id', '=', state.userId!)
        .executeTakeFirst();
      return row ? 'seated a user in the organisation without their consent' : null;
    },
  },
  {
    op: 'PATCH /api/v1/orgs/{orgId}/members/{userId}',
    allow: SUPER,
    req: ({ w }) => json(`/api/v1/orgs/${w.org1}/members/${w.userIds.member2}`, { role: 'member', department_id: w.dept.other }),
  },
  {
    op: 'DELETE /api/v1/orgs/{orgId}/members/{userId}',
    allow: SUPER,
    req: async (c) => {
      const userId = await newUser(c);
      await c.w.h.services.organisations.addMember(SYSTEM_CLI, c.w.org1, {
        userId,
        role: 'member',
        departmentId: c.w.dept.scoped,
      });
      return get(`/api/v1/orgs/${c.w.org1}/members/${userId}`);
    },
  },
  { op: 'GET /api/v1/orgs/{orgId}/applications', allow: ORG1_ALL, req: ({ w }) => get(`/api/v1/orgs/${w.org1}/applications`) },
  // Third-party entry (issue 15): the application's return origins; members read them, super admins set them.
  {
    op: 'GET /api/v1/orgs/{orgId}/applications/{appId}/origins',
    allow: ORG1_ALL,
    req: ({ w }) => get(`/api/v1/orgs/${w.org1}/applications/${w.appId}/origins`),
  },
  {
    op: 'PUT /api/v1/orgs/{orgId}/applications/{appId}/origins',
    allow: SUPER,
    req: ({ w }) => json(`/api/v1/orgs/${w.org1}/applications/${w.appId}/origins`, { origins: ['https://matrix.example'] }),
  },
  {
    // Only organisation 1's people may be sent back to its application's origin (registered by the row above);
    // operators belong to no organisation here, so they are not sent anywhere either.
    op: 'POST /api/v1/third-party/return',
    allow: ['superAdmin', 'deviceAdmin', 'member1', 'member2'],
    req: async ({ w }) => {
      await w.h.services.thirdParty.setOrigins(SYSTEM_CLI, w.org1, w.appId, ['https://matrix.example']);
      return json('/api/v1/third-party/return', { app: 'matrix.app', redirect_uri: 'https://matrix.example/back' });
    },
  },
  page('GET /sdk/bindery-client.js', '/sdk/bindery-client.js'),
  {
    op: 'POST /api/v1/orgs/{orgId}/applications',
    allow: SUPER,
    req: ({ w }) => json(`/api/v1/orgs/${w.org1}/applications`, { app_key: `k${w.next()}`, name: 'App' }),
  },
  {
    op: 'PUT /api/v1/orgs/{orgId}/applications/{appId}/admins',
    allow: SUPER,
    req: ({ w }) => json(`/api/v1/orgs/${w.org1}/applications/${w.appId}/admins`, { admins: [] }),
  },

  // ── notifications ────────────────────────────────────────────────────────
  { op: 'GET /api/v1/notifications', allow: USERS, req: () => get('/api/v1/notifications') },
  { op: 'GET /api/v1/notifications/unread-count', allow: USERS, req: () => get('/api/v1/notifications/unread-count') },
  { op: 'POST /api/v1/notifications/read', allow: USERS, req: () => json('/api/v1/notifications/read', { all: true }) },
  { op: 'GET /api/v1/notifications/stream', allow: USERS, stream: true, req: () => get('/api/v1/notifications/stream') },
  // A device's live changes: whoever may see its page (member 1 is inside sn.orgIn's range: read-only).
  {
    op: 'GET /api/v1/devices/{sn}/events',
    allow: [...ORG1_ADMINS, 'member1'],
    stream: true,
    req: ({ w }) => get(`/api/v1/devices/${w.sn.orgIn}/events`),
  },
  {
    // Member 1's personal device shared with member 2: the owner, the sharer themselves and operators end the share.
    op: 'DELETE /api/v1/devices/{sn}/users/{userId}',
    allow: ['operator', 'member1', 'member2'],
    req: async ({ w }) => {
      const sn = await w.boundDevice('personal');
      const d = await w.h.deps.db.kysely.selectFrom('devices').select('id').where('sn', '=', sn).executeTakeFirstOrThrow();
      await w.h.deps.db.kysely
        .insertInto('device_users')
        .values({ device_id: d.id, user_id: w.userIds.member2, added_at: 1 })
        .execute();
      return get(`/api/v1/devices/${sn}/users/${w.userIds.member2}`);
    },
  },

  // ── callbacks and webhooks ───────────────────────────────────────────────
  ...(['GET', 'PUT', 'DELETE'] as const).map(
    (m): Row => ({
      op: `${m} /api/v1/models/{modelId}/callback`,
      allow: VA,
      req: async ({ w }) => {
        await w.h.services.callbacks.putModelCallback(SYSTEM_CLI, w.modelA2, { url: 'http://127.0.0.1:9/cb/m' });
        const url = `/api/v1/models/${w.modelA2}/callback`;
        return m === 'PUT' ? json(url, { url: 'http://127.0.0.1:9/cb/m2' }) : get(url);
      },
    }),
  ),
  // Vendor-wide callbacks would reach vendor A's binds: each call puts one and removes it after.
  ...(['GET', 'PUT', 'DELETE'] as const).map(
    (m): Row => ({
      op: `${m} /api/v1/vendors/{vendorId}/callback`,
      allow: VA,
      req: async ({ w }) => {
        await w.h.services.callbacks.putVendorCallback(SYSTEM_CLI, w.vendorA, { url: 'http://127.0.0.1:9/cb/v' });
        const url = `/api/v1/vendors/${w.vendorA}/callback`;
        return m === 'PUT' ? json(url, { url: 'http://127.0.0.1:9/cb/v2' }) : get(url);
      },
      after: async ({ w }) => {
        await w.h.services.callbacks.deleteVendorCallback(SYSTEM_CLI, w.vendorA).catch(() => undefined);
      },
    }),
  ),
  {
    op: 'POST /api/v1/vendors/{vendorId}/webhooks',
    allow: VA,
    req: ({ w }) => json(`/api/v1/vendors/${w.vendorA}/webhooks`, { url: 'http://127.0.0.1:9/hooks/x' }),
  },
  { op: 'GET /api/v1/vendors/{vendorId}/webhooks', allow: VA, req: ({ w }) => get(`/api/v1/vendors/${w.vendorA}/webhooks`) },
  { op: 'GET /api/v1/vendors/{vendorId}/deliveries', allow: VA, req: ({ w }) => get(`/api/v1/vendors/${w.vendorA}/deliveries`) },
  {
    op: 'POST /api/v1/organisations/{orgId}/webhooks',
    allow: SUPER,
    req: ({ w }) => json(`/api/v1/organisations/${w.org1}/webhooks`, { url: 'http://127.0.0.1:9/hooks/o' }),
  },
  {
    op: 'GET /api/v1/organisations/{orgId}/webhooks',
    allow: SUPER,
    req: ({ w }) => get(`/api/v1/organisations/${w.org1}/webhooks`),
  },
  {
    op: 'GET /api/v1/organisations/{orgId}/deliveries',
    allow: SUPER,
    req: ({ w }) => get(`/api/v1/organisations/${w.org1}/deliveries`),
  },
  {
    op: 'DELETE /api/v1/webhooks/{id}',
    allow: VA,
    req: async ({ w }) => {
      const r = await w.h.services.callbacks.createWebhook(
        SYSTEM_CLI,
        { type: 'vendor', id: w.vendorA },
        { url: 'http://127.0.0.1:9/hooks/d' },
      );
      return get(`/api/v1/webhooks/${r.webhook.id}`);
    },
  },
  {
    op: 'GET /api/v1/deliveries/{id}',
    allow: VA,
    req: ({ w }) => get(`/api/v1/deliveries/${w.deliveryA}`),
  },
  {
    op: 'POST /api/v1/deliveries/{id}/redeliver',
    allow: VA,
    req: ({ w }) => json(`/api/v1/deliveries/${w.deliveryA}/redeliver`, {}),
  },
  // Test events (queued to a closed local port). A webhook per request; the callback URLs take at most
  // the four allowed callers, under the per-target limit.
  {
    op: 'POST /api/v1/webhooks/{id}/test',
    allow: VA,
    req: async ({ w }) => {
      const r = await w.h.services.callbacks.createWebhook(
        SYSTEM_CLI,
        { type: 'vendor', id: w.vendorA },
        { url: 'http://127.0.0.1:9/hooks/t' },
      );
      return json(`/api/v1/webhooks/${r.webhook.id}/test`, {});
    },
  },
  {
    op: 'POST /api/v1/models/{modelId}/callback/test',
    allow: VA,
    req: async ({ w }) => {
      await w.h.services.callbacks.putModelCallback(SYSTEM_CLI, w.modelA2, { url: 'http://127.0.0.1:9/cb/m' });
      return json(`/api/v1/models/${w.modelA2}/callback/test`, {});
    },
  },
  {
    op: 'POST /api/v1/vendors/{vendorId}/callback/test',
    allow: VA,
    req: async ({ w }) => {
      await w.h.services.callbacks.putVendorCallback(SYSTEM_CLI, w.vendorA, { url: 'http://127.0.0.1:9/cb/v' });
      return json(`/api/v1/vendors/${w.vendorA}/callback/test`, {});
    },
    after: async ({ w }) => {
      await w.h.services.callbacks.deleteVendorCallback(SYSTEM_CLI, w.vendorA).catch(() => undefined);
    },
  },

  // ── inspections (vendors); merchants are in authz-matrix.rows-operator.ts ──
  {
    op: 'POST /api/v1/inspections',
    allow: VA,
    refuse: inspectionRefusal,
    finding: 'people got the inspection import report instead of 403',
    req: ({ w }) =>
      json('/api/v1/inspections', {
        records: [{ device_sn: w.sn.orgIn, result: 'SUCCESS', inspect_time: '2026-01-01T10:00:00.000+08:00' }],
      }),
  },
  {
    op: 'POST /api/v1/inspections/import',
    allow: VA,
    refuse: inspectionRefusal,
    finding: 'people got the inspection import report instead of 403',
    req: ({ w }) => ({
      url: '/api/v1/inspections/import',
      payload: `device_sn,result,inspect_time\n${w.sn.orgIn},SUCCESS,2026-01-01T10:00:00.000+08:00\n`,
      headers: { 'content-type': 'text/csv' },
    }),
  },
  { op: 'GET /api/v1/inspections/{sn}', allow: VA, req: ({ w }) => get(`/api/v1/inspections/${w.sn.orgIn}`) },
  // WeChat Pay v3: the merchant's own signature, never a Bindery token.
  { op: 'GET /v3/iotmanage/devices', allow: 'signature', req: () => get('/v3/iotmanage/devices') },
  {
    op: 'GET /v3/iotmanage/device-inspections/{device_sn}',
    allow: 'signature',
    req: ({ w }) => get(`/v3/iotmanage/device-inspections/${w.sn.orgIn}`),
  },
  { op: 'GET /v3/certificates', allow: 'signature', req: () => get('/v3/certificates') },

  // ── pages (hidden from OpenAPI): public; they sign people in themselves ──
  page('GET /connect/hardware', '', {
    ...PAGE_VISITORS,
    alsoOk: [302],
    req: ({ w }) => get(`/connect/hardware?hw_code=${w.hwCode.free}`),
  }),
  page('GET /hw/addDevice', '/hw/addDevice', { ...PAGE_VISITORS, alsoOk: [302] }),
  page('GET /wwopen/connect/hardware/addDevice', '/wwopen/connect/hardware/addDevice', { ...PAGE_VISITORS, alsoOk: [302] }),
  page('GET /login', '/login', { alsoOk: [302] }),
  consolePage('/', '/'),
  page('GET /favicon.ico', '/favicon.ico', { alsoOk: [404] }),
  page('GET /favicon.svg', '/favicon.svg', { alsoOk: [404] }),
  { ...page('GET /assets/*', '/assets/none.js'), optional: true, allow404: true },
];
