import { randomBytes } from 'node:crypto';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { FlexibleRateLimiter } from '../../src/adapters/ratelimit/flexible-limiter.js';
import { buildApp } from '../../src/app.js';
import { CSRF_COOKIE, readCookie, SESSION_COOKIE } from '../../src/features/people/cookies.js';
import { sha256Hex } from '../../src/shared/ids.js';
import { dummyPasswordHash, kdf } from '../../src/shared/passwords.js';
import { SYSTEM_CLI } from '../../src/shared/principal.js';
import { deleteRedisPrefix, redisUrl, skipReasonRedis, sqliteBackend, storageBackends } from '../../src/testing/backends.js';
import { bearer, type Harness, startHarness } from '../../src/testing/harness.js';

/**
 * Issue 11, finding 2 (password guessing) and the CSRF half of finding 10, through the real app:
 * one credential check behind POST /api/v1/session, POST /api/v1/tokens and the password change;
 * lockouts per account, per account from one address and per address, also across processes on
 * Redis; unknown usernames cost the same scrypt; a password change ends tokens and sessions.
 */
const PASSWORD = 'the right password';
/** The harness's BINDERY_PUBLIC_URL: cookie requests that change state must name it (the gate). */
const ORIGIN = 'https://bindery.test';

function postTokens(app: FastifyInstance, username: string, password: string, ip: string) {
  return app.inject({ method: 'POST', url: '/api/v1/tokens', payload: { username, password }, remoteAddress: ip });
}

function postSession(app: FastifyInstance, username: string, password: string, ip: string) {
  return app.inject({ method: 'POST', url: '/api/v1/session', payload: { username, password }, remoteAddress: ip });
}

interface SignedIn {
  cookie: string;
  csrf: string;
  req(method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object): Promise<LightMyRequestResponse>;
}

async function signIn(app: FastifyInstance, username: string, password: string, ip: string): Promise<SignedIn> {
  const r = await postSession(app, username, password, ip);
  expect(r.statusCode).toBe(201);
  const setCookie = ([] as string[]).concat(r.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]);
  const token = readCookie(setCookie.join('; '), SESSION_COOKIE)!;
  const csrf = readCookie(setCookie.join('; '), CSRF_COOKIE)!;
  expect(r.json().csrf_token).toBe(csrf);
  const cookie = `${SESSION_COOKIE}=${token}`;
  return {
    cookie,
    csrf,
    req(method, url, payload) {
      const o: InjectOptions = {
        method,
        url,
        remoteAddress: ip,
        headers: { cookie, ...(method === 'GET' ? {} : { 'x-csrf-token': csrf, origin: ORIGIN }) },
        ...(payload ? { payload } : {}),
      };
      return app.inject(o);
    },
  };
}

let userNo = 0;
async function newUser(h: Harness, tag: string): Promise<string> {
  const username = `${tag}.${++userNo}`;
  await h.services.accounts.createUser(SYSTEM_CLI, { username, password: PASSWORD });
  return username;
}

