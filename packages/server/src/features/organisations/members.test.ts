import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageBackends } from '../../testing/backends.js';
import { bearer, type Harness, startHarness } from '../../testing/harness.js';
import { acmeOrg, login, type OrgFixture, PASSWORD } from '../people/people.fixture.js';

/**
 * Members with consent (issue 12): an admin's "add member" is an invitation the person answers
 * from their inbox; its preview says who invited whom to what; the pending list names whom it was
 * sent to. Operators alone may seat someone directly, and it is audited.
 */
describe.each(storageBackends())('members and invitations on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let org: OrgFixture;

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    org = await acmeOrg(h, 'mem');
  });
  afterAll(async () => {
    await h?.close();
  });

  const membership = (userId: string) =>
    h.deps.db.kysely
      .selectFrom('org_members')
      .select(['role', 'department_id'])
      .where('org_id', '=', org.orgId)
      .where('user_id', '=', userId)
      .executeTakeFirst();

  it.skipIf(skip)('an existing user invited by username joins only by accepting from the inbox', async () => {
    const boss = await login(h.app, 'boss.mem', PASSWORD);
    const sent = await boss.req('POST', `/api/v1/orgs/${org.orgId}/members`, {
      username: 'Outsider.mem',
      role: 'device_admin',
      department_id: org.dept.sales,
      scope: [org.dept.salesEast],
    });
    expect(sent.statusCode, sent.body).toBe(202);
    expect(sent.json().invite).toMatchObject({ state: 'pending', invitee: 'outsider.mem', role: 'device_admin' });
    expect(await membership(org.users.outsider)).toBeUndefined();

    // The pending list names whom it went to and who sent it.
    const list = (await boss.req('GET', `/api/v1/orgs/${org.orgId}/invites`)).json().invites as Array<Record<string, unknown>>;
    expect(list.find((i) => i.id === sent.json().invite.id)).toMatchObject({
      invitee: 'outsider.mem',
      created_by: org.users.boss,
      created_by_name: 'boss',
      state: 'pending',
    });

    const out = await login(h.app, 'outsider.mem', PASSWORD);
    const inbox = (await out.req('GET', '/api/v1/notifications')).json().notifications as Array<{ kind: string; link: string }>;
    const note = inbox.find((n) => n.kind === 'org.invite');
    expect(note?.link).toMatch(/^\/invite#/);
    const token = note!.link.slice('/invite#'.length);

    // Who invited whom to what, until when; the link means nothing without their session.
    const anonymous = await h.app.inject({ method: 'POST', url: '/api/v1/invites/preview', payload: { token } });
    expect(anonymous.json().error.code).toBe('INVITE_INVALID');
    const preview = await out.req('POST', '/api/v1/invites/preview', { token });
    expect(preview.statusCode, preview.body).toBe(200);
    expect(preview.json()).toEqual({
      organisation: { id: org.orgId, name: 'Acme mem' },
      role: 'device_admin',
      department: { id: org.dept.sales, name: 'Sales' },
      scope: [{ id: org.dept.salesEast, name: 'Sales East' }],
      invited_by: { display_name: 'boss' },
      invitee: { username: 'outsider.mem', display_name: 'outsider' },
      expires_at: sent.json().invite.expires_at,
    });

    const accepted = await out.req('POST', '/api/v1/invites/accept', { token });
    expect(accepted.statusCode, accepted.body).toBe(201);
    expect(await membership(org.users.outsider)).toEqual({ role: 'device_admin', department_id: org.dept.sales });
    const after = (await boss.req('GET', `/api/v1/orgs/${org.orgId}/invites`)).json().invites as Array<Record<string, unknown>>;
    expect(after.find((i) => i.id === sent.json().invite.id)).toMatchObject({
      state: 'accepted',
      accepted_by: org.users.outsider,
    });
    await boss.req('DELETE', `/api/v1/orgs/${org.orgId}/members/${org.users.outsider}`);
  });

  it.skipIf(skip)('an open link previews its inviter and no invitee', async () => {
    const boss = await login(h.app, 'boss.mem', PASSWORD);
    const { token } = (await boss.req('POST', `/api/v1/orgs/${org.orgId}/invites`, { role: 'member' })).json();
    const preview = await h.app.inject({ method: 'POST', url: '/api/v1/invites/preview', payload: { token } });
    expect(preview.json()).toMatchObject({
      organisation: { name: 'Acme mem' },
      department: { id: org.dept.root },
      scope: [],
      invited_by: { display_name: 'boss' },
      invitee: null,
    });
  });

  it.skipIf(skip)('operators may seat a user directly (audited); admins may not', async () => {
    const boss = await login(h.app, 'boss.mem', PASSWORD);
    const refused = await boss.req('POST', `/api/v1/orgs/${org.orgId}/members`, {
      user_id: org.users.outsider,
      role: 'member',
      direct: true,
    });
    expect(refused.statusCode).toBe(403);
    expect(await membership(org.users.outsider)).toBeUndefined();

    const r = await h.app.inject({
      method: 'POST',
      url: `/api/v1/orgs/${org.orgId}/members`,
      headers: bearer(h.operatorToken),
      payload: { username: 'outsider.mem', role: 'member', department_id: org.dept.eng, direct: true },
    });
    expect(r.statusCode, r.body).toBe(201);
    expect(r.json().member).toMatchObject({ user_id: org.users.outsider, role: 'member', department_id: org.dept.eng });
    expect(await membership(org.users.outsider)).toEqual({ role: 'member', department_id: org.dept.eng });
    const logged = await h.deps.db.kysely
      .selectFrom('audit_log')
      .select(['action', 'data'])
      .where('action', '=', 'member.add')
      .where('subject', '=', `org:${org.orgId}`)
      .execute();
    expect(logged.some((l) => String(l.data).includes(org.users.outsider))).toBe(true);

    // Without `direct`, an operator invites like anyone else.
    const invited = await h.app.inject({
      method: 'POST',
      url: `/api/v1/orgs/${org.orgId}/members`,
      headers: bearer(h.operatorToken),
      payload: { username: 'carol.mem', role: 'member' },
    });
    expect(invited.statusCode).toBe(409);
    expect(invited.json().error.code).toBe('ALREADY_EXISTS');
    await boss.req('DELETE', `/api/v1/orgs/${org.orgId}/members/${org.users.outsider}`);
  });

  it.skipIf(skip)('members: search by name or username, change role, department and scope', async () => {
    const boss = await login(h.app, 'boss.mem', PASSWORD);
    const m = `/api/v1/orgs/${org.orgId}/members`;
    const found = (await boss.req('GET', `${m}?q=ALI`)).json().members as Array<{ user_id: string }>;
    expect(found.map((x) => x.user_id)).toEqual([org.users.alice]);
    const byDept = (await boss.req('GET', `${m}?department_id=${org.dept.sales}`)).json().members as Array<{ user_id: string }>;
    expect(byDept.map((x) => x.user_id).sort()).toEqual([org.users.alice, org.users.bob, org.users.salesAdmin].sort());
    const moved = await boss.req('PATCH', `${m}/${org.users.carol}`, {
      role: 'device_admin',
      department_id: org.dept.sales,
      scope: [org.dept.sales, org.dept.eng],
    });
    expect(moved.json().member).toMatchObject({
      role: 'device_admin',
      department_id: org.dept.sales,
      scope: [org.dept.sales, org.dept.eng].sort(),
    });
    const back = await boss.req('PATCH', `${m}/${org.users.carol}`, { role: 'member', department_id: org.dept.eng });
    expect(back.json().member).toMatchObject({ role: 'member', department_id: org.dept.eng, scope: [] });
  });
});
