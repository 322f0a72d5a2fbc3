import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { SYSTEM_CLI } from '../../shared/principal.js';
import type { Harness } from '../../testing/harness.js';
import { CSRF_HEADER, readCookie, SESSION_COOKIE } from './cookies.js';

/**
 * Test helpers for the people, organisation and binding suites: a browser-like client (session
 * cookie + CSRF header) over app.inject, and a small organisation with departments and people.
 */
export interface Browser {
  userId: string;
  cookie: string;
  csrf: string;
  /** inject() as this signed-in person; state-changing methods carry the CSRF header. */
  req(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, payload?: unknown): Promise<LightMyRequestResponse>;
}

/** The origin of the test harness's BINDERY_PUBLIC_URL: what a browser on the console sends. */
export const SITE_ORIGIN = 'https://bindery.test';

export async function login(app: FastifyInstance, username: string, password: string, ip = '127.0.0.1'): Promise<Browser> {
  const r = await app.inject({ method: 'POST', url: '/api/v1/session', payload: { username, password }, remoteAddress: ip });
  if (r.statusCode !== 201) throw new Error(`login ${username} failed: ${r.statusCode} ${r.body}`);
  const setCookie = ([] as string[]).concat(r.headers['set-cookie'] ?? []);
  const token = readCookie(setCookie.map((c) => c.split(';')[0]).join('; '), SESSION_COOKIE)!;
  const cookie = `${SESSION_COOKIE}=${token}`;
  const body = r.json() as { csrf_token: string; user: { id: string } };
  return {
    userId: body.user.id,
    cookie,
    csrf: body.csrf_token,
    req(method, url, payload?) {
      const o: InjectOptions = {
        method,
        url,
        remoteAddress: ip,
        // Like a browser: state-changing requests name their origin (the harness's public URL).
        headers: { cookie, ...(method === 'GET' ? {} : { [CSRF_HEADER]: body.csrf_token, origin: SITE_ORIGIN }) },
        ...(payload === undefined ? {} : { payload: payload as InjectOptions['payload'] }),
      };
      return app.inject(o);
    },
  };
}

export const PASSWORD = 'a long test password';

/** A vendor with one model (returned with its product key) per entry of `modes`. */
export async function vendorWithModels(
  h: Harness,
  models: Array<{ name: string; productKey: string; mode?: 'owner_only' | 'shared' | 'rotating'; checkChar?: boolean }>,
): Promise<{ vendorId: string; models: Record<string, string> }> {
  const v = await h.services.vendors.create(SYSTEM_CLI, { name: `Vendor ${models[0]?.productKey ?? ''}` });
  const out: Record<string, string> = {};
  for (const m of models) {
    const { model } = await h.services.models.create(SYSTEM_CLI, v.id, {
      name: m.name,
      product_key: m.productKey,
      binding_mode: m.mode ?? 'owner_only',
      require_check_char: m.checkChar ?? false,
    });
    out[m.productKey] = model.model_id;
  }
  return { vendorId: v.id, models: out };
}

/**
 * Organisation "Acme" with departments root → Sales → Sales East and root → Engineering, and:
 * boss (super admin), salesAdmin (device admin scoped to Sales), engAdmin (device admin scoped to
 * Engineering), alice and bob (members of Sales East / Sales), carol (member of Engineering), and
 * outsider (no membership). Member binding is off unless `memberBinding`.
 */
export interface OrgFixture {
  orgId: string;
  dept: { root: string; sales: string; salesEast: string; eng: string };
  users: Record<'boss' | 'salesAdmin' | 'engAdmin' | 'alice' | 'bob' | 'carol' | 'outsider', string>;
}

export async function acmeOrg(h: Harness, suffix: string, opts: { memberBinding?: boolean } = {}): Promise<OrgFixture> {
  const s = h.services;
  const mk = async (name: string) =>
    (await s.accounts.createUser(SYSTEM_CLI, { username: `${name}.${suffix}`, password: PASSWORD, displayName: name })).id;
  const users = {
    boss: await mk('boss'),
    salesAdmin: await mk('salesadmin'),
    engAdmin: await mk('engadmin'),
    alice: await mk('alice'),
    bob: await mk('bob'),
    carol: await mk('carol'),
    outsider: await mk('outsider'),
  };
  const { organisation } = await s.organisations.create(SYSTEM_CLI, {
    name: `Acme ${suffix}`,
    superAdmin: { userId: users.boss },
  });
  const boss = { kind: 'user' as const, userId: users.boss, isOperator: false };
  const root = (await s.organisations.listDepartments(boss, organisation.id))[0]!.id;
  const sales = (await s.organisations.createDepartment(boss, organisation.id, { name: 'Sales' })).id;
  const salesEast = (await s.organisations.createDepartment(boss, organisation.id, { name: 'Sales East', parentId: sales })).id;
  const eng = (await s.organisations.createDepartment(boss, organisation.id, { name: 'Engineering' })).id;
  const add = (userId: string, role: 'device_admin' | 'member', departmentId: string, scope?: string[]) =>
    join(h, boss, organisation.id, userId, { role, departmentId, scope });
  await add(users.salesAdmin, 'device_admin', sales, [sales]);
  await add(users.engAdmin, 'device_admin', eng, [eng]);
  await add(users.alice, 'member', salesEast);
  await add(users.bob, 'member', sales);
  await add(users.carol, 'member', eng);
  if (opts.memberBinding) await s.organisations.updateSettings(boss, organisation.id, { memberBinding: true });
  return { orgId: organisation.id, dept: { root, sales, salesEast, eng }, users };
}

/** `userId` joins the way people do: `by` invites them, they accept with their own session. */
export async function join(
  h: Harness,
  by: ReturnType<typeof asUser>,
  orgId: string,
  userId: string,
  input: { role: 'super_admin' | 'device_admin' | 'member'; departmentId?: string; scope?: string[] },
): Promise<void> {
  const { token } = await h.services.people.createInvite(by, orgId, input);
  await h.services.people.acceptInvite(token, asUser(userId));
}

export function asUser(userId: string) {
  return { kind: 'user' as const, userId, isOperator: false };
}
