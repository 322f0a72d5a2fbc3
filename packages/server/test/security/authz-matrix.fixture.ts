import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { staticBindUrl } from '@bindery/protocol';
import type { Principal } from '../../src/shared/principal.js';
import { SYSTEM_CLI } from '../../src/shared/principal.js';
import { sqliteBackend } from '../../src/testing/backends.js';
import { type Harness, startHarness } from '../../src/testing/harness.js';

/**
 * One world for the authorisation matrix, built through the real services on a fresh SQLite
 * database: an operator, two vendors with keys, models and devices, organisation 1 (super admin,
 * a device admin scoped to one department, a member inside and one outside that scope, devices in
 * and out of the scope), a personal device of member 1, organisation 2 with its own admin, and an
 * outsider. Every principal but the anonymous one holds a Bearer token.
 */
export const WHO = [
  'anonymous',
  'operator',
  'superAdmin',
  'deviceAdmin',
  'member1',
  'member2',
  'otherOrgAdmin',
  'outsider',
  'vendorA',
  'vendorB',
  // Vendor people (issue 13): vendor A's admin, engineer and production worker; vendor B's admin.
  'vAdminA',
  'vEngineerA',
  'vProductionA',
  'vAdminB',
] as const;
export type Who = (typeof WHO)[number];
export const VENDOR_PEOPLE = ['vAdminA', 'vEngineerA', 'vProductionA', 'vAdminB'] as const;
export type VendorPerson = (typeof VENDOR_PEOPLE)[number];
export const PEOPLE = ['superAdmin', 'deviceAdmin', 'member1', 'member2', 'otherOrgAdmin', 'outsider'] as const;
export type Person = (typeof PEOPLE)[number];
/** Every principal that is a signed-in person (the operator is one too). */
export const USERS: readonly Who[] = ['operator', ...PEOPLE];
export const EVERYONE_SIGNED_IN: readonly Who[] = WHO.filter((w) => w !== 'anonymous');

export const PASSWORD = 'a long matrix password';

export interface World {
  h: Harness;
  tokens: Record<Exclude<Who, 'anonymous'>, string>;
  /** User ids (the operator's included); vendors have none. */
  userIds: Record<Person | 'operator', string>;
  usernames: Record<Person, string>;
  vendorA: string;
  vendorB: string;
  /** Vendor A's model for devices and binds; modelA2 carries callback settings (so binds never call out). */
  modelA: string;
  modelA2: string;
  modelB: string;
  org1: string;
  org2: string;
  dept: { root: string; scoped: string; other: string; spare: string };
  sn: { orgIn: string; orgOut: string; personal: string; vendorB: string; free: string };
  hwCode: { free: string };
  batchA: string;
  firmwareA: string;
  /** A log uploaded by sn.orgIn (device page and vendor log routes). */
  logId: string;
  /** Static management (login) QR content of sn.orgIn. */
  loginContent: string;
  appId: string;
  deliveryA: string;
  webhookA: string;
  /** A unique suffix for names and SNs made during the run. */
  next(): string;
  /** A unique number (merchant ids are digits). */
  seq(): number;
  /** Organisation 1 as a merchant, with one sub-merchant. */
  mchid: string;
  subMchid: string;
  /** A new unbound device of model A. */
  freeDevice(): Promise<{ sn: string; hwCode: string }>;
  /** A new device of model A bound by the operator: into org 1 inside or outside the scope, or member 1's space. */
  boundDevice(where: 'in' | 'out' | 'personal'): Promise<string>;
  asUser(who: Person | 'operator'): Principal;
  close(): Promise<void>;
}

export async function buildWorld(): Promise<World> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'bindery-authz-'));
  const h = await startHarness(sqliteBackend, {
    // Callback and webhook URLs point at a closed local port: no DNS, nothing leaves the machine.
    config: { BINDERY_DATA_DIR: dataDir, BINDERY_OUTBOUND_ALLOW: '127.0.0.1/32' },
  });
  try {
    return await populate(h, dataDir);
  } catch (e) {
    await h.close();
    rmSync(dataDir, { recursive: true, force: true });
    throw e;
  }
}

