import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { WsErr } from '@bindery/protocol';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as m011 from '../../src/adapters/storage/migrations/011_at_rest.js';
import { loadConfig } from '../../src/config.js';
import { type GatewayHarness, startGatewayHarness } from '../../src/features/gateway/gateway.testkit.js';
import { registerBody, WireDevice } from '../../src/features/gateway/wire-device.js';
import { redactUrl } from '../../src/http/redact.js';
import { createLogger } from '../../src/shared/logger.js';
import { SYSTEM_CLI } from '../../src/shared/principal.js';
import { storageBackends } from '../../src/testing/backends.js';
import { killChildren, startServer, stopServer } from '../support/processes.js';

/**
 * Issue 11, finding 10: secrets at rest. File modes of the data directory, the master key kept
 * off the data volume, active codes stored only as their SHA-256 (plus a sealed copy), log
 * redaction by key name, and the get_model_token reply shape.
 */
const SLOW = 180_000;
const mode = (p: string) => statSync(p).mode & 0o777;
const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

describe('finding 10: the data directory and the master key on disk', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'bindery-rest-'));
  const keyDir = mkdtempSync(path.join(tmpdir(), 'bindery-key-'));
  afterAll(() => {
    killChildren();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(keyDir, { recursive: true, force: true });
  });

  it(
    'finding 10: the data directory is 0700 and every file in it 0600 (older ones narrowed at start); BINDERY_MASTER_KEY_FILE keeps the key elsewhere',
    async () => {
      // What an older version left: a world-readable directory, log and database.
      chmodSync(dataDir, 0o755);
      const logDir = path.join(dataDir, 'device-logs', '1');
      mkdirSync(logDir, { recursive: true, mode: 0o755 });
      chmodSync(path.join(dataDir, 'device-logs'), 0o755);
      const oldLog = path.join(logDir, 'log_old.log');
      writeFileSync(oldLog, 'old log', { mode: 0o644 });
      chmodSync(oldLog, 0o644);
      const keyFile = path.join(keyDir, 'keys', 'master.key');

      const server = await startServer({
        BINDERY_DATA_DIR: dataDir,
        BINDERY_MASTER_KEY_FILE: keyFile,
        BINDERY_PUBLIC_URL: 'https://bindery.test',
      });
      try {
        expect(mode(dataDir)).toBe(0o700);
        expect(mode(path.join(dataDir, 'device-logs'))).toBe(0o700);
        expect(mode(logDir)).toBe(0o700);
        expect(mode(oldLog)).toBe(0o600);
        const db = path.join(dataDir, 'bindery.sqlite');
        for (const f of [db, `${db}-wal`, `${db}-shm`]) {
          expect(existsSync(f), f).toBe(true);
          expect(mode(f), f).toBe(0o600);
        }
        // The key is where it was asked to be, private, and not beside the database.
        expect(mode(keyFile)).toBe(0o600);
        expect(mode(path.dirname(keyFile))).toBe(0o700);
        expect(existsSync(path.join(dataDir, 'master.key'))).toBe(false);
      } finally {
        await stopServer(server);
      }
    },
    SLOW,
  );

  it('finding 10: BINDERY_MASTER_KEY_FILE is refused together with BINDERY_MASTER_KEY', () => {
    expect(() =>
      loadConfig({ BINDERY_MASTER_KEY_FILE: '/etc/bindery/key', BINDERY_MASTER_KEY: randomBytes(32).toString('hex') }),
    ).toThrow(/BINDERY_MASTER_KEY or BINDERY_MASTER_KEY_FILE/);
    expect(loadConfig({ BINDERY_DATA_DIR: '/srv/data' }).masterKeyFile).toBe('/srv/data/master.key');
    expect(loadConfig({ BINDERY_MASTER_KEY_FILE: '/etc/bindery/key' }).masterKeyFile).toBe('/etc/bindery/key');
  });
});

