import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { bearer, type Harness, startHarness } from '../../testing/harness.js';
import { acmeOrg, type Browser, login, type OrgFixture, PASSWORD, vendorWithModels } from '../people/people.fixture.js';

/**
 * The permission matrix of issue 4: role × action × (own / other's device) × (inside / outside
 * scope), with every "may not" of seed 004. Expectations are written out by hand, row by row,
 * not computed by the rules under test.
 */
type Actor = 'boss' | 'salesAdmin' | 'engAdmin' | 'alice' | 'bob' | 'carol' | 'outsider' | 'operator';
type Dept = 'root' | 'sales' | 'salesEast' | 'eng';
type Action = 'view' | 'rename' | 'firmware_upgrade' | 'reboot' | 'fetch_log' | 'unbind';

const ALL: Action[] = ['view', 'rename', 'firmware_upgrade', 'unbind', 'reboot', 'fetch_log'];
/** Seed 004: a member manages only devices they bound: info and admins, remark name, firmware; and may unbind them. */
const BINDER: Action[] = ['view', 'rename', 'firmware_upgrade', 'unbind'];
/** Issue 12: "visible to" means it — people inside a device's range see it and its page, read-only. */
const VIEW: Action[] = ['view'];
const NONE: Action[] = [];

/** [actor, who bound the device, the department it is visible to, what the actor may do] */
const MANAGE: Array<[Actor, Actor, Dept, Action[], string]> = [
  ['boss', 'alice', 'salesEast', ALL, 'a super admin manages every device of the organisation'],
  ['boss', 'carol', 'eng', ALL, 'a super admin manages every device, whoever bound it'],
  ['salesAdmin', 'salesAdmin', 'salesEast', ALL, 'device admin, own device, inside scope'],
  ['salesAdmin', 'alice', 'salesEast', ALL, 'device admin, member-bound device inside scope (admins may remove it)'],
  ['salesAdmin', 'salesAdmin', 'eng', BINDER, 'device admin, own device outside scope: only what the binder may'],
  ['salesAdmin', 'carol', 'eng', NONE, 'device admin, other device outside scope: nothing'],
  ['engAdmin', 'bob', 'sales', NONE, 'device admin of another scope: nothing'],
  ['alice', 'alice', 'salesEast', BINDER, 'member, own device inside their range: no reboot, no logs'],
  ['alice', 'alice', 'root', BINDER, 'member, own device visible beyond their range'],
  ['alice', 'bob', 'salesEast', VIEW, 'member inside the range of a device someone else bound: sees it, read-only'],
  ['bob', 'alice', 'salesEast', NONE, 'member above the range (Sales over Sales East): nothing'],
  ['carol', 'boss', 'eng', VIEW, 'member, admin-bound device in their own department: sees it, read-only'],
  ['outsider', 'boss', 'root', NONE, 'not a member'],
  ['operator', 'alice', 'eng', ALL, 'platform operator'],
];

/** [actor, member binding on, visible to {departments, users}, enable the associated app, expected outcome] */
type Pick = { departments?: Dept[]; users?: Actor[] };
const BIND: Array<[Actor, boolean, Pick | null, boolean, number | string, string]> = [
  ['boss', false, { departments: ['eng'] }, false, 201, 'super admin binds anywhere'],
  ['boss', false, null, true, 201, 'super admin adds the associated application'],
  ['salesAdmin', false, { departments: ['salesEast'] }, false, 201, 'device admin inside scope'],
  ['salesAdmin', false, { users: ['alice'] }, false, 201, 'device admin picks a user inside scope'],
  ['salesAdmin', false, { departments: ['eng'] }, false, 'OUTSIDE_SCOPE', 'device admin outside scope'],
  [
    'salesAdmin',
    false,
    { departments: ['root'] },
    false,
    'OUTSIDE_SCOPE',
    'device admin: the whole organisation is beyond the scope',
  ],
  ['salesAdmin', false, { users: ['carol'] }, false, 'OUTSIDE_SCOPE', 'device admin picks a user outside scope'],
  ['salesAdmin', false, null, false, 201, 'device admin with no pick: visible to their scope'],
  ['salesAdmin', true, null, true, 'APP_ADMIN_REQUIRED', 'device admin who is not admin of the associated app'],
  ['alice', false, null, false, 'MEMBER_BINDING_OFF', 'member where the organisation does not allow member binding'],
  ['alice', true, null, false, 201, 'member where member binding is on: visible to their department'],
  ['alice', true, { departments: ['salesEast'] }, false, 201, 'member picks their own department'],
  ['alice', true, { users: ['alice'] }, false, 201, 'member picks themselves'],
  ['alice', true, { departments: ['sales'] }, false, 'OUTSIDE_VISIBILITY', 'member picks a department above their range'],
  ['alice', true, { users: ['bob'] }, false, 'OUTSIDE_VISIBILITY', 'member picks a user outside their visibility range'],
  ['alice', true, { departments: ['eng'] }, false, 'OUTSIDE_VISIBILITY', 'member picks another department'],
  ['alice', true, null, true, 'APP_ADMIN_REQUIRED', 'member may not enable the associated application'],
  ['carol', true, null, true, 201, 'member who administers the associated application enables it'],
  ['outsider', true, null, false, 'FORBIDDEN', 'not a member'],
  ['operator', false, { departments: ['sales'] }, false, 201, 'platform operator'],
];