describe.each(storageBackends())('credentials (issue 11) on $backend.name', ({ backend, skip }) => {
  let h: Harness;

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
  });
  afterAll(async () => {
    await h?.close();
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it.skipIf(skip)(
    'finding 2: POST /api/v1/tokens locks an account after 10 wrong passwords, even for the right one after',
    async () => {
      const who = await newUser(h, 'tok');
      // One guess per address, so only the per-account count can lock (it used to take 60 and answer 201).
      for (let i = 1; i <= 9; i++) {
        const r = await postTokens(h.app, who, `guess ${i}`, `10.1.0.${i}`);
        expect(r.statusCode).toBe(401);
        expect(r.json().error.code).toBe('INVALID_CREDENTIALS');
      }
      const tenth = await postTokens(h.app, who, 'guess 10', '10.1.0.10');
      expect(tenth.statusCode).toBe(429);
      expect(tenth.json().error.code).toBe('LOCKED_OUT');
      expect(Number(tenth.headers['retry-after'])).toBeGreaterThan(14 * 60);
      const right = await postTokens(h.app, who, PASSWORD, '10.1.0.11');
      expect(right.statusCode).toBe(429);
      expect(right.json()).not.toHaveProperty('token');
    },
  );

  it.skipIf(skip)('finding 2: the account lock is shared between /api/v1/session and /api/v1/tokens', async () => {
    const who = await newUser(h, 'shared');
    for (let i = 1; i <= 5; i++) expect((await postSession(h.app, who, `guess ${i}`, `10.2.0.${i}`)).statusCode).toBe(401);
    for (let i = 6; i <= 9; i++) expect((await postTokens(h.app, who, `guess ${i}`, `10.2.0.${i}`)).statusCode).toBe(401);
    expect((await postTokens(h.app, who, 'guess 10', '10.2.0.10')).statusCode).toBe(429);
    expect((await postSession(h.app, who, PASSWORD, '10.2.0.11')).statusCode).toBe(429);
    expect((await postTokens(h.app, who, PASSWORD, '10.2.0.12')).statusCode).toBe(429);
  });

  it.skipIf(skip)(
    'finding 2: one address is locked out of an account after 5 wrong passwords; a success there resets that count',
    async () => {
      const who = await newUser(h, 'pair');
      const ip = '10.3.0.1';
      for (let i = 1; i <= 4; i++) expect((await postTokens(h.app, who, `guess ${i}`, ip)).statusCode).toBe(401);
      expect((await postSession(h.app, who, PASSWORD, ip)).statusCode).toBe(201);
      // Counted afresh after the success: four more are still answered.
      for (let i = 5; i <= 8; i++) expect((await postTokens(h.app, who, `guess ${i}`, ip)).statusCode).toBe(401);
      const fifth = await postTokens(h.app, who, 'guess 9', ip);
      expect(fifth.statusCode).toBe(429);
      expect(fifth.headers['retry-after']).toBeDefined();
      expect((await postSession(h.app, who, PASSWORD, ip)).statusCode).toBe(429);

      // Another account's owner elsewhere is not held up by this address's guesses at an account.
      const other = await newUser(h, 'pair');
      for (let i = 1; i <= 4; i++) expect((await postTokens(h.app, other, `guess ${i}`, '10.3.0.2')).statusCode).toBe(401);
      expect((await postTokens(h.app, other, 'guess 5', '10.3.0.2')).statusCode).toBe(429);
      expect((await postTokens(h.app, other, PASSWORD, '10.3.0.3')).statusCode).toBe(201);
    },
  );

  it.skipIf(skip)('finding 2: unknown and known usernames both cost one scrypt (the dummy hash), and both count', async () => {
    const who = await newUser(h, 'known');
    const derive = vi.spyOn(kdf, 'derive');
    const known = await postTokens(h.app, who, 'wrong password', '10.4.0.1');
    expect(known.statusCode).toBe(401);
    expect(derive).toHaveBeenCalledTimes(1);
    derive.mockClear();
    const unknown = await postTokens(h.app, 'nobody.here', 'wrong password', '10.4.0.2');
    expect(unknown.json().error).toEqual(known.json().error);
    expect(derive).toHaveBeenCalledTimes(1);
    // …with the dummy hash's own salt and parameters: the same work as a real check.
    const [, , , , salt] = (await dummyPasswordHash()).split('$');
    expect(derive.mock.calls[0]![1].toString('base64url')).toBe(salt);
    expect(derive.mock.calls[0]![3]).toEqual({ N: 16384, r: 8, p: 1 });
    derive.mockRestore();

    // The lock does not tell them apart either: an unknown name locks after 10 failures too.
    for (let i = 2; i <= 9; i++) expect((await postTokens(h.app, 'nobody.here', `g${i}`, `10.4.1.${i}`)).statusCode).toBe(401);
    expect((await postTokens(h.app, 'nobody.here', 'g10', '10.4.1.10')).statusCode).toBe(429);
  });

  it.skipIf(skip)('finding 2: parallel guesses cannot slip past the lock (each is counted before it is checked)', async () => {
    const who = await newUser(h, 'burst');
    const derive = vi.spyOn(kdf, 'derive');
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) => postTokens(h.app, who, `guess ${i}`, `10.5.0.${i + 1}`)),
    );
    const codes = answers.map((r) => r.statusCode);
    // Ten guesses are checked (the tenth wrong one locks the account); twenty never reach scrypt.
    expect(codes.filter((c) => c === 401)).toHaveLength(9);
    expect(codes.filter((c) => c === 429)).toHaveLength(21);
    expect(derive).toHaveBeenCalledTimes(10);
    const right = await postTokens(h.app, who, PASSWORD, '10.5.1.1');
    expect(right.statusCode).toBe(429);
    expect(right.json().error.code).toBe('LOCKED_OUT');
  });

  it.skipIf(skip)('finding 2: a burst of right passwords (a script in parallel) is slowed, never locked out', async () => {
    const who = await newUser(h, 'script');
    const answers = await Promise.all(Array.from({ length: 12 }, () => postTokens(h.app, who, PASSWORD, '10.5.2.1')));
    const codes = answers.map((r) => r.statusCode);
    // At most five attempts of one account from one address are in flight; the rest are asked to retry.
    expect(codes.filter((c) => c === 201).length).toBeGreaterThanOrEqual(5);
    for (const r of answers.filter((x) => x.statusCode === 429)) {
      expect(r.json().error.code).toBe('RATE_LIMITED');
      expect(r.headers['retry-after']).toBe('1');
    }
    expect((await postTokens(h.app, who, PASSWORD, '10.5.2.1')).statusCode).toBe(201);
  });

  it.skipIf(skip)(
    "finding 2: a password change revokes the user's API tokens and other sessions, and keeps this session",
    async () => {
      const who = await newUser(h, 'change');
      const ip = '10.6.0.1';
      const exchanged = (await postTokens(h.app, who, PASSWORD, ip)).json().token as string;
      const here = await signIn(h.app, who, PASSWORD, ip);
      const elsewhere = await signIn(h.app, who, PASSWORD, '10.6.0.2');
      const personal = (await here.req('POST', '/api/v1/me/tokens', { name: 'script' })).json().token as string;
      for (const t of [exchanged, personal]) {
        expect((await h.app.inject({ method: 'GET', url: '/api/v1/me', headers: bearer(t) })).statusCode).toBe(200);
      }

      const changed = await here.req('POST', '/api/v1/me/password', {
        current_password: PASSWORD,
        new_password: 'a brand new password',
      });
      expect(changed.statusCode).toBe(204);
      for (const t of [exchanged, personal]) {
        expect((await h.app.inject({ method: 'GET', url: '/api/v1/me', headers: bearer(t) })).statusCode).toBe(401);
      }
      expect((await elsewhere.req('GET', '/api/v1/me')).statusCode).toBe(401);
      expect((await here.req('GET', '/api/v1/me')).statusCode).toBe(200);
      const listed = (await here.req('GET', '/api/v1/me/tokens')).json().tokens as Array<{ revoked_at: string | null }>;
      expect(listed).toHaveLength(2);
      expect(listed.every((t) => t.revoked_at !== null)).toBe(true);

      // Opting out keeps the tokens (sessions elsewhere still end).
      const kept = (await postTokens(h.app, who, 'a brand new password', ip)).json().token as string;
      const again = await here.req('POST', '/api/v1/me/password', {
        current_password: 'a brand new password',
        new_password: 'yet another password',
        keep_tokens: true,
      });
      expect(again.statusCode).toBe(204);
      expect((await h.app.inject({ method: 'GET', url: '/api/v1/me', headers: bearer(kept) })).statusCode).toBe(200);
    },
  );

  it.skipIf(skip)('finding 2: wrong current passwords on a password change count towards the same lock', async () => {
    const who = await newUser(h, 'current');
    const ip = '10.7.0.1';
    const s = await signIn(h.app, who, PASSWORD, ip);
    for (let i = 1; i <= 4; i++) {
      const r = await s.req('POST', '/api/v1/me/password', { current_password: `guess ${i}`, new_password: 'a new password!' });
      expect(r.statusCode).toBe(401);
    }
    const fifth = await s.req('POST', '/api/v1/me/password', { current_password: 'guess 5', new_password: 'a new password!' });
    expect(fifth.statusCode).toBe(429);
    expect((await postTokens(h.app, who, PASSWORD, ip)).statusCode).toBe(429);
  });

  it.skipIf(skip)('finding 2: API tokens are listed by their owner with created and last-used times, and revocable', async () => {
    const who = await newUser(h, 'list');
    const r = await postTokens(h.app, who, PASSWORD, '10.8.0.1');
    expect(r.statusCode).toBe(201);
    const { token, id } = r.json() as { token: string; id: string };
    const list = await h.app.inject({ method: 'GET', url: '/api/v1/tokens', headers: bearer(token) });
    expect(list.statusCode).toBe(200);
    const mine = (list.json().tokens as Array<Record<string, unknown>>).find((t) => t.id === id)!;
    expect(mine).toMatchObject({ name: 'api', revoked_at: null });
    expect(typeof mine.created_at).toBe('string');
    expect(typeof mine.last_used_at).toBe('string'); // this very request used it
    expect(Object.values(mine)).not.toContain(token);
    // Another user sees none of them and cannot revoke them.
    const stranger = (await postTokens(h.app, await newUser(h, 'list'), PASSWORD, '10.8.0.2')).json().token as string;
    const theirs = (await h.app.inject({ method: 'GET', url: '/api/v1/tokens', headers: bearer(stranger) })).json();
    expect((theirs.tokens as Array<{ id: string }>).map((t) => t.id)).not.toContain(id);
    const steal = await h.app.inject({ method: 'DELETE', url: `/api/v1/tokens/${id}`, headers: bearer(stranger) });
    expect(steal.statusCode).toBe(403);
    const revoke = await h.app.inject({ method: 'DELETE', url: `/api/v1/tokens/${id}`, headers: bearer(token) });
    expect(revoke.statusCode).toBe(204);
    expect((await h.app.inject({ method: 'GET', url: '/api/v1/tokens', headers: bearer(token) })).statusCode).toBe(401);
  });

  it.skipIf(skip)('finding 10: the CSRF token is stored only as its SHA-256, and still checked', async () => {
    const who = await newUser(h, 'csrf');
    const s = await signIn(h.app, who, PASSWORD, '10.9.0.1');
    const rows = await h.deps.db.kysely
      .selectFrom('sessions')
      .innerJoin('users', 'users.id', 'sessions.user_id')
      .selectAll('sessions')
      .where('users.username', '=', who)
      .execute();
    expect(rows).toHaveLength(1);
    const stored = JSON.stringify(rows[0]);
    expect(stored).not.toContain(s.csrf);
    expect(rows[0]!.csrf_hash).toBe(sha256Hex(s.csrf));
    // A later request still gets the token back for the console, and the hash is no token.
    expect((await s.req('GET', '/api/v1/session')).json().csrf_token).toBe(s.csrf);
    expect((await s.req('POST', '/api/v1/me/tokens', { name: 'ok' })).statusCode).toBe(201);
    const withHash = await h.app.inject({
      method: 'POST',
      url: '/api/v1/me/tokens',
      remoteAddress: '10.9.0.1',
      headers: { cookie: s.cookie, origin: ORIGIN, 'x-csrf-token': rows[0]!.csrf_hash },
      payload: { name: 'forged' },
    });
    expect(withHash.statusCode).toBe(403);
    expect(withHash.json().error.code).toBe('CSRF_FAILED');
  });
});

