import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { skipReasonRedis } from '../../testing/backends.js';
import { type Harness, type ProcessPair, startProcessPair } from '../../testing/harness.js';

/**
 * Two Bindery processes of one deployment (testing/harness.ts startProcessPair): the seed-000 code
 * limits must hold across them, not per process.
 */
const skip = skipReasonRedis();

describe('gen_login_qrcode / gen_id_dynamic_qrcode limits across two processes (Redis)', () => {
  let pair: ProcessPair | undefined;
  let h: Harness;
  let bases: [string, string];
  let modelId: string;
  let modelToken: string;
  const orgId = 'org_limits';

  const post = async (base: string, path: string, q: Record<string, string>, body: object) => {
    const r = await fetch(`${base}/cgi-bin/openhw/${path}?${new URLSearchParams(q)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(r.status).toBe(200);
    return (await r.json()) as { errcode: number; qrcode_content?: string; device_access_token?: string };
  };

  /** A bound cloud device with a device_access_token. */
  async function device(sn: string): Promise<string> {
    await h.services.devices.register(SYSTEM_CLI, modelId, sn);
    await h.services.binding.bind(SYSTEM_CLI, sn, { type: 'org', id: orgId });
    const code = await h.services.deviceTokens.issueAuthCode({ sn, modelId });
    const r = (await post(bases[0]!, 'get_device_secret', { model_access_token: modelToken }, { auth_code: code })) as {
      device_access_token?: string;
    };
    return r.device_access_token!;
  }
  const login = (base: string, token: string, type: 0 | 1) =>
    post(base, 'device/gen_login_qrcode', { device_access_token: token }, { type, state: 's' });
  const identity = (base: string, sn: string) =>
    post(base, 'device/gen_id_dynamic_qrcode', { model_access_token: modelToken }, { device_sn: sn, state: 's' });

  beforeAll(async () => {
    if (skip) return;
    pair = await startProcessPair();
    ({ h, bases } = pair);
    const v = await h.services.vendors.create(SYSTEM_CLI, { name: 'Limits Vendor' });
    const created = await h.services.models.create(SYSTEM_CLI, v.id, { name: 'Lock' });
    modelId = created.model.model_id;
    const { model_ticket } = await h.services.models.currentTicket(SYSTEM_CLI, modelId);
    modelToken = (
      await h.services.models.issueModelToken({ model_id: modelId, model_secret: created.model_secret, model_ticket })
    ).model_access_token;
    await h.deps.db.kysely
      .insertInto('organisations')
      .values({ id: orgId, name: 'Limits Org', parent_id: null, mchid: null, merchant_shortname: null, created_at: 0 })
      .execute();
  });
  afterAll(async () => {
    await pair?.close();
  });

  it.skipIf(skip)('one call per SN per minute for each type, counted across both processes', async () => {
    const [a, b] = bases;
    const t = await device('RLIM0001');
    expect((await login(a, t, 0)).errcode).toBe(0);
    expect((await login(b, t, 0)).errcode).toBe(45033);
    // The dynamic type has its own budget…
    expect((await login(b, t, 1)).errcode).toBe(0);
    expect((await login(a, t, 1)).errcode).toBe(45033);
    // …shared with the identity code of the model API, on either process.
    expect((await identity(a, 'RLIM0001')).errcode).toBe(45033);
    expect((await identity(b, 'RLIM0001')).errcode).toBe(45033);

    const t2 = await device('RLIM0002');
    expect((await identity(b, 'RLIM0002')).errcode).toBe(0);
    expect((await login(a, t2, 1)).errcode).toBe(45033);
    expect((await login(a, t2, 0)).errcode).toBe(0);
  });

  it.skipIf(skip)('simultaneous calls on both processes: exactly one of each type gets a code', async () => {
    const [a, b] = bases;
    const t = await device('RLIM0003');
    const results = await Promise.all([
      login(a, t, 0),
      login(b, t, 0),
      login(a, t, 0),
      login(b, t, 0),
      login(a, t, 1),
      login(b, t, 1),
      identity(a, 'RLIM0003'),
      identity(b, 'RLIM0003'),
    ]);
    const ok = (rs: Array<{ errcode: number }>) => rs.filter((r) => r.errcode === 0).length;
    expect(ok(results.slice(0, 4))).toBe(1);
    expect(ok(results.slice(4))).toBe(1);
    expect(results.filter((r) => r.errcode !== 0).every((r) => r.errcode === 45033)).toBe(true);
  });
});
