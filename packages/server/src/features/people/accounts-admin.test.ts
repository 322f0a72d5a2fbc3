import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../shared/logger.js';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { bearer, type Harness, startHarness } from '../../testing/harness.js';
import { RESET_TTL_MS } from './password-resets.service.js';
import { acmeOrg, asUser, login, type OrgFixture, PASSWORD, SITE_ORIGIN } from './people.fixture.js';

const NEW_PASSWORD = 'a brand new password';

describe.each(storageBackends())('accounts administration on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let org: OrgFixture;
  let op: { authorization: string };

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    org = await acmeOrg(h, 'acc');
    op = bearer(h.operatorToken);
  });
  afterAll(async () => {
    await h?.close();
  });

  const post = (url: string, payload: unknown, headers: Record<string, string> = {}, ip = '127.0.0.1') =>
    h.app.inject({ method: 'POST', url, payload: payload as object, headers, remoteAddress: ip });
  const tokenOf = (url: string) => url.split('#')[1]!;

  it.skipIf(skip)(
    'an operator issues a one-time reset link; using it sets the password and ends every session and token',
    async () => {
      const alice = await login(h.app, 'alice.acc', PASSWORD);
      const script = await h.services.people.createToken(asUser(org.users.alice), 'script');
      const r = await post(`/api/v1/users/${org.users.alice}/password-reset`, {}, op);
      expect(r.statusCode).toBe(201);
      const { url, user, expires_at } = r.json();
      expect(url).toMatch(/^https:\/\/bindery\.test\/reset-password#[A-Za-z0-9_-]{40,}$/);
      expect(user).toMatchObject({ id: org.users.alice, username: 'alice.acc' });
      expect(Date.parse(expires_at) - h.clock.now()).toBe(RESET_TTL_MS);
      const token = tokenOf(url);
      // Stored as its hash only; the audit log holds neither token nor link.
      const rows = await h.deps.db.kysely.selectFrom('password_resets').selectAll().execute();
      expect(JSON.stringify(rows)).not.toContain(token);
      const auditRows = await h.deps.db.kysely
        .selectFrom('audit_log')
        .selectAll()
        .where('action', 'like', 'password_reset%')
        .execute();
      expect(auditRows.map((a) => a.action)).toEqual(['password_reset.issue']);
      expect(JSON.stringify(auditRows)).not.toContain(token);

      const preview = await post('/api/v1/password-resets/preview', { token });
      expect(preview.statusCode).toBe(200);
      expect(preview.json()).toEqual({ username: 'alice.acc', display_name: 'alice', expires_at });

      const weak = await post('/api/v1/password-resets/complete', { token, password: 'short' });
      expect(weak.statusCode).toBe(400);
      expect(weak.json().error.code).toBe('VALIDATION_FAILED');
      // Still the old password: a refused completion changes nothing and keeps the link.
      expect((await alice.req('GET', '/api/v1/me')).statusCode).toBe(200);

      const done = await post('/api/v1/password-resets/complete', { token, password: NEW_PASSWORD });
      expect(done.statusCode).toBe(200);
      expect(done.json()).toEqual({ username: 'alice.acc', sessions_ended: 1, tokens_revoked: 1 });
      expect((await alice.req('GET', '/api/v1/me')).statusCode).toBe(401);
      expect((await h.app.inject({ method: 'GET', url: '/api/v1/me', headers: bearer(script.token) })).statusCode).toBe(401);
      await expect(login(h.app, 'alice.acc', PASSWORD)).rejects.toThrow(/401/);
      await login(h.app, 'alice.acc', NEW_PASSWORD);

      const again = await post('/api/v1/password-resets/complete', { token, password: 'yet another password' });
      expect(again.statusCode).toBe(410);
      expect(again.json().error.code).toBe('RESET_LINK_INVALID');
      expect((await post('/api/v1/password-resets/preview', { token })).json().error.code).toBe('RESET_LINK_INVALID');
      const complete = await h.deps.db.kysely
        .selectFrom('audit_log')
        .selectAll()
        .where('action', '=', 'password_reset.complete')
        .execute();
      expect(complete).toHaveLength(1);
      expect(complete[0]!.org_id).toBeNull();
    },
  );

  it.skipIf(skip)('a link expires after 24 hours, and a newer one voids the older', async () => {
    const first = tokenOf((await post(`/api/v1/users/${org.users.bob}/password-reset`, {}, op)).json().url);
    const second = tokenOf((await post(`/api/v1/users/${org.users.bob}/password-reset`, {}, op)).json().url);
    expect((await post('/api/v1/password-resets/preview', { token: first })).statusCode).toBe(410);
    expect((await post('/api/v1/password-resets/preview', { token: second })).statusCode).toBe(200);
    h.clock.advance(RESET_TTL_MS);
    const late = await post('/api/v1/password-resets/complete', { token: second, password: NEW_PASSWORD });
    expect(late.json().error.code).toBe('RESET_LINK_INVALID');
    await login(h.app, 'bob.acc', PASSWORD);
  });

  it.skipIf(skip)(
    'a super admin resets members of their organisation, not operators or outsiders; device admins nobody',
    async () => {
      const boss = await login(h.app, 'boss.acc', PASSWORD);
      const ok = await boss.req('POST', `/api/v1/users/${org.users.carol}/password-reset`, {});
      expect(ok.statusCode).toBe(201);
      const auditRow = await h.deps.db.kysely
        .selectFrom('audit_log')
        .selectAll()
        .where('action', '=', 'password_reset.issue')
        .where('subject', '=', `user:${org.users.carol}`)
        .executeTakeFirstOrThrow();
      expect(auditRow.org_id).toBe(org.orgId);
      expect(auditRow.actor).toBe(`user:${org.users.boss}`);
      // The completion is recorded for the organisation too.
      await post('/api/v1/password-resets/complete', { token: tokenOf(ok.json().url), password: NEW_PASSWORD });
      const completed = await h.deps.db.kysely
        .selectFrom('audit_log')
        .selectAll()
        .where('action', '=', 'password_reset.complete')
        .where('subject', '=', `user:${org.users.carol}`)
        .executeTakeFirstOrThrow();
      expect(completed.org_id).toBe(org.orgId);

      expect((await boss.req('POST', `/api/v1/users/${org.users.outsider}/password-reset`, {})).statusCode).toBe(403);
      const root = await h.deps.db.kysely
        .selectFrom('users')
        .select('id')
        .where('username', '=', 'root')
        .executeTakeFirstOrThrow();
      // An operator who is also a member: their organisation's admins may not take their account over.
      await h.deps.db.kysely
        .insertInto('org_members')
        .values({ org_id: org.orgId, user_id: root.id, role: 'member', department_id: org.dept.root, created_at: h.clock.now() })
        .execute();
      expect((await boss.req('POST', `/api/v1/users/${root.id}/password-reset`, {})).statusCode).toBe(403);
      await h.deps.db.kysely.deleteFrom('org_members').where('org_id', '=', org.orgId).where('user_id', '=', root.id).execute();
      const sa = await login(h.app, 'salesadmin.acc', PASSWORD);
      expect((await sa.req('POST', `/api/v1/users/${org.users.bob}/password-reset`, {})).statusCode).toBe(403);
      const carolNow = await login(h.app, 'carol.acc', NEW_PASSWORD);
      expect((await carolNow.req('POST', `/api/v1/users/${org.users.bob}/password-reset`, {})).statusCode).toBe(403);
    },
  );

  it.skipIf(skip)('never logs the reset token or link', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const log = createLogger({ logLevel: 'info', nodeId: 't' }, sink);
    const { url } = await h.services.passwordResets.issue(SYSTEM_CLI, org.users.bob);
    const token = tokenOf(url);
    log.info({ url, reply: { url }, body: { token, password: NEW_PASSWORD } }, 'reset issued');
    log.info({ req: { method: 'POST', url: `/reset-password#${token}` } }, 'request');
    const out = lines.join('');
    expect(out).toContain('[redacted]');
    expect(out).not.toContain(token);
    expect(out).not.toContain(NEW_PASSWORD);
  });

  it.skipIf(skip)('operators list and search people, page through them and see one with their organisations', async () => {
    const all = await h.app.inject({ method: 'GET', url: '/api/v1/users?limit=3', headers: op });
    expect(all.statusCode).toBe(200);
    expect(all.json().users).toHaveLength(3);
    const names: string[] = all.json().users.map((u: { username: string }) => u.username);
    expect([...names].sort()).toEqual(names);
    const next = await h.app.inject({
      method: 'GET',
      url: `/api/v1/users?limit=3&cursor=${all.json().next_cursor}`,
      headers: op,
    });
    expect(next.json().users[0].username > names[2]!).toBe(true);

    // Display names match case-insensitively; LIKE wildcards are taken literally (dropped).
    const found = await h.app.inject({ method: 'GET', url: '/api/v1/users?q=SALESADMIN', headers: op });
    expect(found.json().users.map((u: { username: string }) => u.username)).toEqual(['salesadmin.acc']);
    const wild = await h.app.inject({ method: 'GET', url: '/api/v1/users?q=%25', headers: op });
    expect(wild.statusCode).toBe(200);

    const one = await h.app.inject({ method: 'GET', url: `/api/v1/users/${org.users.salesAdmin}`, headers: op });
    expect(one.json()).toMatchObject({
      username: 'salesadmin.acc',
      disabled: false,
      organisations: [{ id: org.orgId, role: 'device_admin', department: { id: org.dept.sales, name: 'Sales' } }],
    });
    await login(h.app, 'salesadmin.acc', PASSWORD);
    const seen = await h.app.inject({ method: 'GET', url: `/api/v1/users/${org.users.salesAdmin}`, headers: op });
    expect(seen.json().last_login_at).toBe(new Date(h.clock.now()).toISOString());
    expect(seen.json().active_sessions).toBeGreaterThan(0);

    const boss = await login(h.app, 'boss.acc', PASSWORD);
    expect((await boss.req('GET', '/api/v1/users')).statusCode).toBe(403);
    expect((await h.app.inject({ method: 'GET', url: '/api/v1/users/usr_nobody', headers: op })).statusCode).toBe(404);
  });

  it.skipIf(skip)('disabling ends sign-in, sessions and tokens; enabling lets the person back in', async () => {
    const eng = await login(h.app, 'engadmin.acc', PASSWORD);
    const tok = await h.services.people.createToken(asUser(org.users.engAdmin), 't');
    const off = await post(`/api/v1/users/${org.users.engAdmin}/disable`, {}, op);
    expect(off.statusCode).toBe(200);
    expect(off.json()).toMatchObject({ disabled: true, active_sessions: 0, active_tokens: 0 });
    expect((await eng.req('GET', '/api/v1/me')).statusCode).toBe(401);
    expect((await h.app.inject({ method: 'GET', url: '/api/v1/me', headers: bearer(tok.token) })).statusCode).toBe(401);
    const refused = await post('/api/v1/session', { username: 'engadmin.acc', password: PASSWORD });
    expect(refused.statusCode).toBe(403);
    expect(refused.json().error.code).toBe('ACCOUNT_DISABLED');
    // A wrong password still reads as one: the state is told only to someone who knows the password.
    const wrong = await post('/api/v1/session', { username: 'engadmin.acc', password: 'not the password' });
    expect(wrong.json().error.code).toBe('INVALID_CREDENTIALS');
    expect((await post('/api/v1/tokens', { username: 'engadmin.acc', password: PASSWORD })).statusCode).toBe(403);

    const on = await post(`/api/v1/users/${org.users.engAdmin}/enable`, {}, op);
    expect(on.json().disabled).toBe(false);
    await login(h.app, 'engadmin.acc', PASSWORD);
    const audits = await h.deps.db.kysely
      .selectFrom('audit_log')
      .select('action')
      .where('subject', '=', `user:${org.users.engAdmin}`)
      .where('action', 'in', ['user.disable', 'user.enable'])
      .orderBy('id')
      .execute();
    expect(audits.map((a) => a.action)).toEqual(['user.disable', 'user.enable']);
  });

  it.skipIf(skip)('nobody disables themselves or the last enabled operator', async () => {
    const rootId = (
      await h.deps.db.kysely.selectFrom('users').select('id').where('username', '=', 'root').executeTakeFirstOrThrow()
    ).id;
    const self = await post(`/api/v1/users/${rootId}/disable`, {}, op);
    expect(self.statusCode).toBe(409);
    expect(self.json().error.code).toBe('CANNOT_DISABLE_SELF');
    const { user: op2, token: op2Token } = await h.services.accounts.createOperator(SYSTEM_CLI, {
      username: 'op2.acc',
      password: PASSWORD,
    });
    expect((await post(`/api/v1/users/${rootId}/disable`, {}, bearer(op2Token))).statusCode).toBe(200);
    // op2 is now the only enabled operator: even the CLI may not disable them.
    await expect(h.services.directory.disable(SYSTEM_CLI, op2.id)).rejects.toMatchObject({ code: 'LAST_OPERATOR' });
    expect((await post(`/api/v1/users/${rootId}/enable`, {}, bearer(op2Token))).statusCode).toBe(200);
    // Root's token was revoked by the disable; later tests use a fresh one.
    op = bearer(await h.services.accounts.createUserToken(rootId, 'again'));
    expect((await post(`/api/v1/users/${op2.id}/disable`, {}, op)).statusCode).toBe(200);
  });

  it.skipIf(skip)('self sign-up is closed by default; an operator opens it; a new person signs up and is signed in', async () => {
    expect((await h.app.inject({ method: 'GET', url: '/api/v1/instance/public' })).json()).toEqual({ signup_open: false });
    const closed = await post('/api/v1/signup', { username: 'selfie.acc', password: PASSWORD });
    expect(closed.statusCode).toBe(403);
    expect(closed.json().error.code).toBe('SIGNUP_CLOSED');

    const boss = await login(h.app, 'boss.acc', PASSWORD);
    expect((await boss.req('PATCH', '/api/v1/instance/settings', { self_signup: true })).statusCode).toBe(403);
    const open = await h.app.inject({
      method: 'PATCH',
      url: '/api/v1/instance/settings',
      headers: op,
      payload: { self_signup: true },
    });
    expect(open.json()).toEqual({ self_signup: true });
    expect((await h.app.inject({ method: 'GET', url: '/api/v1/instance/settings', headers: op })).json()).toEqual({
      self_signup: true,
    });
    expect((await h.app.inject({ method: 'GET', url: '/api/v1/instance/public' })).json()).toEqual({ signup_open: true });

    const r = await post(
      '/api/v1/signup',
      { username: 'Selfie.acc', password: PASSWORD, display_name: 'Selfie' },
      { origin: SITE_ORIGIN },
      '10.9.9.1',
    );
    expect(r.statusCode).toBe(201);
    expect(r.json().user).toMatchObject({ username: 'selfie.acc', display_name: 'Selfie', is_operator: false });
    const cookie = ([] as string[])
      .concat(r.headers['set-cookie'] ?? [])
      .find((c) => c.startsWith('bindery_session='))!
      .split(';')[0]!;
    const me = await h.app.inject({ method: 'GET', url: '/api/v1/me', headers: { cookie } });
    expect(me.json()).toMatchObject({ user: { username: 'selfie.acc' }, personal_space: { type: 'user' }, organisations: [] });
    const dup = await post('/api/v1/signup', { username: 'selfie.acc', password: PASSWORD }, {}, '10.9.9.1');
    expect(dup.json().error.code).toBe('ALREADY_EXISTS');
    const weak = await post('/api/v1/signup', { username: 'weak.acc', password: 'short' }, {}, '10.9.9.1');
    expect(weak.json().error.code).toBe('VALIDATION_FAILED');

    // Ten a hour from one address.
    const codes: number[] = [];
    for (let i = 0; i < 8; i++)
      codes.push((await post('/api/v1/signup', { username: `x${i}`, password: 'short' }, {}, '10.9.9.1')).statusCode);
    expect(codes.slice(0, 7).every((c) => c === 400)).toBe(true);
    expect(codes[7]).toBe(429);
    const elsewhere = await post('/api/v1/signup', { username: 'other.acc', password: PASSWORD }, {}, '10.9.9.2');
    expect(elsewhere.statusCode).toBe(201);

    await h.app.inject({ method: 'PATCH', url: '/api/v1/instance/settings', headers: op, payload: { self_signup: false } });
    expect((await post('/api/v1/signup', { username: 'late.acc', password: PASSWORD }, {}, '10.9.9.3')).statusCode).toBe(403);
  });

  it.skipIf(skip)('signing out everywhere ends every session of the person, this one included', async () => {
    const a = await login(h.app, 'bob.acc', PASSWORD);
    const b = await login(h.app, 'bob.acc', PASSWORD);
    const other = await login(h.app, 'alice.acc', NEW_PASSWORD);
    const r = await a.req('DELETE', '/api/v1/me/sessions');
    expect(r.statusCode).toBe(200);
    expect(r.json().sessions_ended).toBeGreaterThanOrEqual(2);
    expect(([] as string[]).concat(r.headers['set-cookie'] ?? []).join()).toMatch(/bindery_session=;.*Max-Age=0/);
    expect((await a.req('GET', '/api/v1/me')).statusCode).toBe(401);
    expect((await b.req('GET', '/api/v1/me')).statusCode).toBe(401);
    expect((await other.req('GET', '/api/v1/me')).statusCode).toBe(200);
  });
});
