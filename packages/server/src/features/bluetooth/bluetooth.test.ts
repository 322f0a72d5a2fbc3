import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import {
  BtFrameAssembler,
  type BtMessage,
  bytesToBase64,
  encodeBtMessage,
  encodeIdentityProof,
  hexToBytes,
  type IdentityProof,
  parseAdvertisement,
  parseIdentityProof,
} from '@bindery/protocol/bluetooth';
import vectors from '@bindery/protocol/test-vectors/bluetooth.json' with { type: 'json' };
import { Device, provisionableDevice, VirtualPeripheral } from '@bindery/sdk';
import { Fleet } from '@bindery/sdk/sim/fleet.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { type GatewayHarness, startGatewayHarness } from '../gateway/gateway.testkit.js';
import { acmeOrg, type Browser, login, PASSWORD } from '../people/people.fixture.js';
import { BT_TICKET_TTL_MS } from './bluetooth.service.js';
import { btSign, proofSignedBy } from './verifier.js';

describe('docs/protocol.md BT rules', () => {
  const root = path.resolve(__dirname, '../../../../..');
  const doc = readFileSync(path.join(root, 'docs/protocol.md'), 'utf8');
  const defined = [...doc.matchAll(/\*\*(BT-\d+) /g)].map((m) => m[1]!);

  it('defines each rule once, and every BT-n the code cites', () => {
    expect(new Set(defined).size).toBe(defined.length);
    expect(defined.length).toBeGreaterThanOrEqual(12);
    const missing: string[] = [];
    const walk = (dir: string): void => {
      for (const name of readdirSync(dir)) {
        if (name === 'node_modules' || name === 'dist') continue;
        const p = path.join(dir, name);
        if (statSync(p).isDirectory()) walk(p);
        else if (/\.(ts|tsx)$/.test(name)) {
          for (const m of readFileSync(p, 'utf8').matchAll(/\bBT-\d+\b/g)) {
            if (!defined.includes(m[0])) missing.push(`${path.relative(root, p)}: ${m[0]}`);
          }
        }
      }
    };
    walk(path.join(root, 'packages'));
    expect(missing).toEqual([]);
  });
});

describe('BT-4 verifier (shared vectors)', () => {
  it('signs as the vectors say and accepts exactly the vector proofs', () => {
    for (const v of vectors.signs) expect(btSign(v.seed, v.nonce)).toBe(v.sign);
    for (const v of vectors.proofs) {
      const p = parseIdentityProof(hexToBytes(v.hex));
      expect(proofSignedBy(p, v.seed)).toBe(true);
      expect(proofSignedBy(p, `${v.seed}x`)).toBe(false);
      expect(proofSignedBy({ ...p, nonce: p.nonce + 1 }, v.seed)).toBe(false);
    }
  });
});

