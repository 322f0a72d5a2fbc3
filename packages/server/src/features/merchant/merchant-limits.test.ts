import type { AxiosError, AxiosResponse } from 'axios';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Wechatpay } from 'wechatpay-axios-plugin';
import { skipReasonRedis } from '../../testing/backends.js';
import { type Harness, type ProcessPair, startProcessPair } from '../../testing/harness.js';
import { makeMerchantKey, OPERATOR } from './merchant.fixtures.js';

/**
 * Two Bindery processes of one deployment: one database, one master key, one Redis prefix. The
 * merchant limits and the nonce memory must hold across them, not per process.
 */
const skip = skipReasonRedis();
const MCHID = '1700000001';

describe('merchant limits and nonces across processes (Redis)', () => {
  let pair: ProcessPair | undefined;
  let h: Harness;
  let bases: [string, string];
  let platform: { pub_key_id: string; public_key_pem: string };

  beforeAll(async () => {
    if (skip) return;
    pair = await startProcessPair();
    ({ h, bases } = pair);
    await h.services.merchant.createMerchant(OPERATOR, { name: 'Chain', mchid: MCHID, merchant_shortname: 'Chain' });
    platform = await h.services.merchant.platformKey(OPERATOR);
  });
  afterAll(async () => {
    await pair?.close();
  });

  async function clients() {
    const key = makeMerchantKey(MCHID);
    await h.services.merchant.addKey(OPERATOR, MCHID, { certificate_pem: key.certificatePem });
    return bases.map((base) => {
      const wxpay = new Wechatpay({
        mchid: MCHID,
        serial: key.serial,
        privateKey: key.privateKeyPem,
        certs: { [platform.pub_key_id]: platform.public_key_pem },
        baseURL: `${base}/`,
      });
      return (params: Record<string, unknown>): Promise<AxiosResponse> => wxpay.v3!.iotmanage!.devices!.get({ params });
    });
  }

  it.skipIf(skip)('one merchant client gets 20 requests per second across both processes; the 21st is refused', async () => {
    for (let attempt = 0; attempt < 5; attempt++) {
      h.clock.set(Date.now());
      const [one, two] = await clients();
      const started = Date.now();
      const results = await Promise.all(
        Array.from({ length: 21 }, (_, i) =>
          (i % 2 === 0 ? one! : two!)({ limit: 1, offset: 0 }).then(
            (r) => r.status,
            (e: AxiosError) => ({ status: e.response?.status, code: (e.response?.data as { code?: string })?.code }),
          ),
        ),
      );
      if (Date.now() - started >= 1000) continue;
      expect(results.filter((r) => r === 200)).toHaveLength(20);
      expect(results.filter((r) => r !== 200)).toEqual([{ status: 429, code: 'FREQUENCY_LIMITED' }]);
      return;
    }
    throw new Error('no burst of 21 requests fitted in one second in 5 attempts');
  });

  it.skipIf(skip)('a nonce used on one process is refused on the other', async () => {
    h.clock.set(Date.now());
    const [one] = await clients();
    const first = await one!({ limit: 2, offset: 0 });
    expect(first.status).toBe(200);
    const auth = first.config.headers.Authorization as string;
    const replay = await fetch(`${bases[1]}/v3/iotmanage/devices?limit=2&offset=0`, { headers: { authorization: auth } });
    expect(replay.status).toBe(401);
    expect(await replay.json()).toMatchObject({ code: 'SIGN_ERROR', detail: { field: 'nonce_str' } });
  });
});