async function populate(h: Harness, dataDir: string): Promise<World> {
  const s = h.services;
  const db = h.deps.db.kysely;
  let counter = 0;
  const next = () => `${Date.now().toString(36)}${(++counter).toString(36)}`.toUpperCase();

  const operatorId = (await db.selectFrom('users').select('id').where('username', '=', 'root').executeTakeFirstOrThrow()).id;
  const usernames = {} as Record<Person, string>;
  const userIds = { operator: operatorId } as Record<Person | 'operator', string>;
  for (const p of PEOPLE) {
    usernames[p] = `${p.toLowerCase()}.matrix`;
    userIds[p] = (await s.accounts.createUser(SYSTEM_CLI, { username: usernames[p], password: PASSWORD, displayName: p })).id;
  }
  const asUser = (who: Person | 'operator'): Principal => ({
    kind: 'user',
    userId: userIds[who],
    isOperator: who === 'operator',
  });

  // Vendors, models, devices.
  const vA = await s.vendors.create(SYSTEM_CLI, { name: 'Vendor A' });
  const vB = await s.vendors.create(SYSTEM_CLI, { name: 'Vendor B' });
  const mA = (await s.models.create(SYSTEM_CLI, vA.id, { name: 'Lock A', product_key: 'pkMatrixA', shared_seed: true })).model
    .model_id;
  const mA2 = (await s.models.create(SYSTEM_CLI, vA.id, { name: 'Lock A2', product_key: 'pkMatrixA2' })).model.model_id;
  const mB = (await s.models.create(SYSTEM_CLI, vB.id, { name: 'Lock B', product_key: 'pkMatrixB' })).model.model_id;
  const register = async (modelId: string) => {
    const sn = `MX${next()}`;
    const r = await s.devices.register(SYSTEM_CLI, modelId, sn);
    return { sn, hwCode: r.device.hw_code as string };
  };

  // Organisation 1: root → Scoped, root → Other, root → Spare (renamed by the matrix).
  const { organisation: o1 } = await s.organisations.create(SYSTEM_CLI, {
    name: 'Org One',
    superAdmin: { userId: userIds.superAdmin },
  });
  const boss = asUser('superAdmin');
  const root = (await s.organisations.listDepartments(boss, o1.id))[0]!.id;
  const scoped = (await s.organisations.createDepartment(boss, o1.id, { name: 'Scoped' })).id;
  const other = (await s.organisations.createDepartment(boss, o1.id, { name: 'Other' })).id;
  const spare = (await s.organisations.createDepartment(boss, o1.id, { name: 'Spare' })).id;
  await s.organisations.addMember(SYSTEM_CLI, o1.id, {
    userId: userIds.deviceAdmin,
    role: 'device_admin',
    departmentId: scoped,
    scope: [scoped],
  });
  await s.organisations.addMember(SYSTEM_CLI, o1.id, { userId: userIds.member1, role: 'member', departmentId: scoped });
  await s.organisations.addMember(SYSTEM_CLI, o1.id, { userId: userIds.member2, role: 'member', departmentId: other });
  const { organisation: o2 } = await s.organisations.create(SYSTEM_CLI, {
    name: 'Org Two',
    superAdmin: { userId: userIds.otherOrgAdmin },
  });
  const app = await s.organisations.createApplication(boss, o1.id, { appKey: 'matrix.app', name: 'Matrix App' });

  const boundDevice = async (where: 'in' | 'out' | 'personal') => {
    const { sn } = await register(mA);
    if (where === 'personal') await s.binding.bind(SYSTEM_CLI, sn, { type: 'user', id: userIds.member1 });
    else
      await s.binding.bind(
        SYSTEM_CLI,
        sn,
        { type: 'org', id: o1.id },
        { visibleTo: { departments: [where === 'in' ? scoped : other] } },
      );
    return sn;
  };

  // A vendor-A webhook before the binds, so the binds leave deliveries in its log.
  const webhook = await s.callbacks.createWebhook(
    SYSTEM_CLI,
    { type: 'vendor', id: vA.id },
    { url: 'http://127.0.0.1:9/hooks/a' },
  );
  const orgIn = await boundDevice('in');
  const orgOut = await boundDevice('out');
  const personal = await boundDevice('personal');
  const snB = (await register(mB)).sn;
  await s.binding.bind(SYSTEM_CLI, snB, { type: 'org', id: o2.id });
  const free = await register(mA);

  const batch = await s.production.createBatch(SYSTEM_CLI, mA, {
    count: 1,
    pattern: { kind: 'random', prefix: 'MB', length: 8, checkChar: false },
  });
  const fw = await s.firmware.publishUpload(SYSTEM_CLI, mA, { version: '1.0.0' }, Buffer.from('firmware bytes'));
  const inRow = await db.selectFrom('devices').select('id').where('sn', '=', orgIn).executeTakeFirstOrThrow();
  const log = await s.deviceLogs.storeLog(
    SYSTEM_CLI,
    { id: Number(inRow.id), sn: orgIn },
    'req1',
    Buffer.from('a log line\n'),
    5,
  );
  await s.deviceLogs.recordError(SYSTEM_CLI, { id: Number(inRow.id), sn: orgIn }, 600010, 'motor stalled');
  const { login_code } = await s.binding.issueLoginCode(SYSTEM_CLI, orgIn);
  const deliveries = await s.callbacks.listDeliveries(SYSTEM_CLI, { type: 'vendor', id: vA.id }, {});
  const deliveryA = deliveries.deliveries[0]?.id;
  if (!deliveryA) throw new Error('the binds left no delivery for vendor A');
  await s.inspections.importRecords(SYSTEM_CLI, [
    { device_sn: orgIn, result: 'SUCCESS', inspect_time: '2026-01-01T10:00:00.000+08:00' },
  ]);
  const mchid = '1900000001';
  const subMchid = '1900000002';
  // Organisation 1 is the merchant: its super admin manages it (merchant self-service), nobody else there.
  await s.merchant.createMerchant(SYSTEM_CLI, { org_id: o1.id, mchid, merchant_shortname: 'Shop' });
  await s.merchant.addSubMerchant(SYSTEM_CLI, mchid, { name: 'Sub', sub_mchid: subMchid, sub_merchant_shortname: 'Sub' });

  const tokens = { operator: h.operatorToken } as World['tokens'];
  for (const p of PEOPLE) tokens[p] = (await s.people.createToken(asUser(p), 'matrix')).token;
  tokens.vendorA = (await s.accounts.createVendorKey(SYSTEM_CLI, vA.id, 'matrix')).token;
  tokens.vendorB = (await s.accounts.createVendorKey(SYSTEM_CLI, vB.id, 'matrix')).token;
  // Vendor people join through an invitation and script with a personal token (their roles ride on it).
  const vendorPeople: Array<[VendorPerson, string, 'vendor_admin' | 'engineer' | 'production']> = [
    ['vAdminA', vA.id, 'vendor_admin'],
    ['vEngineerA', vA.id, 'engineer'],
    ['vProductionA', vA.id, 'production'],
    ['vAdminB', vB.id, 'vendor_admin'],
  ];
  for (const [who, vendorId, role] of vendorPeople) {
    const u = await s.accounts.createUser(SYSTEM_CLI, { username: `${who.toLowerCase()}.matrix`, password: PASSWORD });
    const { token } = await s.vendorPeople.createInvite(SYSTEM_CLI, vendorId, { role });
    const me: Principal = { kind: 'user', userId: u.id, isOperator: false };
    await s.vendorPeople.acceptInvite(token, me);
    tokens[who] = (await s.people.createToken(me, 'matrix')).token;
  }

  return {
    h,
    tokens,
    userIds,
    usernames,
    vendorA: vA.id,
    vendorB: vB.id,
    modelA: mA,
    modelA2: mA2,
    modelB: mB,
    org1: o1.id,
    org2: o2.id,
    dept: { root, scoped, other, spare },
    sn: { orgIn, orgOut, personal, vendorB: snB, free: free.sn },
    hwCode: { free: free.hwCode },
    batchA: batch.id,
    firmwareA: fw.id,
    logId: log.id,
    loginContent: login_code,
    appId: app.id,
    deliveryA,
    mchid,
    subMchid,
    webhookA: webhook.webhook.id,
    next,
    seq: () => ++counter,
    freeDevice: () => register(mA),
    boundDevice,
    asUser,
    async close() {
      await h.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The static label URL of a device, as a phone would scan it. */
export function labelOf(w: World, hwCode: string): string {
  return staticBindUrl(w.h.deps.config.publicUrl, hwCode);
}