describe.each(storageBackends())('permission matrix on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let on: OrgFixture;
  let off: OrgFixture;
  let modelId: string;
  const browsers = new Map<string, Browser>();
  let n = 0;

  const who = (o: OrgFixture, a: Actor): string => (a === 'operator' ? '' : o.users[a]);
  const actorReq = (o: OrgFixture, a: Actor) => {
    if (a === 'operator') {
      return (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown) =>
        h.app.inject({
          method,
          url,
          headers: bearer(h.operatorToken),
          ...(payload === undefined ? {} : { payload: payload as object }),
        });
    }
    const b = browsers.get(`${o.orgId}:${a}`)!;
    return (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown) => b.req(method, url, payload);
  };

  /** A device of `on`, bound by `binder`, visible to `dept` (placed directly: the bind rules are the other table). */
  const place = async (binder: Actor, dept: Dept): Promise<string> => {
    const sn = `PM${String(++n).padStart(5, '0')}`;
    await h.services.devices.register(SYSTEM_CLI, modelId, sn);
    await h.services.binding.bind(SYSTEM_CLI, sn, { type: 'org', id: on.orgId }, { visibleTo: { departments: [on.dept[dept]] } });
    if (binder !== 'operator') {
      await h.deps.db.kysely
        .updateTable('devices')
        .set({ bound_by: `user:${on.users[binder]}` })
        .where('sn', '=', sn)
        .execute();
    }
    return sn;
  };

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    const { models } = await vendorWithModels(h, [{ name: 'Clock', productKey: 'pkPM' }]);
    modelId = models.pkPM!;
    // These tables are about who may bind where, not proof of possession: the model takes typed SNs alone.
    await h.services.binding.putBindSettings(SYSTEM_CLI, modelId, {
      typedSnMode: 'sn_only',
      appKey: 'attendance',
      appName: 'Attendance',
    });
    await h.services.firmware.publishUrl(SYSTEM_CLI, modelId, {
      version: '2.0.0',
      download_url: 'https://files.example/fw-2.0.0.bin',
      md5sum: '0'.repeat(32),
      size: 1024,
      make_current: true,
    });
    on = await acmeOrg(h, 'pmon', { memberBinding: true });
    off = await acmeOrg(h, 'pmoff');
    await h.services.organisations.createApplication(SYSTEM_CLI, on.orgId, {
      appKey: 'attendance',
      name: 'Attendance',
      admins: [on.users.carol],
    });
    for (const [o, suffix] of [
      [on, 'pmon'],
      [off, 'pmoff'],
    ] as const) {
      for (const [a, u] of Object.entries({
        boss: 'boss',
        salesAdmin: 'salesadmin',
        engAdmin: 'engadmin',
        alice: 'alice',
        bob: 'bob',
        carol: 'carol',
        outsider: 'outsider',
      })) {
        browsers.set(`${o.orgId}:${a}`, await login(h.app, `${u}.${suffix}`, PASSWORD));
      }
    }
  });
  afterAll(async () => {
    await h?.close();
  });

  describe.each(MANAGE)('%s on a device bound by %s, visible to %s', (actor, binder, dept, allowed, why) => {
    it.skipIf(skip)(`${why}: may ${allowed.join(', ') || 'nothing'}`, async () => {
      const req = actorReq(on, actor);
      const sn = await place(binder, dept);
      // A device the actor may not see is "not found"; one they see but may not act on is "forbidden".
      const refused = allowed.includes('view') ? 403 : 404;
      const expectStatus = async (a: Action, r: { statusCode: number; body: string }, ok: number) =>
        expect(r.statusCode, `${a}: ${r.body}`).toBe(allowed.includes(a) ? ok : refused);

      const page = await req('GET', `/api/v1/devices/${sn}/page`);
      await expectStatus('view', page, 200);
      if (allowed.includes('view')) {
        expect(page.json().my_actions).toEqual(ALL.filter((a) => allowed.includes(a)));
        // Seed 004: admins with the binding permission are listed on the device page.
        expect(page.json().admins.map((x: { user_id: string }) => x.user_id)).toContain(on.users.boss);
      }
      await expectStatus('rename', await req('PUT', `/api/v1/devices/${sn}/remark-name`, { remark_name: 'Renamed' }), 200);
      await expectStatus('firmware_upgrade', await req('POST', `/api/v1/devices/${sn}/actions/upgrade-firmware`), 202);
      await expectStatus('reboot', await req('POST', `/api/v1/devices/${sn}/actions/reboot`), 202);
      await expectStatus('fetch_log', await req('POST', `/api/v1/devices/${sn}/actions/fetch-log`, { hint: 'main' }), 202);
      const unbound = await req('DELETE', `/api/v1/devices/${sn}/bind`);
      await expectStatus('unbind', unbound, 204);

      const d = await h.deps.db.kysely.selectFrom('devices').selectAll().where('sn', '=', sn).executeTakeFirstOrThrow();
      expect(d.owner_id === null).toBe(allowed.includes('unbind'));
      if (!allowed.includes('unbind')) expect(d.remark_name).toBe(allowed.includes('rename') ? 'Renamed' : null);
      // The actions' commands only: bind/unbind pushes are durable commands too (gateway/pushes.service.ts).
      const commands = await h.deps.db.kysely
        .selectFrom('device_commands')
        .select('cmd')
        .where('device_id', '=', d.id)
        .where('cmd', 'not in', ['push_bind_corp', 'push_unbind_corp'])
        .execute();
      expect(commands.map((c) => c.cmd).sort()).toEqual(
        [
          ...(allowed.includes('firmware_upgrade') ? ['push_update_firmware'] : []),
          ...(allowed.includes('reboot') ? ['push_restart_device'] : []),
          ...(allowed.includes('fetch_log') ? ['push_fetch_log'] : []),
        ].sort(),
      );
    });
  });

  describe.each(BIND)('%s binds (member binding %s, pick %j, app %s)', (actor, memberBinding, pick, app, expected, why) => {
    it.skipIf(skip)(`${why}: ${expected}`, async () => {
      const o = memberBinding ? on : off;
      const sn = `PB${String(++n).padStart(5, '0')}`;
      await h.services.devices.register(SYSTEM_CLI, modelId, sn);
      const visible_to = pick
        ? { departments: (pick.departments ?? []).map((d) => o.dept[d]), users: (pick.users ?? []).map((u) => who(o, u)) }
        : undefined;
      const r = await actorReq(o, actor)('POST', '/api/v1/bind', {
        sn,
        owner: { type: 'org', id: o.orgId },
        ...(visible_to ? { visible_to } : {}),
        ...(app ? { enable_app: true } : {}),
      });
      const d = await h.deps.db.kysely.selectFrom('devices').selectAll().where('sn', '=', sn).executeTakeFirstOrThrow();
      if (expected === 201) {
        expect(r.statusCode, r.body).toBe(201);
        expect(d.owner_id).toBe(o.orgId);
        const apps = await h.deps.db.kysely
          .selectFrom('device_apps')
          .innerJoin('applications', 'applications.id', 'device_apps.app_id')
          .select('applications.app_key')
          .where('device_apps.device_id', '=', d.id)
          .execute();
        expect(apps.map((a) => a.app_key)).toEqual(app ? ['attendance'] : []);
      } else {
        expect(r.statusCode, r.body).toBeGreaterThanOrEqual(400);
        expect(r.json().error.code).toBe(expected);
        // A refused bind leaves nothing behind.
        expect(d.owner_id).toBeNull();
        const vis = await h.deps.db.kysely.selectFrom('device_visibility').select('id').where('device_id', '=', d.id).execute();
        expect(vis).toHaveLength(0);
      }
    });
  });

  it.skipIf(skip)('the member-binding refusal says so in plain words', async () => {
    await h.services.devices.register(SYSTEM_CLI, modelId, 'PBWORDS');
    const r = await actorReq(off, 'alice')('POST', '/api/v1/bind', { sn: 'PBWORDS', owner: { type: 'org', id: off.orgId } });
    expect(r.statusCode).toBe(403);
    expect(r.json().error.message).toBe('This organisation does not let members bind devices; ask an admin to bind it');
  });

  it.skipIf(skip)(
    'only admins of the associated application manage it; everyone binds into their own personal space only',
    async () => {
      const sn = `PA${++n}`;
      await h.services.devices.register(SYSTEM_CLI, modelId, sn);
      const carol = actorReq(on, 'carol');
      expect(
        (await carol('POST', '/api/v1/bind', { sn, owner: { type: 'org', id: on.orgId }, enable_app: true })).statusCode,
      ).toBe(201);
      expect((await carol('GET', `/api/v1/devices/${sn}/page`)).json().my_actions).toContain('manage_app');
      expect((await actorReq(on, 'salesAdmin')('GET', `/api/v1/devices/${sn}/page`)).statusCode).toBe(404);
      const boss = (await actorReq(on, 'boss')('GET', `/api/v1/devices/${sn}/page`)).json();
      expect(boss.my_actions).toContain('manage_app');
      expect(boss.application).toMatchObject({ app_key: 'attendance' });

      const sn2 = `PA${++n}`;
      await h.services.devices.register(SYSTEM_CLI, modelId, sn2);
      const intoOther = await actorReq(on, 'outsider')('POST', '/api/v1/bind', {
        sn: sn2,
        owner: { type: 'user', id: on.users.alice },
      });
      expect(intoOther.statusCode).toBe(403);
      const own = await actorReq(on, 'outsider')('POST', '/api/v1/bind', {
        sn: sn2,
        owner: { type: 'user', id: on.users.outsider },
      });
      expect(own.statusCode).toBe(201);
      const page = (await actorReq(on, 'outsider')('GET', `/api/v1/devices/${sn2}/page`)).json();
      expect(page.my_actions).toEqual(ALL);
      expect((await actorReq(on, 'boss')('GET', `/api/v1/devices/${sn2}/page`)).statusCode).toBe(404);
    },
  );

  it.skipIf(skip)('lists follow the same rules: members see what they bound, device admins their scope', async () => {
    const inScope = await place('bob', 'salesEast');
    const outScope = await place('carol', 'eng');
    const list = async (a: Actor) => {
      const r = await actorReq(on, a)('GET', `/api/v1/orgs/${on.orgId}/devices?limit=200`);
      return (r.json().devices as Array<{ sn: string }>).map((d) => d.sn);
    };
    expect(await list('boss')).toEqual(expect.arrayContaining([inScope, outScope]));
    const sales = await list('salesAdmin');
    expect(sales).toContain(inScope);
    expect(sales).not.toContain(outScope);
    expect(await list('bob')).toContain(inScope);
    expect(await list('bob')).not.toContain(outScope);
    expect(await list('alice')).not.toContain(inScope);
    expect((await actorReq(on, 'outsider')('GET', `/api/v1/orgs/${on.orgId}/devices`)).statusCode).toBe(403);
    const mine = (await actorReq(on, 'carol')('GET', '/api/v1/me/devices?limit=200'))
      .json()
      .devices.map((d: { sn: string }) => d.sn);
    expect(mine).toContain(outScope);
    expect(mine).not.toContain(inScope);
  });
});
