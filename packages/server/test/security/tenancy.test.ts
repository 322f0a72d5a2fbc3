import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  acmeOrg,
  asUser,
  type Browser,
  login,
  type OrgFixture,
  PASSWORD,
  vendorWithModels,
} from '../../src/features/people/people.fixture.js';
import { SYSTEM_CLI } from '../../src/shared/principal.js';
import { storageBackends } from '../../src/testing/backends.js';
import { type Harness, startHarness } from '../../src/testing/harness.js';

/**
 * Issue 11, finding 6 (tenancy): nobody joins an organisation without accepting; "add member"
 * says nothing about users of other tenants; device admins act on invitations inside their scope
 * only; a removed member loses the organisation's devices at once; an outsider gets 403 before
 * any validation of what they sent.
 */
describe.each(storageBackends())('tenancy (finding 6) on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let org: OrgFixture;
  let other: OrgFixture;
  let modelId: string;
  let n = 0;

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    org = await acmeOrg(h, 'ten');
    other = await acmeOrg(h, 'ten2');
    const { models } = await vendorWithModels(h, [{ name: 'Clock', productKey: 'pkTEN' }]);
    modelId = models.pkTEN!;
  });
  afterAll(async () => {
    await h?.close();
  });

  const membership = (orgId: string, userId: string) =>
    h.deps.db.kysely
      .selectFrom('org_members')
      .select('role')
      .where('org_id', '=', orgId)
      .where('user_id', '=', userId)
      .executeTakeFirst();

  it.skipIf(skip)(
    'finding 6: adding a user of another tenant by username reveals nothing and seats nobody until they accept',
    async () => {
      const boss = await login(h.app, 'boss.ten', PASSWORD);
      const add = (body: object) =>
        boss.req('POST', `/api/v1/orgs/${org.orgId}/members`, { role: 'member', department_id: org.dept.sales, ...body });
      // carol.ten2 exists (in another organisation); nobody is called ghost.
      const existing = await add({ username: 'carol.ten2' });
      const ghost = await add({ username: 'ghost.nobody' });
      const byId = await add({ user_id: 'usr_does_not_exist' });
      for (const r of [existing, ghost, byId]) expect(r.statusCode, r.body).toBe(202);
      // The same answer, field for field except the invitation's own id and times, and the name
      // the admin typed (echoed back as given, whether or not anyone has it).
      const shape = (r: typeof existing) => {
        const { id, created_at, expires_at, invitee, ...rest } = r.json().invite;
        return { keys: Object.keys(r.json()), rest, id: typeof id, created_at: typeof created_at, expires_at: typeof expires_at };
      };
      expect([existing, ghost, byId].map((r) => r.json().invite.invitee)).toEqual([
        'carol.ten2',
        'ghost.nobody',
        'usr_does_not_exist',
      ]);
      expect(shape(existing)).toEqual(shape(ghost));
      expect(shape(existing)).toEqual(shape(byId));
      expect(existing.json()).not.toHaveProperty('token');
      expect(existing.json()).not.toHaveProperty('member');

      // Nobody was seated.
      const carol = other.users.carol;
      expect(await membership(org.orgId, carol)).toBeUndefined();

      // The invitation reaches carol's inbox; its link works for her session only.
      const carolB = await login(h.app, 'carol.ten2', PASSWORD);
      const inbox = (await carolB.req('GET', '/api/v1/notifications')).json().notifications as Array<{
        kind: string;
        link: string;
      }>;
      const note = inbox.find((x) => x.kind === 'org.invite');
      expect(note?.link).toMatch(/^\/invite#/);
      const token = note!.link.slice('/invite#'.length);
      const outsider = await login(h.app, 'outsider.ten', PASSWORD);
      expect((await outsider.req('POST', '/api/v1/invites/accept', { token })).statusCode).toBe(410);
      const anonymous = await h.app.inject({
        method: 'POST',
        url: '/api/v1/invites/accept',
        payload: { token, username: 'sneaky.ten', password: PASSWORD },
      });
      expect(anonymous.statusCode).not.toBe(201);
      expect(await membership(org.orgId, other.users.outsider)).toBeUndefined();

      const accepted = await carolB.req('POST', '/api/v1/invites/accept', { token });
      expect(accepted.statusCode, accepted.body).toBe(201);
      expect(await membership(org.orgId, carol)).toEqual({ role: 'member' });
    },
  );

  it.skipIf(skip)('finding 6: a device admin cannot revoke an invitation outside their scope', async () => {
    const boss = asUser(org.users.boss);
    const inEng = await h.services.people.createInvite(boss, org.orgId, { role: 'member', departmentId: org.dept.eng });
    const inSales = await h.services.people.createInvite(boss, org.orgId, { role: 'member', departmentId: org.dept.salesEast });
    const adminInSales = await h.services.people.createInvite(boss, org.orgId, {
      role: 'device_admin',
      departmentId: org.dept.sales,
      scope: [org.dept.salesEast],
    });
    const sa = await login(h.app, 'salesadmin.ten', PASSWORD);
    const base = `/api/v1/orgs/${org.orgId}/invites`;

    const listed = ((await sa.req('GET', base)).json().invites as Array<{ id: string }>).map((i) => i.id);
    expect(listed).toContain(inSales.invite.id);
    expect(listed).not.toContain(inEng.invite.id);
    expect(listed).not.toContain(adminInSales.invite.id);

    const outside = await sa.req('DELETE', `${base}/${inEng.invite.id}`);
    expect(outside.statusCode).toBe(403);
    expect(outside.json().error.code).toBe('OUTSIDE_SCOPE');
    expect((await sa.req('DELETE', `${base}/${adminInSales.invite.id}`)).statusCode).toBe(403);
    const state = async (id: string) =>
      (await h.deps.db.kysely.selectFrom('invites').select('revoked_at').where('id', '=', id).executeTakeFirstOrThrow())
        .revoked_at;
    expect(await state(inEng.invite.id)).toBeNull();
    expect(await state(adminInSales.invite.id)).toBeNull();

    expect((await sa.req('DELETE', `${base}/${inSales.invite.id}`)).statusCode).toBe(204);
    expect(await state(inSales.invite.id)).not.toBeNull();
  });

  it.skipIf(skip)('finding 6: a removed member no longer sees the organisation device cards or pages', async () => {
    const sn = `TEN${String(++n).padStart(5, '0')}`;
    await h.services.devices.register(SYSTEM_CLI, modelId, sn);
    // Bound by bob, visible to bob alone (a user range).
    await h.services.binding.bind(SYSTEM_CLI, sn, { type: 'org', id: org.orgId }, { visibleTo: { users: [org.users.bob] } });
    await h.deps.db.kysely
      .updateTable('devices')
      .set({ bound_by: `user:${org.users.bob}` })
      .where('sn', '=', sn)
      .execute();
    const bob = await login(h.app, 'bob.ten', PASSWORD);
    const cards = async (b: Browser) =>
      ((await b.req('GET', '/api/v1/me/devices')).json().devices as Array<{ sn: string }>).map((d) => d.sn);
    expect(await cards(bob)).toContain(sn);
    expect((await bob.req('GET', `/api/v1/devices/${sn}/page`)).statusCode).toBe(200);

    const boss = await login(h.app, 'boss.ten', PASSWORD);
    expect((await boss.req('DELETE', `/api/v1/orgs/${org.orgId}/members/${org.users.bob}`)).statusCode).toBe(204);

    expect(await cards(bob)).not.toContain(sn);
    expect((await bob.req('GET', `/api/v1/devices/${sn}/page`)).statusCode).toBe(404);
    expect((await bob.req('GET', `/api/v1/orgs/${org.orgId}/devices`)).statusCode).toBe(403);
    // The range no longer names bob: it falls back to his former department, so Sales's admin keeps it.
    const device = await h.deps.db.kysely.selectFrom('devices').select('id').where('sn', '=', sn).executeTakeFirstOrThrow();
    const range = await h.deps.db.kysely
      .selectFrom('device_visibility')
      .select(['department_id', 'user_id'])
      .where('device_id', '=', device.id)
      .execute();
    expect(range).toEqual([{ department_id: org.dept.sales, user_id: null }]);
    const sa = await login(h.app, 'salesadmin.ten', PASSWORD);
    expect((await sa.req('GET', `/api/v1/devices/${sn}/page`)).statusCode).toBe(200);
  });

  it.skipIf(skip)(
    'finding 6: an outsider or a plain member gets 403, not a validation error, before anything is checked',
    async () => {
      const outsider = await login(h.app, 'outsider.ten', PASSWORD);
      const alice = await login(h.app, 'alice.ten', PASSWORD);
      const m = `/api/v1/orgs/${org.orgId}`;
      for (const b of [outsider, alice]) {
        // Bodies that fail validation (schema or content) must still get 403 first.
        expect((await b.req('POST', `${m}/members`, { role: 'nope' })).statusCode).toBe(403);
        expect((await b.req('POST', `${m}/members`, { role: 'member', department_id: 'dpt_nowhere' })).statusCode).toBe(403);
        expect((await b.req('POST', `${m}/invites`, { role: 'member', scope: 'x' })).statusCode).toBe(403);
        expect((await b.req('POST', `${m}/invites`, { role: 'member', department_id: 'dpt_nowhere' })).statusCode).toBe(403);
        expect((await b.req('POST', `${m}/departments`, { name: 7 })).statusCode).toBe(403);
        expect((await b.req('PATCH', `${m}/settings`, { member_binding: 'yes' })).statusCode).toBe(403);
        expect((await b.req('PUT', `${m}/applications/app_x/admins`, { admins: 'x' })).statusCode).toBe(403);
      }
      expect((await outsider.req('GET', `${m}/members?q=${'x'.repeat(100)}`)).statusCode).toBe(403);

      // A range naming users: who is a member is not told to someone outside the organisation or the
      // binder's reach — a member and a stranger are refused alike.
      const orgs = h.services.organisations;
      const refusal = async (actor: string, users: string[]) => {
        const ctx = await orgs.context(asUser(actor), org.orgId);
        return orgs.resolveRange(ctx, { users }).then(
          () => 'accepted',
          (e: { code?: string }) => e.code,
        );
      };
      expect(await refusal(org.users.outsider, [org.users.carol])).toBe('FORBIDDEN');
      expect(await refusal(org.users.outsider, ['usr_nobody'])).toBe('FORBIDDEN');
      expect(await refusal(org.users.salesAdmin, ['usr_nobody'])).toBe('OUTSIDE_SCOPE');
      expect(await refusal(org.users.salesAdmin, [org.users.carol])).toBe('accepted'); // then decideOrgBind: OUTSIDE_SCOPE
    },
  );
});