/** Waits for a condition that depends on other sockets; the bound only stops a broken run. */
async function until<T>(f: () => Promise<T | null | undefined | false>, what: string, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe.each(storageBackends())('Bluetooth discovery on $backend.name', ({ backend, skip }) => {
  let g: GatewayHarness;
  let productKey: string;
  let alice: Browser;
  let bob: Browser;
  let carol: Browser;
  const secretNo = new Map<string, string>();
  const devices: Device[] = [];

  const peripheralOf = (sn: string, nonce = 0) => new VirtualPeripheral({ sn, productKey, secretNo: secretNo.get(sn)!, nonce });
  const identify = (b: Browser, proof: Uint8Array) =>
    b.req('POST', '/api/v1/bluetooth/identity', { proof: bytesToBase64(proof) });
  const status = (b: Browser, ticket: string) => b.req('GET', `/api/v1/bluetooth/tickets/${encodeURIComponent(ticket)}/status`);
  const me = (b: Browser) => ({ type: 'user', id: b.userId });

  beforeAll(async () => {
    if (skip) return;
    g = await startGatewayHarness(backend);
    const h = g.h;
    productKey = (
      await h.deps.db.kysely
        .selectFrom('models')
        .select('product_key')
        .where('model_id', '=', g.modelId)
        .executeTakeFirstOrThrow()
    ).product_key;
    for (const sn of ['BT0001', 'BT0002', 'BT0003', 'BT0004', 'BT0005', 'BT0006', 'BT0007', 'BT0008']) {
      secretNo.set(sn, await g.addDevice(sn));
    }
    await acmeOrg(h, 'bt');
    alice = await login(h.app, 'alice.bt', PASSWORD, '10.9.0.1');
    bob = await login(h.app, 'bob.bt', PASSWORD, '10.9.0.2');
    carol = await login(h.app, 'carol.bt', PASSWORD, '10.9.0.3');
  });
  afterAll(async () => {
    for (const d of devices) d.stop();
    await g?.close();
  });

  it.skipIf(skip)(
    'a valid proof resolves to the device and a ticket; the ticket binds once, with no verification code',
    async () => {
      const p = peripheralOf('BT0001');
      const r = await identify(alice, p.readIdentity());
      expect(r.statusCode).toBe(200);
      const body = r.json();
      expect(body).toMatchObject({
        sn: 'BT0001',
        model: { model_id: g.modelId, name: 'Face Terminal', product_key: productKey },
        bound: false,
        online: false,
        bind_options: {
          kind: 'bluetooth',
          validity: 'ok',
          action: 'bind',
          device: { sn: 'BT0001', requires_verif_code: false, bound: false },
        },
      });
      expect(body.owner).toBeUndefined();
      expect(body.bind_options.owners).toContainEqual(
        expect.objectContaining({ type: 'user', id: alice.userId, may_bind: true }),
      );
      expect(Date.parse(body.ticket_expires_at) - g.h.deps.clock.now()).toBe(BT_TICKET_TTL_MS);
      // The ticket is stored hashed, never as given.
      const stored = await g.h.deps.db.kysely.selectFrom('bluetooth_tickets').select('ticket_hash').execute();
      expect(stored.map((t) => t.ticket_hash)).not.toContain(body.ticket);

      const bound = await alice.req('POST', '/api/v1/bind', { bluetooth_ticket: body.ticket, owner: me(alice) });
      expect(bound.statusCode).toBe(201);
      expect(bound.json()).toMatchObject({ sn: 'BT0001', result: 'bound', method: 'bluetooth' });
      const audit = await g.h.deps.db.kysely
        .selectFrom('audit_log')
        .select(['action', 'data'])
        .where('subject', '=', 'device:BT0001')
        .orderBy('id')
        .execute();
      expect(audit.at(-1)?.action).toBe('device.bind');
      expect(JSON.parse(String(audit.at(-1)?.data))).toMatchObject({ method: 'bluetooth', owner_type: 'user' });

      await g.unbind('BT0001');
      const again = await alice.req('POST', '/api/v1/bind', { bluetooth_ticket: body.ticket, owner: me(alice) });
      expect(again.statusCode).toBe(400);
      expect(again.json().error.code).toBe('BT_TICKET_INVALID');
    },
  );

  it.skipIf(skip)('a replayed proof, or one with an older nonce, is refused', async () => {
    const p = peripheralOf('BT0002', 100);
    const older = p.readIdentity();
    const proof = p.readIdentity();
    expect((await identify(bob, proof)).statusCode).toBe(200);
    const replay = await identify(bob, proof);
    expect(replay.statusCode).toBe(409);
    expect(replay.json().error.code).toBe('BT_PROOF_REPLAYED');
    expect((await identify(bob, older)).json().error.code).toBe('BT_PROOF_REPLAYED');
    // A fresh read is accepted again; the stored nonce is the device's last one.
    expect((await identify(bob, p.readIdentity())).statusCode).toBe(200);
    const id = (await g.h.services.devices.repo.findBySn('BT0002'))!.id;
    expect(await g.h.services.bluetooth.repo.lastNonce(id)).toBe(p.nonce);
  });

  it.skipIf(skip)('a forged sign, an unknown SN or another model key is refused and counts towards the lockout', async () => {
    const real = parseIdentityProof(peripheralOf('BT0003').readIdentity());
    const forged: IdentityProof = { ...real, nonce: real.nonce + 2 }; // the sign is the old nonce's
    // BT-5: an overheard check-in advert (odd nonce, genuine sign) is no identity proof.
    const p = peripheralOf('BT0003', 500);
    const advert = parseAdvertisement(p.rotate());
    const fromAdvert: IdentityProof = { ...real, nonce: advert.nonce!, sign: advert.sign! };
    expect(btSign(secretNo.get('BT0003')!, advert.nonce!)).toBe(advert.sign);
    const unknown: IdentityProof = { ...real, sn: 'NOSUCH01' };
    const otherKey: IdentityProof = { ...real, productKey: 'not-this-model' };
    for (const f of [forged, unknown, otherKey, fromAdvert]) {
      const r = await identify(carol, encodeIdentityProof(f));
      expect(r.statusCode).toBe(400);
      expect(r.json().error.code).toBe('BT_PROOF_INVALID');
    }
    // Malformed proofs are a validation error and count for nothing.
    const bad = await carol.req('POST', '/api/v1/bluetooth/identity', { proof: 'AQID' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('VALIDATION_FAILED');
    // Four wrong so far; the tenth is itself answered with the lockout (people/lockout.ts).
    for (let i = 5; i <= 10; i++) {
      const r = await identify(carol, encodeIdentityProof({ ...forged, nonce: forged.nonce + 2 * i }));
      expect(r.json().error.code, `forged proof ${i}`).toBe(i < 10 ? 'BT_PROOF_INVALID' : 'LOCKED_OUT');
    }
    // Ten forged proofs: even a genuine one is refused now.
    const locked = await identify(carol, peripheralOf('BT0003', 1000).readIdentity());
    expect(locked.statusCode).toBe(429);
    expect(locked.json().error.code).toBe('LOCKED_OUT');
  });

  it.skipIf(skip)("another account's ticket and an expired ticket are refused", async () => {
    const p = peripheralOf('BT0004');
    const { ticket } = (await identify(alice, p.readIdentity())).json();
    for (const r of [
      await bob.req('POST', '/api/v1/bind', { bluetooth_ticket: ticket, owner: me(bob) }),
      await status(bob, ticket),
      await alice.req('POST', '/api/v1/bind', { bluetooth_ticket: 'no-such-ticket', owner: me(alice) }),
    ]) {
      expect(r.statusCode).toBe(400);
      expect(r.json().error.code).toBe('BT_TICKET_INVALID');
    }
    expect((await status(alice, ticket)).json()).toEqual({ online: false });
    g.h.clock.advance(BT_TICKET_TTL_MS);
    for (const r of [
      await status(alice, ticket),
      await alice.req('POST', '/api/v1/bind', { bluetooth_ticket: ticket, owner: me(alice) }),
    ]) {
      expect(r.statusCode).toBe(400);
      expect(r.json().error.code).toBe('BT_TICKET_INVALID');
      expect(r.json().error.message).toMatch(/expired/);
    }
    expect((await g.h.services.devices.repo.findBySn('BT0004'))!.owner_id).toBeNull();
  });

  it.skipIf(skip)('an offline SDK device is provisioned over Bluetooth, comes online over WSS, and binds', async () => {
    const sn = 'BT0005';
    const device = new Device({
      url: g.url,
      credentials: { sn, secretNo: secretNo.get(sn)! },
      backoff: { initialMs: 50, maxMs: 500 },
    });
    devices.push(device);
    const provisioned: string[] = [];
    const p = provisionableDevice(device, {
      productKey,
      accessPoints: { 'Bindery Lab': { password: 'correct horse', security: 'wpa2' } },
      networks: [{ ssid: 'Bindery Lab', rssi: -45, security: 'wpa2' }],
      onProvisioned: (w) => provisioned.push(w.ssid),
    });
    // The phone's side of the GATT link.
    const got: BtMessage[] = [];
    const asm = new BtFrameAssembler();
    p.onIndicate((c) => {
      const m = asm.push(c);
      if (m) got.push(m);
    });
    const send = (m: BtMessage) => {
      for (const c of encodeBtMessage(m)) p.write(c);
    };

    const id = (await identify(alice, p.readIdentity())).json();
    expect(id).toMatchObject({ sn, online: false, bound: false });
    expect(device.state).toBe('idle');
    send({ type: 'hello', mtu: 23 });
    send({ type: 'get_wifi_list' });
    send({ type: 'set_wifi', ssid: 'Bindery Lab', password: 'correct horse', security: 'wpa2' });
    await until(async () => got.some((m) => m.type === 'status' && m.cloud === 'online'), 'the status indication saying online');
    expect(provisioned).toEqual(['Bindery Lab']);
    expect(got.filter((m) => m.type === 'status').map((m) => (m.type === 'status' ? `${m.wifi}/${m.cloud}` : ''))).toEqual([
      'connecting/offline',
      'connected/offline',
      'connected/online',
    ]);
    await until(async () => (await status(alice, id.ticket)).json().online === true, 'ticket status online');

    const subscribed = device.waitFor('subscribed', () => true, 20_000);
    const bound = await alice.req('POST', '/api/v1/bind', { bluetooth_ticket: id.ticket, owner: me(alice) });
    expect(bound.statusCode).toBe(201);
    expect(bound.json()).toMatchObject({ method: 'bluetooth', result: 'bound' });
    await subscribed;
    expect(p.bindState).toBe('bound');
    expect(device.state).toBe('ready');
  });

  it.skipIf(skip)('the simulator runs devices that stay offline until provisioned', async () => {
    const fleet = new Fleet({
      url: g.url,
      devices: ['BT0007', 'BT0008'].map((sn) => ({ sn, secretNo: secretNo.get(sn)! })),
      offlineUntilProvisioned: { productKey },
      device: { backoff: { initialMs: 50, maxMs: 500 } },
    });
    try {
      fleet.start();
      expect(fleet.counts()).toMatchObject({ total: 2, started: 0, connected: 0 });
      expect(fleet.devices.map((d) => d.state)).toEqual(['idle', 'idle']);
      // The identity a phone reads from the waiting device verifies like any other.
      const id = await identify(alice, fleet.peripheral('BT0007')!.readIdentity());
      expect(id.json()).toMatchObject({ sn: 'BT0007', online: false });
      const waiting = fleet.device('BT0007')!.waitFor('waiting_for_binding', () => true, 20_000);
      fleet.provision('BT0007', { ssid: 'lab', password: 'correct horse', security: 'wpa2' });
      await waiting;
      await until(async () => (await status(alice, id.json().ticket)).json().online === true, 'BT0007 online');
      expect(fleet.counts()).toMatchObject({ started: 1, connected: 1, waiting: 1 });
      expect(fleet.device('BT0008')!.state).toBe('idle');
    } finally {
      fleet.stop();
    }
  });

  it.skipIf(skip)('vendor keys may not identify devices; /hw/f?t=bt opens the discovery page', async () => {
    const key = await g.h.services.accounts.createVendorKey(SYSTEM_CLI, g.vendorId, 'bt');
    const r = await g.h.app.inject({
      method: 'POST',
      url: '/api/v1/bluetooth/identity',
      headers: { authorization: `Bearer ${key.token}` },
      payload: { proof: bytesToBase64(peripheralOf('BT0006').readIdentity()) },
    });
    expect(r.statusCode).toBe(403);
    const f = await g.h.app.inject({ method: 'GET', url: '/hw/f?t=bt' });
    expect(f.statusCode).toBe(302);
    expect(f.headers.location).toBe('/bluetooth');
    expect((await g.h.app.inject({ method: 'GET', url: '/hw/f' })).headers.location).toBe('/hw/addDevice');
  });
});