describe.each(storageBackends())('finding 10: active codes at rest on $backend.name', ({ backend, skip }) => {
  let g: GatewayHarness;
  const wires: WireDevice[] = [];
  const connect = async () => {
    const d = await WireDevice.connect(g.url);
    wires.push(d);
    return d;
  };
  const row = (sn: string) =>
    g.h.deps.db.kysely.selectFrom('devices').selectAll().where('sn_key', '=', sn.toLowerCase()).executeTakeFirstOrThrow();

  beforeAll(async () => {
    if (!skip) g = await startGatewayHarness(backend);
  });
  afterAll(async () => {
    await Promise.all(wires.map((d) => d.close()));
    await g?.close();
  });

  it.skipIf(skip)(
    'finding 10: the active_code is not in the database in clear, and a device still authenticates with it',
    async () => {
      const sn = 'REST00001';
      const secretNo = await g.addDevice(sn);
      const d = await connect();
      const reg = await d.request('register', registerBody(sn, secretNo, g.nowSec()));
      expect(reg.errcode).toBe(0);
      const code = reg.body!.active_code as string;
      expect(code).toMatch(/^[\w-]{64}$/);
      const stored = await row(sn);
      // Nowhere in the device's row, in any column.
      for (const [col, v] of Object.entries(stored)) expect(String(v).includes(code), col).toBe(false);
      expect(stored.active_code).toBe(sha256(code));

      // `active` on a fresh connection finds the device by the code's hash (P-CMD-active-4) …
      const e = await connect();
      expect((await e.request('active', { active_code: code })).errcode).toBe(WsErr.NOT_YET_BOUND);
      expect((await e.request('active', { active_code: `${code.slice(0, -1)}x` })).errcode).toBe(WsErr.INVALID_ACTIVE_CODE);
      await g.bind(sn);
      // (e took the device over from d: the newest connection wins, P-CL-4.)
      const act = await e.request('active', { active_code: code });
      expect(act.errcode).toBe(0);
      expect(typeof act.body!.secret).toBe('string');
      // … and `register` answers the same code again (P-CMD-register-4).
      const f = await connect();
      const again = await f.request('register', registerBody(sn, secretNo, g.nowSec()));
      expect(again.body!.active_code).toBe(code);
    },
  );

  it.skipIf(skip)(
    'finding 10: migration 011 hashes codes stored in clear; such a device keeps working and gets a sealed code at its next register',
    async () => {
      const sn = 'REST00002';
      const secretNo = await g.addDevice(sn);
      const legacy = randomBytes(48).toString('base64url');
      const db = g.h.deps.db.kysely;
      // The row as it was before 011: the code in clear, no sealed copy.
      await db.updateTable('devices').set({ active_code: legacy, active_code_enc: null }).where('sn', '=', sn).execute();
      // 011's data step, on a table that already has its column: re-create the pre-011 shape first.
      await sql`ALTER TABLE devices DROP COLUMN active_code_enc`.execute(db);
      await m011.up(db as never, g.h.deps.db.caps);
      expect((await row(sn)).active_code).toBe(sha256(legacy));
      expect((await row(sn)).active_code_enc).toBeNull();

      const d = await connect();
      expect((await d.request('active', { active_code: legacy })).errcode).toBe(WsErr.NOT_YET_BOUND);
      const reg = await d.request('register', registerBody(sn, secretNo, g.nowSec()));
      const fresh = reg.body!.active_code as string;
      expect(fresh).not.toBe(legacy);
      const after = await row(sn);
      expect(after.active_code).toBe(sha256(fresh));
      expect(after.active_code_enc).not.toBeNull();
      expect((await d.request('register', registerBody(sn, secretNo, g.nowSec()))).body!.active_code).toBe(fresh);
    },
  );

  it.skipIf(skip)("finding 10: get_model_token answers errcode 0 and errmsg 'ok' with its token", async () => {
    const s = g.h.services;
    const { model_secret } = await s.models.rotateSecret(SYSTEM_CLI, g.modelId);
    const { model_ticket } = await s.models.currentTicket(SYSTEM_CLI, g.modelId);
    const r = await g.h.app.inject({
      method: 'POST',
      url: '/cgi-bin/openhw/get_model_token',
      payload: { model_id: g.modelId, model_secret, model_ticket },
    });
    expect(r.statusCode).toBe(200);
    const body = r.json() as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['errcode', 'errmsg', 'expires_in', 'model_access_token']);
    expect(body).toMatchObject({ errcode: 0, errmsg: 'ok', expires_in: 7200 });
    expect(typeof body.model_access_token).toBe('string');
  });
});

describe('finding 10: log redaction by key name', () => {
  it('finding 10: query parameters whose names look like credentials are redacted, known or not', () => {
    expect(
      redactUrl(
        '/cgi-bin/x?sn=ABC&vendor_api_key=k1&x_signature=s1&refresh_token=t1&my_password=p&auth_code=a&active_code=c&page=2',
      ),
    ).toBe(
      '/cgi-bin/x?sn=ABC&vendor_api_key=[redacted]&x_signature=[redacted]&refresh_token=[redacted]&my_password=[redacted]&auth_code=[redacted]&active_code=[redacted]&page=2',
    );
    // Names are judged decoded, so an escape does not hide one.
    expect(redactUrl('/a?model%5Faccess%5Ftoken=zzz&q=1')).toBe('/a?model%5Faccess%5Ftoken=[redacted]&q=1');
    expect(redactUrl('/plain/path')).toBe('/plain/path');
  });

  it('finding 10: logged objects lose the values of credential-named keys at any depth; counts stay', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const log = createLogger({ logLevel: 'info', nodeId: 'n1' }, sink);
    log.info(
      {
        vendor: { name: 'Acme', webhook_signing_key: 'whsec_123', nested: [{ deviceToken: 'tok_456' }] },
        url: '/x?new_secret_param=789&sn=S1',
        tokens_revoked: 3,
        sn: 'S1',
      },
      'something happened',
    );
    const out = JSON.parse(lines[0]!) as Record<string, unknown>;
    const text = lines[0]!;
    for (const secret of ['whsec_123', 'tok_456', '789']) expect(text.includes(secret), secret).toBe(false);
    expect(out.vendor).toEqual({
      name: 'Acme',
      webhook_signing_key: '[redacted]',
      nested: [{ deviceToken: '[redacted]' }],
    });
    expect(out.url).toBe('/x?new_secret_param=[redacted]&sn=S1');
    expect(out.tokens_revoked).toBe(3);
    expect(out.sn).toBe('S1');
  });
});
