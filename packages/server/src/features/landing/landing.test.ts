import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import nodePath from 'node:path';
import { dynamicBindUrl, dynamicLoginUrl, signBindQr, signLoginQr } from '@bindery/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DomainEvent } from '../../shared/domain-events.js';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { bearer, type Harness, startHarness } from '../../testing/harness.js';
import { acmeOrg, type Browser, login, type OrgFixture, PASSWORD, vendorWithModels } from '../people/people.fixture.js';
import { consoleShell } from './console-shell.js';

describe.each(storageBackends())('scan landing pages on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let org: OrgFixture;
  let alice: Browser;
  let boss: Browser;
  const dev = new Map<string, { secretNo: string; hwCode: string }>();
  const scans: DomainEvent[] = [];

  const page = (b: Browser | null, url: string) => h.app.inject({ method: 'GET', url, headers: b ? { cookie: b.cookie } : {} });
  const nowSec = () => Math.floor(h.clock.now() / 1000);
  const bindQr = (sn: string, ts: number, nonce = '99', secret = dev.get(sn)!.secretNo) =>
    dynamicBindUrl('https://bindery.test', {
      sn,
      timestamp: String(ts),
      nonce,
      signature: signBindQr({ sn, timestamp: String(ts), nonce }, secret),
    });
  const loginQr = (sn: string, ts: number, state: string) =>
    dynamicLoginUrl('https://bindery.test', {
      sn,
      timestamp: String(ts),
      nonce: '5',
      state,
      signature: signLoginQr({ sn, timestamp: String(ts), nonce: '5', state }, dev.get(sn)!.secretNo),
    });
  const path = (url: string) => url.replace('https://bindery.test', '');

  beforeAll(async () => {
    if (skip) return;
    // These cases look at the server-rendered pages; the last one at serving a built console.
    consoleShell.file = null;
    h = await startHarness(backend);
    const { models } = await vendorWithModels(h, [{ name: 'Face <b>Terminal</b>', productKey: 'pkL' }]);
    for (const sn of ['L0001', 'L0002', 'L0003', 'L0004']) {
      const r = await h.services.devices.register(SYSTEM_CLI, models.pkL!, sn);
      dev.set(sn, { secretNo: r.secret_no, hwCode: r.device.hw_code });
    }
    org = await acmeOrg(h, 'land');
    alice = await login(h.app, 'alice.land', PASSWORD);
    boss = await login(h.app, 'boss.land', PASSWORD);
    h.services.events.on('device.user_scan', (e) => {
      scans.push(e);
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it.skipIf(skip)('sends a visitor who is not signed in to the login page, and back to the scan afterwards', async () => {
    const url = `/connect/hardware?hw_code=${dev.get('L0001')!.hwCode}`;
    const r = await page(null, url);
    expect(r.statusCode).toBe(302);
    expect(r.headers.location).toBe(`/login?next=${encodeURIComponent(url)}`);
    const lp = await page(null, r.headers.location as string);
    expect(lp.statusCode).toBe(200);
    expect(lp.headers['content-type']).toMatch(/text\/html/);
    expect(lp.body).toContain('name="viewport"');
    expect(lp.body).toContain(JSON.stringify(url).slice(1, -1).replace(/</g, '\\u003c'));
    expect(lp.headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
    // Signed in, /login continues straight to where the scan pointed; foreign targets are ignored.
    const again = await page(alice, r.headers.location as string);
    expect(again.headers.location).toBe(url);
    for (const next of ['//evil.example/x', '/%09/evil.example/x', '/%5Cevil.example', 'https://evil.example/']) {
      const evil = await page(alice, `/login?next=${next}`);
      expect(evil.statusCode, next).toBe(200);
      expect(evil.body).not.toContain('evil.example');
    }
    for (const link of ['/hw/addDevice', '/wwopen/connect/hardware/addDevice']) {
      expect((await page(null, link)).headers.location).toBe(`/login?next=${encodeURIComponent(link)}`);
    }
  });

  it.skipIf(skip)('a static label opens the confirmation page: model, SN, default name, owners, remark name', async () => {
    const r = await page(alice, `/connect/hardware?hw_code=${dev.get('L0001')!.hwCode}`);
    expect(r.statusCode).toBe(200);
    expect(r.body).toContain('Bind this device');
    expect(r.body).toContain('L0001');
    expect(r.body).toContain('Face &#60;b&#62;Terminal&#60;/b&#62;');
    expect(r.body).not.toContain('<b>Terminal</b>');
    expect(r.body).toContain('My personal space');
    // Alice's organisation does not let members bind: offered, disabled, with the reason in words.
    expect(r.body).toMatch(/disabled><span>Acme land \(member\).*does not let members bind devices/s);
    const nonce = /nonce-([^']+)'/.exec(r.headers['content-security-policy'] as string)![1]!;
    expect(r.body).toContain(`<script nonce="${nonce}">`);
  });

  it.skipIf(skip)('says in words whether a code is expired, forged, unknown, already used or already bound', async () => {
    const ts = nowSec();
    const expired = await page(alice, path(bindQr('L0002', ts - 1801)));
    expect(expired.statusCode).toBe(410);
    expect(expired.body).toContain('This code has expired');
    expect(expired.body).toContain('refresh the code on the device');
    const forged = await page(alice, path(bindQr('L0002', ts, '1', 'f'.repeat(32))));
    expect(forged.statusCode).toBe(400);
    expect(forged.body).toContain('not genuine');
    expect(forged.body).not.toContain('L0002');
    const unknown = await page(alice, '/connect/hardware?hw_code=AAAAAAAAAAAAAAAAAAAAAA');
    expect(unknown.statusCode).toBe(404);
    expect(unknown.body).toContain('does not belong to any device');
    const junk = await page(alice, '/connect/hardware?type=weird');
    expect(junk.statusCode).toBe(400);
    expect(junk.body).toContain('not a device code');

    const code = bindQr('L0002', ts);
    expect((await page(alice, path(code))).statusCode).toBe(200);
    expect(
      (await alice.req('POST', '/api/v1/bind', { content: code, owner: { type: 'user', id: alice.userId } })).statusCode,
    ).toBe(201);
    const bound = await page(boss, `/connect/hardware?hw_code=${dev.get('L0002')!.hwCode}`);
    expect(bound.statusCode).toBe(409);
    expect(bound.body).toContain('already bound');
    expect((await alice.req('DELETE', '/api/v1/devices/L0002/bind')).statusCode).toBe(204);
    const replay = await page(alice, path(code));
    expect(replay.statusCode).toBe(409);
    expect(replay.body).toContain('already been used');
  });

  it.skipIf(skip)('the add-device links open the page to choose a method', async () => {
    for (const link of ['/hw/addDevice', '/wwopen/connect/hardware/addDevice']) {
      const r = await page(boss, link);
      expect(r.statusCode).toBe(200);
      expect(r.body).toContain('Add a device');
      expect(r.body).toContain('Acme land');
    }
    const viaQr = await page(boss, '/connect/hardware/addDevice');
    expect(viaQr.statusCode).toBe(404);
    const resolved = await boss.req('POST', '/api/v1/scan/resolve', { content: 'https://open.work.weixin.qq.com/hw/addDevice' });
    expect(resolved.json()).toMatchObject({ kind: 'add_device', action: 'choose_method' });
    // Seed 001's constant Bluetooth QR, scanned in the console, leads to its discovery page.
    const bt = await boss.req('POST', '/api/v1/scan/resolve', { content: 'https://open.work.weixin.qq.com/hw/f?t=bt' });
    expect(bt.json()).toMatchObject({ kind: 'bluetooth_discovery', validity: 'ok', action: 'choose_method' });
  });

  it.skipIf(skip)('the resolve API gives kind, validity, device summary and the owners the caller may bind to', async () => {
    const r = await alice.req('POST', '/api/v1/scan/resolve', {
      content: `https://bindery.test/connect/hardware?hw_code=${dev.get('L0003')!.hwCode}`,
    });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({
      kind: 'static_bind',
      validity: 'ok',
      action: 'bind',
      device: {
        sn: 'L0003',
        model_name: 'Face <b>Terminal</b>',
        default_name: 'Face <b>Terminal</b> L0003',
        bound: false,
        binding_mode: 'owner_only',
      },
      owners: [
        { type: 'user', id: alice.userId, may_bind: true, effect: 'bind' },
        { type: 'org', id: org.orgId, role: 'member', may_bind: false, reason: { code: 'MEMBER_BINDING_OFF' } },
      ],
    });
    const b = await boss.req('POST', '/api/v1/scan/resolve', {
      content: `https://bindery.test/connect/hardware?hw_code=${dev.get('L0003')!.hwCode}`,
    });
    expect(b.json().owners[1]).toMatchObject({ type: 'org', role: 'super_admin', may_bind: true, pickable: 'all' });
    const expired = await alice.req('POST', '/api/v1/scan/resolve', { content: bindQr('L0003', nowSec() - 4000) });
    expect(expired.json()).toMatchObject({ kind: 'dynamic_bind', validity: 'expired', device: { sn: 'L0003' } });
    expect(expired.json().message).toMatch(/expired/);
    expect((await h.app.inject({ method: 'POST', url: '/api/v1/scan/resolve', payload: { content: 'x' } })).statusCode).toBe(401);
  });

  it.skipIf(skip)('a login QR: only someone who may manage the device may confirm; the device gets push_user_scan', async () => {
    // Visible to Engineering only: Alice (Sales East) is outside its range, so it is not hers to sign in on.
    await h.services.binding.bind(
      SYSTEM_CLI,
      'L0004',
      { type: 'org', id: org.orgId },
      { visibleTo: { departments: [org.dept.eng] } },
    );
    const qr = loginQr('L0004', nowSec(), 'qrcode_login');
    const stranger = await page(alice, path(qr));
    expect(stranger.statusCode).toBe(403);
    expect(stranger.body).toContain('You may not manage this device');
    const denied = await alice.req('POST', '/api/v1/scan/login', { content: qr });
    expect(denied.statusCode).toBe(403);

    const confirm = await page(boss, path(qr));
    expect(confirm.statusCode).toBe(200);
    expect(confirm.body).toContain('Sign in to this device');
    expect(scans).toHaveLength(0); // opening the link does nothing by itself
    const ok = await boss.req('POST', '/api/v1/scan/login', { content: qr });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ sn: 'L0004', device_page: '/devices/L0004', outcome: 'offline' });
    expect(scans.at(-1)).toMatchObject({
      type: 'device.user_scan',
      sn: 'L0004',
      userId: boss.userId,
      state: 'qrcode_login',
      userType: 1,
      opType: 'scan_qrcode_login',
      operId: ok.json().oper_id,
    });
    const old = await boss.req('POST', '/api/v1/scan/login', { content: loginQr('L0004', nowSec() - 1801, 'x') });
    expect(old.json().error.code).toBe('QR_EXPIRED');

    // A static management code from the vendor works the same way until the device is unbound.
    const issued = await h.app.inject({
      method: 'POST',
      url: '/api/v1/devices/L0004/login-codes',
      headers: bearer(h.operatorToken),
      payload: { state: 'menu' },
    });
    expect(issued.json().url).toMatch(/^https:\/\/bindery\.test\/connect\/hardware\?type=static_login&login_code=.+&state=menu$/);
    const s = await boss.req('POST', '/api/v1/scan/login', { content: issued.json().url });
    expect(s.statusCode).toBe(200);
    expect(scans.at(-1)).toMatchObject({ state: 'menu', userType: 1 });
    await h.services.binding.unbind(SYSTEM_CLI, 'L0004');
    const dead = await boss.req('POST', '/api/v1/scan/resolve', { content: issued.json().url });
    expect(dead.json()).toMatchObject({ kind: 'static_login', validity: 'unknown' });
  });

  it.skipIf(skip)('with the console built, the landing paths serve it; signing in still comes first', async () => {
    const dir = mkdtempSync(nodePath.join(tmpdir(), 'bindery-console-'));
    try {
      writeFileSync(nodePath.join(dir, 'index.html'), '<!doctype html><div id="root">console shell</div>');
      consoleShell.file = nodePath.join(dir, 'index.html');
      const url = `/connect/hardware?hw_code=${dev.get('L0003')!.hwCode}`;
      expect((await page(null, url)).headers.location).toBe(`/login?next=${encodeURIComponent(url)}`);
      for (const p of [url, '/hw/addDevice', '/wwopen/connect/hardware/addDevice']) {
        const r = await page(alice, p);
        expect(r.statusCode, p).toBe(200);
        expect(r.body).toContain('console shell');
      }
      expect((await page(null, '/login?next=/x')).body).toContain('console shell');
    } finally {
      consoleShell.file = null;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