describe('credentials across two processes on Redis (issue 11)', () => {
  const skip = skipReasonRedis();
  const prefix = `bindery_t_${randomBytes(6).toString('hex')}`;

  it.skipIf(skip)('finding 2: the account lock holds across two processes sharing Redis', async () => {
    const h = await startHarness(sqliteBackend, { limiter: FlexibleRateLimiter.redis(new Redis(redisUrl!), prefix, true) });
    const secondLimiter = FlexibleRateLimiter.redis(new Redis(redisUrl!), prefix, true);
    const second = (await buildApp({ ...h.deps, limiter: secondLimiter })).app;
    try {
      await second.ready();
      const who = await newUser(h, 'cluster');
      // Five guesses on each process, each from its own address: only the shared account count locks.
      for (let i = 1; i <= 5; i++) expect((await postTokens(h.app, who, `g${i}`, `10.10.1.${i}`)).statusCode).toBe(401);
      for (let i = 1; i <= 4; i++) expect((await postSession(second, who, `g${i}`, `10.10.2.${i}`)).statusCode).toBe(401);
      expect((await postTokens(second, who, 'g10', '10.10.2.5')).statusCode).toBe(429);
      expect((await postSession(h.app, who, PASSWORD, '10.10.1.9')).statusCode).toBe(429);
      expect((await postTokens(second, who, PASSWORD, '10.10.2.9')).statusCode).toBe(429);
    } finally {
      await second.close();
      await secondLimiter.close();
      await h.close();
      await deleteRedisPrefix(prefix);
    }
  });
});
