import { bytesToBase64, encodeIdentityProof, parseIdentityProof } from '@bindery/protocol/bluetooth';
import { VirtualPeripheral } from '@bindery/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { skipReasonRedis } from '../../testing/backends.js';
import { type ProcessPair, startProcessPair } from '../../testing/harness.js';

/**
 * Two processes of one deployment (testing/harness.ts startProcessPair): a proof accepted by one is
 * a replay on the other (BT-11), a ticket from one binds on the other once (BT-12), and forged proofs
 * sent to both count towards one lockout (Redis).
 */
const skip = skipReasonRedis();

interface Answer {
  ticket?: string;
  sn?: string;
  method?: string;
  error?: { code: string };
}

describe('Bluetooth discovery across two processes (Redis)', () => {
  let pair: ProcessPair | undefined;
  let bases: [string, string];
  let token: string;
  let userId: string;
  const peripherals = new Map<string, VirtualPeripheral>();

  const call = async (base: string, method: 'GET' | 'POST', path: string, body?: object) => {
    const r = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: r.status, body: (await r.json()) as Answer };
  };
  const identify = (base: string, proof: Uint8Array) =>
    call(base, 'POST', '/api/v1/bluetooth/identity', { proof: bytesToBase64(proof) });

  beforeAll(async () => {
    if (skip) return;
    pair = await startProcessPair();
    bases = pair.bases;
    const s = pair.h.services;
    const v = await s.vendors.create(SYSTEM_CLI, { name: 'BT cluster vendor' });
    const { model } = await s.models.create(SYSTEM_CLI, v.id, { name: 'Beacon', product_key: 'pkbtc' });
    for (const sn of ['BTC001', 'BTC002']) {
      const r = await s.devices.register(SYSTEM_CLI, model.model_id, sn);
      peripherals.set(sn, new VirtualPeripheral({ sn, productKey: 'pkbtc', secretNo: r.secret_no }));
    }
    userId = (
      await s.accounts.createUser(SYSTEM_CLI, { username: 'btc.user', password: 'a long enough password', displayName: 'B' })
    ).id;
    token = (await s.accounts.issueUserToken(userId, 'bt')).token;
  });
  afterAll(async () => {
    await pair?.close();
  });

  it.skipIf(skip)('a proof accepted on one process is a replay on the other; its ticket binds once, anywhere', async () => {
    const proof = peripherals.get('BTC001')!.readIdentity();
    const first = await identify(bases[0], proof);
    expect(first.status).toBe(200);
    const replay = await identify(bases[1], proof);
    expect(replay.status).toBe(409);
    expect(replay.body.error?.code).toBe('BT_PROOF_REPLAYED');
    const owner = { type: 'user', id: userId };
    const bound = await call(bases[1], 'POST', '/api/v1/bind', { bluetooth_ticket: first.body.ticket, owner });
    expect(bound.status).toBe(201);
    expect(bound.body).toMatchObject({ sn: 'BTC001', method: 'bluetooth' });
    await pair!.h.services.binding.unbind(SYSTEM_CLI, 'BTC001');
    const again = await call(bases[0], 'POST', '/api/v1/bind', { bluetooth_ticket: first.body.ticket, owner });
    expect(again.status).toBe(400);
    expect(again.body.error?.code).toBe('BT_TICKET_INVALID');
  });

  it.skipIf(skip)('forged proofs sent to both processes count towards one lockout', async () => {
    const real = parseIdentityProof(peripherals.get('BTC002')!.readIdentity());
    for (let i = 1; i <= 10; i++) {
      const r = await identify(bases[(i % 2) as 0 | 1], encodeIdentityProof({ ...real, nonce: real.nonce + 2 * i }));
      // The tenth wrong answer is itself answered with the lockout (people/lockout.ts).
      expect(r.body.error?.code, `forged proof ${i}`).toBe(i < 10 ? 'BT_PROOF_INVALID' : 'LOCKED_OUT');
    }
    const locked = await identify(bases[0], peripherals.get('BTC002')!.readIdentity());
    expect(locked.status).toBe(429);
    expect(locked.body.error?.code).toBe('LOCKED_OUT');
  });
});
