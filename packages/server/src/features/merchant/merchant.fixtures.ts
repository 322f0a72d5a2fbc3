import { generateKeyPairSync } from 'node:crypto';
import type { Principal } from '../../shared/principal.js';
import type { Harness } from '../../testing/harness.js';
import { createSelfSignedCertificate, newCertificateSerial } from './x509.js';

/**
 * Test material for the merchant suites: merchant API keys made with node:crypto (and a real
 * certificate around them), and a merchant with sub-merchants whose devices are bound through
 * the binding service, as in production.
 */
export interface MerchantKeyMaterial {
  privateKeyPem: string;
  publicKeyPem: string;
  certificatePem: string;
  serial: string;
}

export function makeMerchantKey(commonName = '1900000001'): MerchantKeyMaterial {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const privateKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const serial = newCertificateSerial();
  const now = Date.now();
  const certificatePem = createSelfSignedCertificate({
    privateKeyPem,
    publicKeyPem,
    serialHex: serial,
    commonName,
    organisation: 'Tenpay.com',
    notBefore: new Date(now - 86_400_000),
    notAfter: new Date(now + 5 * 365 * 86_400_000),
  });
  return { privateKeyPem, publicKeyPem, certificatePem, serial };
}

export const OPERATOR: Principal = { kind: 'system', name: 'test' };

/**
 * Sets a device's owner as the binding feature does, then announces it the way binding does:
 * a device.bound / device.unbound domain event after the commit, which the merchant fleet follows.
 */
export async function setOwner(h: Harness, sn: string, owner: { type: 'org' | 'user'; id: string } | null): Promise<void> {
  const now = h.clock.now();
  await h.deps.db.kysely
    .updateTable('devices')
    .set({ owner_type: owner?.type ?? null, owner_id: owner?.id ?? null, bound_at: owner ? now : null })
    .where('sn_key', '=', sn.toLowerCase())
    .execute();
  // Only `sn` is read by the fleet's listener; the rest of the event belongs to the binding feature.
  await h.services.events.emit({ type: owner ? 'device.bound' : 'device.unbound', sn } as never);
}

export interface SeededFleet {
  mchid: string;
  orgId: string;
  subs: Array<{ orgId: string; subMchid: string; shortname: string }>;
  /** SNs in binding (= listing) order. */
  sns: string[];
  modelIds: string[];
  vendorId: string;
}

/**
 * A merchant owning `own` devices and two sub-merchants owning `sub[0]` and `sub[1]`, bound in
 * an interleaved order so the list mixes owners; plus devices bound elsewhere that must not show.
 */
export async function seedFleet(
  h: Harness,
  opts: { mchid: string; own: number; sub: [number, number]; prefix: string },
): Promise<SeededFleet> {
  const s = h.services;
  const vendor = await s.vendors.create(OPERATOR, { name: `Vendor ${opts.prefix}` });
  const m1 = await s.models.create(OPERATOR, vendor.id, {
    name: 'Face Terminal 5510R',
    category_code: '3',
    class_code: '101',
  });
  const m2 = await s.models.create(OPERATOR, vendor.id, { name: 'Scan Box', category_code: '6', class_code: '110' });
  const merchant = await s.merchant.createMerchant(OPERATOR, {
    name: `Merchant ${opts.prefix}`,
    mchid: opts.mchid,
    merchant_shortname: `某公司${opts.prefix}`,
  });
  const subs: SeededFleet['subs'] = [];
  for (let i = 0; i < 2; i++) {
    const subMchid = `${opts.mchid}${i + 1}`;
    const shortname = `分店${i + 1}`;
    const v = await s.merchant.addSubMerchant(OPERATOR, opts.mchid, {
      name: `Branch ${i + 1}`,
      sub_mchid: subMchid,
      sub_merchant_shortname: shortname,
    });
    subs.push({ orgId: v.sub_merchants.find((x) => x.sub_mchid === subMchid)!.org_id, subMchid, shortname });
  }
  const owners = [
    ...Array.from({ length: opts.own }, () => merchant.org_id),
    ...Array.from({ length: opts.sub[0] }, () => subs[0]!.orgId),
    ...Array.from({ length: opts.sub[1] }, () => subs[1]!.orgId),
  ];
  // Interleave owners deterministically.
  const order = owners.map((o, i) => ({ o, k: (i * 7919) % owners.length })).sort((a, b) => a.k - b.k);
  const sns: string[] = [];
  for (let i = 0; i < order.length; i++) {
    const sn = `${opts.prefix}${String(i).padStart(5, '0')}`;
    const model = i % 3 === 0 ? m2 : m1;
    await s.devices.register(OPERATOR, model.model.model_id, sn, {
      ...(i % 2 === 0 ? { camera_sn: `CAM-${sn}` } : {}),
      ...(i % 4 !== 3 ? { app_scene_code: String((i % 4) + 1) } : {}),
      ...(i % 5 !== 0 ? { operating_system: ['android', 'linux', 'windows'][i % 3]! } : {}),
    });
    await setOwner(h, sn, { type: 'org', id: order[i]!.o });
    sns.push(sn);
  }
  // Some devices have activated: the gateway records the moment.
  const base = Date.UTC(2025, 2, 31, 11, 38, 0, 120);
  for (let i = 0; i < sns.length; i += 3) {
    await h.deps.db.kysely
      .updateTable('devices')
      .set({ activated_at: base + i * 1000, state: 'active' })
      .where('sn_key', '=', sns[i]!.toLowerCase())
      .execute();
  }
  return {
    mchid: opts.mchid,
    orgId: merchant.org_id,
    subs,
    sns,
    modelIds: [m1.model.model_id, m2.model.model_id],
    vendorId: vendor.id,
  };
}
