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

  /** One merchant key, used on both processes, for the list and for inspections. */
  async function clients() {
    const key = makeMerchantKey(MCHID);
    await h.services.merchant.addKey(OPERATOR, MCHID, { certificate_pem: key.certificatePem });
    return bases.map((base) => {
      const v3 = new Wechatpay({
        mchid: MCHID,
        serial: key.serial,
        privateKey: key.privateKeyPem,
        certs: { [platform.pub_key_id]: platform.public_key_pem },
        baseURL: `${base}/`,
      }).v3!.iotmanage!;
      return {
        list: (params: Record<string, unknown> = { limit: 1, offset: 0 }): Promise<AxiosResponse> => v3.devices!.get({ params }),
        inspection: (sn: string): Promise<AxiosResponse> => v3.deviceInspections!._device_sn_!.get({ device_sn: sn }),
      };
    });
  }

  it.skipIf(skip)('one merchant client gets 20 requests per second across both processes; the 21st is refused', async () => {
    for (let attempt = 0; attempt < 5; attempt++) {
      h.clock.set(Date.now());
      const [one, two] = await clients();
      const started = Date.now();
      const results = await Promise.all(
        Array.from({ length: 21 }, (_, i) =>
          (i % 2 === 0 ? one! : two!).list({ limit: 1, offset: 0 }).then(
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

  it.skipIf(skip)(
    'limits count per endpoint across both processes: 20 list and 20 inspections, the 21st of each refused',
    async () => {
      const outcome = (p: Promise<AxiosResponse>) =>
        p.then(
          () => 'served',
          (e: AxiosError) => {
            const code = (e.response?.data as { code?: string })?.code;
            // An inspection of an SN with no record is served as 404; only 429 is a limit.
            return e.response?.status === 429 ? code : e.response?.status === 404 ? 'served' : `${e.response?.status} ${code}`;
          },
        );
      for (let attempt = 0; attempt < 5; attempt++) {
        h.clock.set(Date.now());
        const [one, two] = await clients();
        const started = Date.now();
        const [list, insp] = await Promise.all([
          Promise.all(Array.from({ length: 21 }, (_, i) => outcome((i % 2 === 0 ? one! : two!).list()))),
          Promise.all(Array.from({ length: 21 }, (_, i) => outcome((i % 2 === 0 ? two! : one!).inspection(`NOSN${i}`)))),
        ]);
        if (Date.now() - started >= 1000) continue;
        for (const results of [list, insp]) {
          expect(results.filter((r) => r === 'served')).toHaveLength(20);
          expect(results.filter((r) => r !== 'served')).toEqual(['FREQUENCY_LIMITED']);
        }
        return;
      }
      throw new Error('no burst of 42 requests fitted in one second in 5 attempts');
    },
  );

  it.skipIf(skip)('a nonce used on one process is refused on the other', async () => {
    h.clock.set(Date.now());
    const [one] = await clients();
    const first = await one!.list({ limit: 2, offset: 0 });
    expect(first.status).toBe(200);
    const auth = first.config.headers.Authorization as string;
    const replay = await fetch(`${bases[1]}/v3/iotmanage/devices?limit=2&offset=0`, { headers: { authorization: auth } });
    expect(replay.status).toBe(401);
    expect(await replay.json()).toMatchObject({ code: 'SIGN_ERROR', detail: { field: 'nonce_str' } });
  });
});
