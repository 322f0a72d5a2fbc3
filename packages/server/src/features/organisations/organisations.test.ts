import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { bearer, type Harness, startHarness } from '../../testing/harness.js';
import { acmeOrg, login, type OrgFixture, PASSWORD, vendorWithModels } from '../people/people.fixture.js';

describe.each(storageBackends())('organisations on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let org: OrgFixture;

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    org = await acmeOrg(h, 'org');
  });
  afterAll(async () => {
    await h?.close();
  });

  it.skipIf(skip)('an operator creates an organisation with a new super admin in one step; nobody else may', async () => {
    const r = await h.app.inject({
      method: 'POST',
      url: '/api/v1/orgs',
      headers: bearer(h.operatorToken),
      payload: { name: 'Globex', super_admin: { username: 'hank.org', password: PASSWORD, display_name: 'Hank' } },
    });
    expect(r.statusCode).toBe(201);
    const { organisation, super_admin } = r.json();
    expect(organisation).toMatchObject({ name: 'Globex', member_binding: false });
    const hank = await login(h.app, 'hank.org', PASSWORD);
    const depts = await hank.req('GET', `/api/v1/orgs/${organisation.id}/departments`);
    expect(depts.json().departments).toEqual([{ id: expect.any(String), parent_id: null, name: 'Globex' }]);
    const members = (await hank.req('GET', `/api/v1/orgs/${organisation.id}/members`)).json().members;
    expect(members).toEqual([expect.objectContaining({ user_id: super_admin.id, role: 'super_admin' })]);

    // A bad super admin writes nothing: not the organisation, not the user.
    const bad = await h.app.inject({
      method: 'POST',
      url: '/api/v1/orgs',
      headers: bearer(h.operatorToken),
      payload: { name: 'Initech', super_admin: { username: 'x', password: PASSWORD } },
    });
    expect(bad.statusCode).toBe(400);
    expect(await h.deps.db.kysely.selectFrom('organisations').select('id').where('name', '=', 'Initech').execute()).toHaveLength(
      0,
    );
    const dup = await h.app.inject({
      method: 'POST',
      url: '/api/v1/orgs',
      headers: bearer(h.operatorToken),
      payload: { name: 'Initech', super_admin: { username: 'hank.org', password: PASSWORD } },
    });
    expect(dup.statusCode).toBe(409);
    expect(await h.deps.db.kysely.selectFrom('organisations').select('id').where('name', '=', 'Initech').execute()).toHaveLength(
      0,
    );

    const asHank = await hank.req('POST', '/api/v1/orgs', { name: 'Mine', super_admin: { user_id: hank.userId } });
    expect(asHank.statusCode).toBe(403);
  });

  it.skipIf(skip)('keeps the department tree sound: no cycles, no deleting a department in use', async () => {
    const boss = await login(h.app, 'boss.org', PASSWORD);
    const base = `/api/v1/orgs/${org.orgId}/departments`;
    const cycle = await boss.req('PATCH', `${base}/${org.dept.sales}`, { parent_id: org.dept.salesEast });
    expect(cycle.statusCode).toBe(409);
    expect(cycle.json().error.code).toBe('DEPARTMENT_CYCLE');
    const self = await boss.req('PATCH', `${base}/${org.dept.sales}`, { parent_id: org.dept.sales });
    expect(self.json().error.code).toBe('DEPARTMENT_CYCLE');
    const rootMove = await boss.req('PATCH', `${base}/${org.dept.root}`, { parent_id: org.dept.eng });
    expect(rootMove.statusCode).toBe(400);
    const unknownParent = await boss.req('POST', base, { name: 'X', parent_id: 'dpt_nope' });
    expect(unknownParent.json().error.code).toBe('DEPARTMENT_NOT_FOUND');
    const busy = await boss.req('DELETE', `${base}/${org.dept.salesEast}`);
    expect(busy.statusCode).toBe(409);
    expect(busy.json().error).toMatchObject({
      code: 'DEPARTMENT_NOT_EMPTY',
      details: { sub_departments: 0, members: 1, invitations: 0, devices: 0 },
    });
    // Sales is refused for what its sub-department holds, too.
    const parentBusy = await boss.req('DELETE', `${base}/${org.dept.sales}`);
    expect(parentBusy.json().error).toMatchObject({ code: 'DEPARTMENT_NOT_EMPTY', details: { sub_departments: 1, members: 3 } });
    expect(parentBusy.json().error.message).toMatch(/sub-department/);
    const tmp = (await boss.req('POST', base, { name: 'Temp', parent_id: org.dept.eng })).json().department;
    const moved = await boss.req('PATCH', `${base}/${tmp.id}`, { parent_id: org.dept.sales, name: 'Temp 2' });
    expect(moved.json().department).toEqual({ id: tmp.id, parent_id: org.dept.sales, name: 'Temp 2' });
    expect((await boss.req('DELETE', `${base}/${tmp.id}`)).statusCode).toBe(204);

    // An empty subtree goes at once; a pending invitation or a device's range keeps it.
    const a = (await boss.req('POST', base, { name: 'A', parent_id: org.dept.eng })).json().department;
    const b = (await boss.req('POST', base, { name: 'B', parent_id: a.id })).json().department;
    const inv = (await boss.req('POST', `/api/v1/orgs/${org.orgId}/invites`, { role: 'member', department_id: b.id })).json();
    expect((await boss.req('DELETE', `${base}/${a.id}`)).json().error.details).toMatchObject({ invitations: 1 });
    await boss.req('DELETE', `/api/v1/orgs/${org.orgId}/invites/${inv.invite.id}`);
    const { models } = await vendorWithModels(h, [{ name: 'Lamp', productKey: 'pkORGDEL' }]);
    await h.services.devices.register(SYSTEM_CLI, models.pkORGDEL!, 'ORGDEL1');
    const dev = await h.deps.db.kysely.selectFrom('devices').select('id').where('sn', '=', 'ORGDEL1').executeTakeFirstOrThrow();
    await h.deps.db.kysely
      .insertInto('device_visibility')
      .values({ device_id: dev.id, department_id: b.id, user_id: null })
      .execute();
    expect((await boss.req('DELETE', `${base}/${a.id}`)).json().error.details).toMatchObject({ devices: 1 });
    await h.deps.db.kysely.deleteFrom('device_visibility').where('department_id', '=', b.id).execute();
    expect((await boss.req('DELETE', `${base}/${a.id}`)).statusCode).toBe(204);
    const left = (await boss.req('GET', base)).json().departments as Array<{ id: string }>;
    expect(left.map((d) => d.id)).not.toContain(b.id);
    const alice = await login(h.app, 'alice.org', PASSWORD);
    expect((await alice.req('POST', base, { name: 'Nope' })).statusCode).toBe(403);
  });

  it.skipIf(skip)('roles: only super admins change them, and the last super admin stays', async () => {
    const boss = await login(h.app, 'boss.org', PASSWORD);
    const sa = await login(h.app, 'salesadmin.org', PASSWORD);
    const m = `/api/v1/orgs/${org.orgId}/members`;
    expect((await sa.req('PATCH', `${m}/${org.users.bob}`, { role: 'device_admin' })).statusCode).toBe(403);
    const promote = await boss.req('PATCH', `${m}/${org.users.bob}`, { role: 'device_admin', scope: [org.dept.salesEast] });
    expect(promote.json().member).toMatchObject({ role: 'device_admin', scope: [org.dept.salesEast] });
    const scopeOnMember = await boss.req('PATCH', `${m}/${org.users.bob}`, { role: 'member', scope: [org.dept.sales] });
    expect(scopeOnMember.statusCode).toBe(400);
    const demote = await boss.req('PATCH', `${m}/${org.users.bob}`, { role: 'member' });
    expect(demote.json().member).toMatchObject({ role: 'member', scope: [] });
    const last = await boss.req('PATCH', `${m}/${org.users.boss}`, { role: 'member' });
    expect(last.statusCode).toBe(409);
    expect(last.json().error.code).toBe('LAST_SUPER_ADMIN');
    const leave = await boss.req('DELETE', `${m}/${org.users.boss}`);
    expect(leave.json().error.code).toBe('LAST_SUPER_ADMIN');
  });

  it.skipIf(skip)('members see only the people inside their visibility range; admins see everyone', async () => {
    const alice = await login(h.app, 'alice.org', PASSWORD);
    const bob = await login(h.app, 'bob.org', PASSWORD);
    const names = async (b: typeof alice) =>
      ((await b.req('GET', `/api/v1/orgs/${org.orgId}/members`)).json().members as Array<{ user_id: string }>)
        .map((x) => x.user_id)
        .sort();
    expect(await names(alice)).toEqual([org.users.alice]);
    expect(await names(bob)).toEqual([org.users.alice, org.users.bob, org.users.salesAdmin].sort());
    const eng = await login(h.app, 'engadmin.org', PASSWORD);
    expect((await names(eng)).length).toBe(6);
    const outsider = await login(h.app, 'outsider.org', PASSWORD);
    expect((await outsider.req('GET', `/api/v1/orgs/${org.orgId}/members`)).statusCode).toBe(403);
  });

  it.skipIf(skip)('applications and their admins; member binding is a super-admin setting, off by default', async () => {
    const boss = await login(h.app, 'boss.org', PASSWORD);
    const created = await boss.req('POST', `/api/v1/orgs/${org.orgId}/applications`, {
      app_key: 'attendance',
      name: 'Attendance',
      admins: [org.users.carol],
    });
    expect(created.json().application).toMatchObject({ app_key: 'attendance', admins: [org.users.carol] });
    const dup = await boss.req('POST', `/api/v1/orgs/${org.orgId}/applications`, { app_key: 'attendance', name: 'Again' });
    expect(dup.statusCode).toBe(409);
    const notMember = await boss.req('PUT', `/api/v1/orgs/${org.orgId}/applications/${created.json().application.id}/admins`, {
      admins: ['usr_nobody'],
    });
    expect(notMember.statusCode).toBe(400);

    expect((await boss.req('GET', `/api/v1/orgs/${org.orgId}`)).json().organisation.member_binding).toBe(false);
    const sa = await login(h.app, 'salesadmin.org', PASSWORD);
    expect((await sa.req('PATCH', `/api/v1/orgs/${org.orgId}/settings`, { member_binding: true })).statusCode).toBe(403);
    const on = await boss.req('PATCH', `/api/v1/orgs/${org.orgId}/settings`, { member_binding: true });
    expect(on.json().organisation.member_binding).toBe(true);
    await boss.req('PATCH', `/api/v1/orgs/${org.orgId}/settings`, { member_binding: false });
  });

  it.skipIf(skip)('a sub-merchant organisation made elsewhere gets its root department on first use', async () => {
    await h.deps.db.kysely
      .insertInto('organisations')
      .values({ id: 'org_sub', name: 'Sub shop', parent_id: org.orgId, mchid: null, merchant_shortname: null, created_at: 0 })
      .execute();
    const r = await h.app.inject({ method: 'GET', url: '/api/v1/orgs/org_sub/departments', headers: bearer(h.operatorToken) });
    expect(r.json().departments).toEqual([{ id: 'org_sub_root', parent_id: null, name: 'Sub shop' }]);
    const again = await h.app.inject({
      method: 'GET',
      url: '/api/v1/orgs/org_sub/departments',
      headers: bearer(h.operatorToken),
    });
    expect(again.json().departments).toHaveLength(1);
  });
});
