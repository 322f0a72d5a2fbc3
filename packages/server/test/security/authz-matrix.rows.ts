import { staticLoginUrl } from '@bindery/protocol';
import { SYSTEM_CLI } from '../../src/shared/principal.js';
import { EVERYONE_SIGNED_IN, labelOf, PASSWORD, USERS, type Who, type World } from './authz-matrix.fixture.js';

/**
 * The authorisation matrix: one row per operation (`METHOD /path/{param}`, as /openapi.json names
 * it; hidden routes too). `allow` is the INTENDED policy: who passes authorisation. Everyone else is
 * refused: anonymous with exactly 401 on /api, signed-in principals with 403 or 404 (`refuse`
 * narrows it); `signature` rows (WeCom /cgi-bin, WeChat Pay /v3) trust no Bearer token or session
 * at all, only their own signatures, so every principal here is refused.
 */
export interface Ctx {
  w: World;
  who: Who;
  /** What req() made, for after() and effect(). */
  state: Record<string, string>;
}
export interface Req {
  url: string;
  payload?: unknown;
  headers?: Record<string, string>;
}
export interface Row {
  op: string;
  allow: readonly Who[] | 'public' | 'signature';
  req: (c: Ctx) => Req | Promise<Req>;
  /** Runs after each request (cleanup of state that would change other rows). */
  after?: (c: Ctx) => Promise<void>;
  /** What must (not) have happened after the request, whatever its status: a problem, or null. */
  effect?: (c: Ctx) => Promise<string | null>;
  /** The refusals allowed for a signed-in principal not allowed (default 403 and 404). */
  refuse?: (who: Who) => readonly number[];
  /** An allowed principal may get 404 (placeholder ids of objects this world has no use for). */
  allow404?: boolean;
  /** Allowed principals may also get these statuses (e.g. 503 while the console is not built). */
  alsoOk?: readonly number[];
  /** The issue-11 finding this row covers (named in the test title). */
  finding?: string;
  /** For /cgi-bin rows: the errcode every principal must get (else any non-zero one). */
  wecomErrcode?: number;
  /** Principals for whom both answers are right (e.g. a page that is a static shell once the console is built). */
  either?: readonly Who[];
  /** Strings the response of a filtered list must not contain for the principal. */
  hidden?: (w: World, who: Who) => string[];
  /** Run after every other row (it may end sessions or tokens). */
  last?: boolean;
  /** Server-Sent Events: read the status over a real connection, then hang up. */
  stream?: boolean;
  /** Present only in some builds (the console's /assets/* exists when the console is built). */
  optional?: boolean;
}

const OP: readonly Who[] = ['operator'];
/** Operators and vendor A (the owner of every model and device these rows name). */
const VA: readonly Who[] = ['operator', 'vendorA'];
const ORG1_ALL: readonly Who[] = ['operator', 'superAdmin', 'deviceAdmin', 'member1', 'member2'];
/** Those who manage sn.orgIn: operators, organisation 1's super admin, the device admin whose scope holds it. */
const ORG1_ADMINS: readonly Who[] = ['operator', 'superAdmin', 'deviceAdmin'];
const SUPER: readonly Who[] = ['operator', 'superAdmin'];
const userIdOf = (c: Ctx) => (USERS.includes(c.who) ? c.w.userIds[c.who as keyof World['userIds']] : null);
const json = (url: string, payload: unknown): Req => ({ url, payload });
const get = (url: string): Req => ({ url });
const md5 = '0123456789abcdef0123456789abcdef';
/**
 * A WeCom-shaped call without its model or device access token: whatever Bearer token or session
 * comes along, the answer is errcode 40014 (the token is missing), never a look at the body.
 */
const cgi = (name: string): Row => ({
  op: `POST /cgi-bin/openhw/${name}`,
  allow: 'signature',
  wecomErrcode: 40014,
  req: () => json(`/cgi-bin/openhw/${name}`, {}),
});
const page = (op: string, url: string, extra: Partial<Row> = {}): Row => ({ op, allow: 'public', req: () => get(url), ...extra });

