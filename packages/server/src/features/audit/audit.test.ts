import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { audit } from '../../shared/audit.js';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { type Harness, startHarness } from '../../testing/harness.js';
import { CSRF_HEADER } from '../people/cookies.js';
import {
  acmeOrg,
  type Browser,
  login,
  type OrgFixture,
  PASSWORD,
  SITE_ORIGIN,
  vendorWithModels,
} from '../people/people.fixture.js';

interface Entry {
  id: number;
  at: string;
  actor: { label: string; user_id: string | null; username: string | null; display_name: string | null };
  action: string;
  subject: string;
  org_id: string | null;
  ip: string | null;
  data: Record<string, unknown> | null;
}

/** Issue 12: the audit log, read by an organisation's super admins and by operators. */
describe.each(storageBackends())('the audit log on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let org: OrgFixture;
  let other: OrgFixture;
  let boss: Browser;
  let otherBoss: Browser;
  let salesAdmin: Browser;
  let operator: Browser;

  const entries = async (b: Browser, url: string): Promise<Entry[]> => {
    const r = await b.req('GET', url);
    expect(r.statusCode, r.body).toBe(200);
    return r.json().entries;
  };
  const orgLog = (q = '') => `/api/v1/orgs/${org.orgId}/audit${q}`;

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    const { models } = await vendorWithModels(h, [{ name: 'Lock', productKey: 'pkAU' }]);
    org = await acmeOrg(h, 'au');
    other = await acmeOrg(h, 'au2');
    await h.services.accounts.createUser(SYSTEM_CLI, { username: 'op.au', password: PASSWORD, isOperator: true });
    boss = await login(h.app, 'boss.au', PASSWORD, '10.1.1.1');
    otherBoss = await login(h.app, 'boss.au2', PASSWORD);
    salesAdmin = await login(h.app, 'salesadmin.au', PASSWORD);
    operator = await login(h.app, 'op.au', PASSWORD);
    for (const sn of ['AU001', 'AU002']) {
      await h.services.devices.register(SYSTEM_CLI, models.pkAU!, sn);
      await h.services.binding.bind(SYSTEM_CLI, sn, { type: 'org', id: org.orgId });
    }
    // Through the API, from a known address: the settings change, a rename, a move to another organisation.
    expect((await boss.req('PATCH', `/api/v1/orgs/${org.orgId}/settings`, { member_binding: true })).statusCode).toBe(200);
    expect((await boss.req('PUT', '/api/v1/devices/AU001/remark-name', { remark_name: 'Front door' })).statusCode).toBe(200);
    const moved = await operator.req('POST', '/api/v1/devices/AU002/transfer', { owner: { type: 'org', id: other.orgId } });
    expect(moved.statusCode, moved.body).toBe(200);
  });
  afterAll(async () => {
    await h?.close();
  });

  it.skipIf(skip)("an organisation's super admin reads its records, newest first, with who and from where", async () => {
    const log = await entries(boss, orgLog());
    const actions = log.map((e) => e.action);
    expect(actions.slice(0, 4)).toEqual(['device.transfer', 'device.rename', 'org.settings', 'device.bind.operator']);
    expect(actions).toContain('department.create');
    expect(actions).toContain('invite.accept');
    expect(log.every((e) => e.org_id === org.orgId)).toBe(true);
    const rename = log[1]!;
    expect(rename).toMatchObject({
      subject: 'device:AU001',
      ip: '10.1.1.1',
      actor: { label: `user:${org.users.boss}`, user_id: org.users.boss, username: 'boss.au', display_name: 'boss' },
      data: { remark_name: 'Front door' },
    });
    expect(Date.parse(rename.at)).toBeGreaterThan(0);
    // Work done outside a request (here the CLI's principal) has no address.
    expect(log[3]).toMatchObject({ actor: { label: 'system:cli', user_id: null }, ip: null });
    // Ids are ordered newest first.
    expect(log.map((e) => e.id)).toEqual([...log.map((e) => e.id)].sort((a, b) => b - a));
  });

  it.skipIf(skip)('a transfer shows in both organisations: the one left and the one joined', async () => {
    const joined = await entries(otherBoss, `/api/v1/orgs/${other.orgId}/audit?sn=AU002`);
    expect(joined.map((e) => e.action)).toEqual(['device.transfer_in']);
    expect(joined[0]!.data).toMatchObject({ from: { owner_type: 'org', owner_id: org.orgId }, owner_id: other.orgId });
    const left = await entries(boss, orgLog('?sn=AU002'));
    expect(left.map((e) => e.action)).toEqual(['device.transfer', 'device.bind.operator']);
    // Nothing of the first organisation leaks into the second's log.
    expect((await entries(otherBoss, `/api/v1/orgs/${other.orgId}/audit?sn=AU001`)).length).toBe(0);
  });

  it.skipIf(skip)('filters: actor by username or id, action prefix, subject, time range; pages with a cursor', async () => {
    const byName = await entries(boss, orgLog('?actor=boss.au'));
    expect(byName.length).toBeGreaterThan(0);
    expect(byName.every((e) => e.actor.user_id === org.users.boss)).toBe(true);
    expect(await entries(boss, orgLog(`?actor=${org.users.boss}`))).toEqual(byName);
    expect(await entries(boss, orgLog('?actor=nobody.here'))).toEqual([]);
    const devices = await entries(boss, orgLog('?action=device.'));
    expect(new Set(devices.map((e) => e.action))).toEqual(new Set(['device.transfer', 'device.rename', 'device.bind.operator']));
    expect((await entries(boss, orgLog('?action=device.bind'))).map((e) => e.subject)).toEqual(['device:AU002', 'device:AU001']);
    expect((await entries(boss, orgLog(`?subject=${encodeURIComponent(`org:${org.orgId}`)}&action=org.settings`))).length).toBe(
      1,
    );
    const all = await entries(boss, orgLog());
    const mid = all[2]!.at;
    expect(await entries(boss, orgLog(`?to=${encodeURIComponent(mid)}&from=${encodeURIComponent(mid)}`))).toEqual(
      all.filter((e) => e.at === mid),
    );
    expect(await entries(boss, orgLog('?from=2999-01-01'))).toEqual([]);
    expect((await boss.req('GET', orgLog('?from=yesterday'))).statusCode).toBe(400);

    const p1 = (await boss.req('GET', orgLog('?limit=3'))).json();
    expect(p1.entries).toEqual(all.slice(0, 3));
    const p2 = (await boss.req('GET', orgLog(`?limit=3&cursor=${p1.next_cursor}`))).json();
    expect(p2.entries).toEqual(all.slice(3, 6));
    expect((await boss.req('GET', orgLog('?cursor=abc'))).statusCode).toBe(400);
  });

  it.skipIf(skip)('who may read: super admins of the organisation and operators; the whole instance only operators', async () => {
    expect((await salesAdmin.req('GET', orgLog())).statusCode).toBe(403);
    expect((await otherBoss.req('GET', orgLog())).statusCode).toBe(403);
    expect((await boss.req('GET', '/api/v1/audit')).statusCode).toBe(403);
    expect((await boss.req('GET', '/api/v1/audit.csv')).statusCode).toBe(403);
    expect((await entries(operator, orgLog())).length).toBeGreaterThan(0);
    const everything = await entries(operator, '/api/v1/audit?limit=200');
    expect(new Set(everything.map((e) => e.org_id))).toEqual(new Set([org.orgId, other.orgId, null]));
    expect(everything.some((e) => e.action === 'session.create')).toBe(true);
  });

  it.skipIf(skip)('exports csv with the same filters; formula-looking cells are neutralised', async () => {
    await audit(h.deps.db.kysely, Date.now(), SYSTEM_CLI, 'test.formula', `org:${org.orgId}`, { note: '=1+1' });
    const r = await boss.req('GET', `/api/v1/orgs/${org.orgId}/audit.csv?action=test.`);
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/csv/);
    expect(r.headers['content-disposition']).toContain(`audit-${org.orgId}.csv`);
    const lines = r.body
      .replace(/^\uFEFF/, '')
      .trim()
      .split('\r\n');
    expect(lines[0]).toBe('time,actor,actor_name,action,subject,organisation,address,details');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toContain(`,system:cli,,test.formula,org:${org.orgId},${org.orgId},,`);
    const whole = await operator.req('GET', '/api/v1/audit.csv?action=device.rename');
    expect(
      whole.body
        .replace(/^\uFEFF/, '')
        .trim()
        .split('\r\n'),
    ).toHaveLength(2);
    expect((await salesAdmin.req('GET', `/api/v1/orgs/${org.orgId}/audit.csv`)).statusCode).toBe(403);
  });

  it.skipIf(skip)('records the address of a request that came over a real socket with a body', async () => {
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
    const r = await fetch(`${base}/api/v1/orgs/${org.orgId}/departments`, {
      method: 'POST',
      headers: { cookie: boss.cookie, [CSRF_HEADER]: boss.csrf, origin: SITE_ORIGIN, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Over the wire' }),
    });
    expect(r.status, await r.clone().text()).toBe(201);
    const [created] = await entries(boss, orgLog('?action=department.create&limit=1'));
    expect(created).toMatchObject({ data: { name: 'Over the wire' }, ip: '127.0.0.1' });
  });
});
