import { SYSTEM_CLI } from '../../src/shared/principal.js';
import { PASSWORD, USERS, type Who } from './authz-matrix.fixture.js';
import type { Ctx, Req, Row } from './authz-matrix.rows.js';

/** The matrix, continued: account administration (issue 12) — people, reset links, sign-up, instance settings. */
const OP: readonly Who[] = ['operator'];
const json = (url: string, payload: unknown): Req => ({ url, payload });
const get = (url: string): Req => ({ url });
/** A person nobody else in the world depends on, for rows that disable or reset someone. */
const throwaway = async (c: Ctx) =>
  (await c.w.h.services.accounts.createUser(SYSTEM_CLI, { username: `t${c.w.next().toLowerCase()}`, password: PASSWORD })).id;
const resetLink = async (c: Ctx) =>
  (await c.w.h.services.passwordResets.issue(SYSTEM_CLI, await throwaway(c))).url.split('#')[1]!;

export const ACCOUNTS_ROWS: Row[] = [
  { op: 'GET /api/v1/users', allow: OP, req: () => get('/api/v1/users?q=matrix') },
  { op: 'GET /api/v1/users/{id}', allow: OP, req: ({ w }) => get(`/api/v1/users/${w.userIds.member2}`) },
  { op: 'POST /api/v1/users/{id}/disable', allow: OP, req: async (c) => json(`/api/v1/users/${await throwaway(c)}/disable`, {}) },
  {
    op: 'POST /api/v1/users/{id}/enable',
    allow: OP,
    req: async (c) => {
      const id = await throwaway(c);
      await c.w.h.services.directory.disable(SYSTEM_CLI, id);
      return json(`/api/v1/users/${id}/enable`, {});
    },
  },
  {
    // Member 1 belongs to organisation 1: its super admin may reset them, its device admin may not.
    op: 'POST /api/v1/users/{id}/password-reset',
    allow: ['operator', 'superAdmin'],
    req: ({ w }) => json(`/api/v1/users/${w.userIds.member1}/password-reset`, {}),
  },
  {
    op: 'POST /api/v1/password-resets/preview',
    allow: 'public',
    req: async (c) => json('/api/v1/password-resets/preview', { token: await resetLink(c) }),
  },
  {
    op: 'POST /api/v1/password-resets/complete',
    allow: 'public',
    req: async (c) => json('/api/v1/password-resets/complete', { token: await resetLink(c), password: PASSWORD }),
  },
  {
    // Open only while an operator has turned sign-up on: on for the request, off again after.
    op: 'POST /api/v1/signup',
    allow: 'public',
    req: async ({ w }) => {
      await w.h.services.instanceSettings.update(SYSTEM_CLI, { self_signup: true });
      return json('/api/v1/signup', { username: `s${w.next().toLowerCase()}`, password: PASSWORD });
    },
    after: async ({ w }) => {
      await w.h.services.instanceSettings.update(SYSTEM_CLI, { self_signup: false });
    },
  },
  // Ends console sessions only; the matrix's principals use Bearer tokens, which stay.
  { op: 'DELETE /api/v1/me/sessions', allow: USERS, req: () => get('/api/v1/me/sessions') },
  { op: 'GET /api/v1/instance/settings', allow: OP, req: () => get('/api/v1/instance/settings') },
  { op: 'PATCH /api/v1/instance/settings', allow: OP, req: () => json('/api/v1/instance/settings', { self_signup: false }) },
  { op: 'GET /api/v1/instance/public', allow: 'public', req: () => get('/api/v1/instance/public') },
];