export const ROWS: Row[] = [
  // ── ops, docs ───────────────────────────────────────────────────────────
  page('GET /healthz', '/healthz'),
  page('GET /readyz', '/readyz'),
  // Scraped without credentials by design; operators restrict it at the proxy (docs/operations.md).
  page('GET /metrics', '/metrics'),
  page('GET /openapi.json', '/openapi.json'),
  page('GET /docs', '/docs', { alsoOk: [302] }),
  page('GET /docs/static/index.html', '/docs/static/index.html'),
  page('GET /docs/static/swagger-initializer.js', '/docs/static/swagger-initializer.js'),
  page('GET /docs/static/*', '/docs/static/swagger-ui.css'),
  page('GET /docs/json', '/docs/json'),
  page('GET /docs/yaml', '/docs/yaml'),

  // ── accounts, vendors, models, devices (vendor scoped) ─────────────────
  // Signing in is public; guessing is limited elsewhere (lockout suites).
  {
    op: 'POST /api/v1/tokens',
    allow: 'public',
    req: ({ w }) => json('/api/v1/tokens', { username: w.usernames.outsider, password: PASSWORD }),
  },
  {
    op: 'POST /api/v1/operators',
    allow: OP,
    req: ({ w }) => json('/api/v1/operators', { username: `op${w.next()}`, password: PASSWORD }),
  },
  {
    op: 'DELETE /api/v1/tokens/{id}',
    allow: VA,
    req: async (c) => {
      c.state.key = (await c.w.h.services.accounts.createVendorKey(SYSTEM_CLI, c.w.vendorA, 'doomed')).id;
      return get(`/api/v1/tokens/${c.state.key}`);
    },
    // A vendor key is revoked by its vendor's admins (and operators) only; a refusal leaves it working.
    effect: async (c) => {
      const row = await c.w.h.deps.db.kysely
        .selectFrom('api_tokens')
        .select('revoked_at')
        .where('id', '=', c.state.key!)
        .executeTakeFirstOrThrow();
      const revoked = row.revoked_at !== null;
      return revoked === VA.includes(c.who) ? null : `revoked: ${revoked}`;
    },
  },
  { op: 'POST /api/v1/vendors', allow: OP, req: ({ w }) => json('/api/v1/vendors', { name: `V ${w.next()}` }) },
  {
    op: 'GET /api/v1/vendors',
    allow: EVERYONE_SIGNED_IN,
    req: () => get('/api/v1/vendors'),
    hidden: (w, who) => (who === 'operator' || who === 'vendorA' ? [] : [w.vendorA]),
  },
  { op: 'GET /api/v1/vendors/{vendorId}', allow: VA, req: ({ w }) => get(`/api/v1/vendors/${w.vendorA}`) },
  {
    op: 'POST /api/v1/vendors/{vendorId}/keys',
    allow: VA,
    req: ({ w }) => json(`/api/v1/vendors/${w.vendorA}/keys`, { name: 'k' }),
  },
  {
    op: 'POST /api/v1/vendors/{vendorId}/models',
    allow: VA,
    req: ({ w }) => json(`/api/v1/vendors/${w.vendorA}/models`, { name: `M ${w.next()}` }),
  },
  { op: 'GET /api/v1/vendors/{vendorId}/models', allow: VA, req: ({ w }) => get(`/api/v1/vendors/${w.vendorA}/models`) },
  { op: 'GET /api/v1/models/{modelId}', allow: VA, req: ({ w }) => get(`/api/v1/models/${w.modelA}`) },
  { op: 'PATCH /api/v1/models/{modelId}', allow: VA, req: ({ w }) => json(`/api/v1/models/${w.modelA}`, { name: 'Lock A' }) },
  { op: 'POST /api/v1/models/{modelId}/secret', allow: VA, req: ({ w }) => json(`/api/v1/models/${w.modelA2}/secret`, {}) },
  {
    op: 'GET /api/v1/models/{modelId}/seed-secret-no',
    allow: VA,
    req: ({ w }) => get(`/api/v1/models/${w.modelA}/seed-secret-no`),
  },
  { op: 'GET /api/v1/models/{modelId}/ticket', allow: VA, req: ({ w }) => get(`/api/v1/models/${w.modelA}/ticket`) },
  {
    op: 'POST /api/v1/models/{modelId}/devices',
    allow: VA,
    req: ({ w }) => json(`/api/v1/models/${w.modelA}/devices`, { sn: `MX${w.next()}` }),
  },
  { op: 'GET /api/v1/vendors/{vendorId}/devices', allow: VA, req: ({ w }) => get(`/api/v1/vendors/${w.vendorA}/devices`) },
  { op: 'GET /api/v1/devices/{sn}', allow: VA, req: ({ w }) => get(`/api/v1/devices/${w.sn.orgIn}`) },
  { op: 'DELETE /api/v1/devices/{sn}', allow: VA, req: async ({ w }) => get(`/api/v1/devices/${(await w.freeDevice()).sn}`) },
  { op: 'GET /api/v1/devices/{sn}/secret-no', allow: VA, req: ({ w }) => get(`/api/v1/devices/${w.sn.orgIn}/secret-no`) },
  {
    op: 'POST /api/v1/models/{modelId}/batches',
    allow: VA,
    req: ({ w }) =>
      json(`/api/v1/models/${w.modelA}/batches`, { count: 1, pattern: { kind: 'random', prefix: 'MB', length: 8 } }),
  },
  { op: 'GET /api/v1/models/{modelId}/batches', allow: VA, req: ({ w }) => get(`/api/v1/models/${w.modelA}/batches`) },
  { op: 'GET /api/v1/vendors/{vendorId}/batches', allow: VA, req: ({ w }) => get(`/api/v1/vendors/${w.vendorA}/batches`) },
  { op: 'GET /api/v1/batches/{batchId}', allow: VA, req: ({ w }) => get(`/api/v1/batches/${w.batchA}`) },
  {
    op: 'GET /api/v1/batches/{batchId}/download',
    allow: VA,
    req: ({ w }) => get(`/api/v1/batches/${w.batchA}/download?include=manifest`),
  },
  { op: 'GET /api/v1/batches/{batchId}/secrets.csv', allow: VA, req: ({ w }) => get(`/api/v1/batches/${w.batchA}/secrets.csv`) },
  page('GET /api/v1/relations/template.csv', '/api/v1/relations/template.csv?lang=en'),
  page('GET /api/v1/relations/template.xlsx', '/api/v1/relations/template.xlsx?lang=en'),
  {
    op: 'POST /api/v1/vendors/{vendorId}/relations/import',
    allow: VA,
    req: ({ w }) => ({
      url: `/api/v1/vendors/${w.vendorA}/relations/import?dry_run=true&format=csv`,
      payload: `sn,device_key\n${w.sn.orgIn},860000000000001\n`,
      headers: { 'content-type': 'text/csv' },
    }),
  },
  {
    op: 'GET /api/v1/vendors/{vendorId}/relations/export.csv',
    allow: VA,
    req: ({ w }) => get(`/api/v1/vendors/${w.vendorA}/relations/export.csv?lang=en`),
  },
  {
    op: 'GET /api/v1/vendors/{vendorId}/relations/imports',
    allow: VA,
    req: ({ w }) => get(`/api/v1/vendors/${w.vendorA}/relations/imports`),
  },

  // ── the WeCom-shaped cloud API: model tokens and signatures only ──────────
  {
    // The door that trades a model's secret for a token: a wrong secret gets no token, whoever asks.
    op: 'POST /cgi-bin/openhw/get_model_token',
    allow: 'signature',
    req: ({ w }) =>
      json('/cgi-bin/openhw/get_model_token', {
        model_id: w.modelA,
        model_secret: 'not-the-secret',
        model_ticket: 'not-the-ticket',
      }),
  },
  ...[
    'model/register_sn',
    'model/unregister_sn',
    'get_device_secret',
    'get_device_token',
    'device/gen_id_dynamic_qrcode',
    'device/report_device_status',
    'device/get_userinfo_by_page',
    'device/get_userinfo_by_ids',
    'device/report_firmware_upgrade_result',
    'device/gen_login_qrcode',
    'device/get_device_detail',
  ].map(cgi),

  // ── binding and device management (people) ──────────────────────────────
  // The operator route: a typed SN proves nothing about holding the device. People ask for their
  // own personal space (where anyone may bind by a real method), vendors for organisation 1.
  // finding: the second bind path let any signed-in user bind any SN into their own space or their organisation.
  {
    op: 'POST /api/v1/devices/{sn}/bind',
    allow: OP,
    finding: 'second bind path let any user bind any SN',
    req: async (c) => {
      const { sn } = await c.w.freeDevice();
      const self = userIdOf(c);
      const owner =
        self && c.who !== 'operator' ? { owner_type: 'user', owner_id: self } : { owner_type: 'org', owner_id: c.w.org1 };
      return json(`/api/v1/devices/${sn}/bind`, owner);
    },
  },
  {
    op: 'DELETE /api/v1/devices/{sn}/bind',
    allow: ORG1_ADMINS,
    req: async ({ w }) => get(`/api/v1/devices/${await w.boundDevice('in')}/bind`),
  },
  {
    // Into organisation 1: member binding is off there; vendors are not people.
    op: 'POST /api/v1/bind',
    allow: ORG1_ADMINS,
    req: async ({ w }) =>
      json('/api/v1/bind', { owner: { type: 'org', id: w.org1 }, content: labelOf(w, (await w.freeDevice()).hwCode) }),
  },
  {
    op: 'POST /api/v1/devices/{sn}/transfer',
    allow: ORG1_ADMINS,
    finding: 'transfer checked the destination before authorisation',
    // Allowed people move it into their own space. The others ask for the owner it already has:
    // they must hear 403/404, not "The device already belongs there".
    // finding: transfer compared owners before authorisation, telling anyone who owns any SN.
    req: async (c) => {
      const sn = await c.w.boundDevice('in');
      const self = userIdOf(c);
      const owner = ORG1_ADMINS.includes(c.who) && self ? { type: 'user', id: self } : { type: 'org', id: c.w.org1 };
      return json(`/api/v1/devices/${sn}/transfer`, { owner });
    },
  },
  {
    op: 'GET /api/v1/me/devices',
    allow: USERS,
    req: () => get('/api/v1/me/devices'),
    hidden: (w, who) => (who === 'member1' || who === 'operator' ? [] : [w.sn.personal]),
  },
  {
    op: 'GET /api/v1/orgs/{orgId}/devices',
    allow: ORG1_ALL,
    req: ({ w }) => get(`/api/v1/orgs/${w.org1}/devices`),
    // Members see only what they bound; the device admin only their scope.
    hidden: (w, who) =>
      who === 'member1' || who === 'member2' ? [w.sn.orgIn, w.sn.orgOut] : who === 'deviceAdmin' ? [w.sn.orgOut] : [],
  },
  // Member 1 is inside sn.orgIn's range: "visible to" lets them see its page, read-only (issue 12).
  {
    op: 'GET /api/v1/devices/{sn}/page',
    allow: [...ORG1_ADMINS, 'member1'],
    req: ({ w }) => get(`/api/v1/devices/${w.sn.orgIn}/page`),
  },
  // Outside the device admin's scope: only the super admin (and operators).
  {
    op: 'PUT /api/v1/devices/{sn}/remark-name',
    allow: SUPER,
    req: ({ w }) => json(`/api/v1/devices/${w.sn.orgOut}/remark-name`, { remark_name: 'x' }),
  },
  {
    op: 'POST /api/v1/devices/{sn}/actions/upgrade-firmware',
    allow: ORG1_ADMINS,
    req: ({ w }) => json(`/api/v1/devices/${w.sn.orgIn}/actions/upgrade-firmware`, {}),
  },
  // member 1's personal device: its owner (and operators).
  {
    op: 'POST /api/v1/devices/{sn}/actions/reboot',
    allow: ['operator', 'member1'],
    req: ({ w }) => json(`/api/v1/devices/${w.sn.personal}/actions/reboot`, {}),
  },
  {
    op: 'POST /api/v1/devices/{sn}/actions/fetch-log',
    allow: ORG1_ADMINS,
    req: ({ w }) => json(`/api/v1/devices/${w.sn.orgIn}/actions/fetch-log`, { hint: 'h' }),
  },
  {
    op: 'GET /api/v1/devices/{sn}/page/logs/{logId}',
    allow: ORG1_ADMINS,
    req: ({ w }) => get(`/api/v1/devices/${w.sn.orgIn}/page/logs/${w.logId}`),
  },
  {
    op: 'POST /api/v1/devices/{sn}/actions/fetch-status',
    allow: ORG1_ADMINS,
    req: ({ w }) => json(`/api/v1/devices/${w.sn.orgIn}/actions/fetch-status`, {}),
  },
  {
    op: 'GET /api/v1/models/{modelId}/bind-settings',
    allow: VA,
    req: ({ w }) => get(`/api/v1/models/${w.modelA}/bind-settings`),
  },
  {
    op: 'PUT /api/v1/models/{modelId}/bind-settings',
    allow: VA,
    req: ({ w }) => json(`/api/v1/models/${w.modelA}/bind-settings`, {}),
  },
  { op: 'GET /api/v1/devices/{sn}/verif-code', allow: VA, req: ({ w }) => get(`/api/v1/devices/${w.sn.orgIn}/verif-code`) },
  {
    op: 'POST /api/v1/devices/{sn}/login-codes',
    allow: VA,
    req: ({ w }) => json(`/api/v1/devices/${w.sn.orgIn}/login-codes`, { state: 's' }),
  },
  // Scans are for people; a vendor key learns nothing from another vendor's label here.
  // finding: vendor keys got a 200 scan resolution (device card of any label) instead of 403.
  {
    op: 'POST /api/v1/scan/resolve',
    allow: USERS,
    finding: 'vendor keys resolved scans',
    req: ({ w }) => json('/api/v1/scan/resolve', { content: labelOf(w, w.hwCode.free) }),
  },
  {
    // The people a device is visible to are the ones who may use it (WeCom's get_userinfo_by_ids):
    // member 1, inside its range, signs in on it as an ordinary user (user_type 0).
    op: 'POST /api/v1/scan/login',
    allow: [...ORG1_ADMINS, 'member1'],
    req: ({ w }) => json('/api/v1/scan/login', { content: staticLoginUrl(w.h.deps.config.publicUrl, w.loginContent, 'st') }),
  },
  {
    op: 'POST /api/v1/devices/{sn}/commands',
    allow: VA,
    req: ({ w }) => json(`/api/v1/devices/${w.sn.orgIn}/commands`, { cmd: 'restart' }),
  },
  // Issue 13 item 9: the device's admins read its command history too; member 1, who sees it, does not.
  {
    op: 'GET /api/v1/devices/{sn}/commands',
    allow: [...VA, 'superAdmin', 'deviceAdmin'],
    req: ({ w }) => get(`/api/v1/devices/${w.sn.orgIn}/commands`),
  },
  { op: 'GET /api/v1/devices/{sn}/logs', allow: VA, req: ({ w }) => get(`/api/v1/devices/${w.sn.orgIn}/logs`) },
  { op: 'GET /api/v1/devices/{sn}/logs/{id}', allow: VA, req: ({ w }) => get(`/api/v1/devices/${w.sn.orgIn}/logs/${w.logId}`) },
  { op: 'GET /api/v1/devices/{sn}/error-reports', allow: VA, req: ({ w }) => get(`/api/v1/devices/${w.sn.orgIn}/error-reports`) },

  // ── firmware ─────────────────────────────────────────────────────────────
  {
    op: 'POST /api/v1/models/{modelId}/firmware',
    allow: VA,
    req: ({ w }) =>
      json(`/api/v1/models/${w.modelA}/firmware`, {
        version: `9.${w.next()}`.slice(0, 32),
        download_url: 'https://fw.example.invalid/a.bin',
        md5sum: md5,
        size: 1,
        make_current: false,
      }),
  },
  { op: 'GET /api/v1/models/{modelId}/firmware', allow: VA, req: ({ w }) => get(`/api/v1/models/${w.modelA}/firmware`) },
  {
    op: 'POST /api/v1/models/{modelId}/firmware/upload',
    allow: VA,
    req: ({ w }) => ({
      url: `/api/v1/models/${w.modelA}/firmware/upload?version=8.${w.next()}&make_current=false`,
      payload: Buffer.from('fw'),
      headers: { 'content-type': 'application/octet-stream' },
    }),
  },
  {
    op: 'POST /api/v1/models/{modelId}/firmware/{id}/current',
    allow: VA,
    req: ({ w }) => json(`/api/v1/models/${w.modelA}/firmware/${w.firmwareA}/current`, {}),
  },
  // Devices fetch it without credentials; the id is unguessable.
  page('GET /api/v1/firmware/{id}/file', '', { req: ({ w }) => get(`/api/v1/firmware/${w.firmwareA}/file`) }),
];
