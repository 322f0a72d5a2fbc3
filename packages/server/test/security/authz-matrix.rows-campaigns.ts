import { SYSTEM_CLI } from '../../src/shared/principal.js';
import type { Who, World } from './authz-matrix.fixture.js';
import type { Row } from './authz-matrix.rows.js';

/** The matrix, continued (issue 14): firmware campaigns belong to their vendor (operators act for all). */
const VA: readonly Who[] = ['operator', 'vendorA'];
/**
 * Organisation campaigns: organisation 1's admins (operators act for all); the device admin's
 * reach only the devices in their scope (campaigns.scope.test.ts).
 */
const ORG1_ADMINS: readonly Who[] = ['operator', 'superAdmin', 'deviceAdmin'];

/** Model A lets the organisations owning its devices run campaigns (idempotent). */
async function allowOrgCampaigns(w: World): Promise<void> {
  await w.h.services.models.update(SYSTEM_CLI, w.modelA, { org_campaigns_allowed: true });
}

/** One campaign of vendor A over model A, made once per world. */
const made = new WeakMap<World, Promise<string>>();
function campaignOf(w: World): Promise<string> {
  let p = made.get(w);
  if (!p) {
    p = w.h.services.campaigns.create(SYSTEM_CLI, w.vendorA, body(w)).then((c) => c.id);
    made.set(w, p);
  }
  return p;
}

function body(w: World) {
  return {
    name: `matrix ${w.next()}`,
    model_id: w.modelA,
    firmware_id: w.firmwareA,
    stages: { canary_count: 1, rate_per_minute: 10, factor: 2, stage_size: 10 },
    thresholds: { min_executions: 10, failure_pct: 10, timeout_pct: 20, did_not_come_back_pct: 5 },
  };
}

const byId = (method: 'GET' | 'POST', suffix = ''): Row => ({
  op: `${method} /api/v1/campaigns/{campaignId}${suffix}`,
  allow: VA,
  req: async ({ w }) => ({
    url: `/api/v1/campaigns/${await campaignOf(w)}${suffix}`,
    ...(method === 'POST' ? { payload: {} } : {}),
  }),
});

export const CAMPAIGN_ROWS: Row[] = [
  {
    op: 'POST /api/v1/vendors/{vendorId}/campaigns',
    allow: VA,
    req: ({ w }) => ({ url: `/api/v1/vendors/${w.vendorA}/campaigns`, payload: body(w) }),
  },
  {
    op: 'GET /api/v1/vendors/{vendorId}/campaigns',
    allow: VA,
    req: ({ w }) => ({ url: `/api/v1/vendors/${w.vendorA}/campaigns` }),
  },
  byId('GET'),
  byId('GET', '/samples'),
  byId('GET', '/executions'),
  byId('POST', '/pause'),
  byId('POST', '/resume'),
  byId('POST', '/retry'),
  byId('POST', '/cancel'),
  {
    op: 'POST /api/v1/orgs/{orgId}/campaigns',
    allow: ORG1_ADMINS,
    req: async ({ w, who }) => {
      await allowOrgCampaigns(w);
      // The device admin's scope holds sn.orgIn only.
      const sn = who === 'deviceAdmin' ? w.sn.orgIn : w.sn.orgOut;
      return { url: `/api/v1/orgs/${w.org1}/campaigns`, payload: { ...body(w), target: { sns: [sn] } } };
    },
    // Gives the device back, so the vendor's campaign rows and the next principal find it free.
    after: async ({ w }) => {
      for (const c of await w.h.services.campaigns.listForOrg(SYSTEM_CLI, w.org1, { status: 'running' })) {
        await w.h.services.campaigns.cancel(SYSTEM_CLI, c.id);
      }
    },
  },
  {
    op: 'GET /api/v1/orgs/{orgId}/campaigns',
    allow: ORG1_ADMINS,
    req: ({ w }) => ({ url: `/api/v1/orgs/${w.org1}/campaigns` }),
  },
  {
    op: 'GET /api/v1/orgs/{orgId}/campaign-models',
    allow: ORG1_ADMINS,
    req: async ({ w }) => {
      await allowOrgCampaigns(w);
      return { url: `/api/v1/orgs/${w.org1}/campaign-models` };
    },
  },
  // Owner targets for the vendor's form: its people with the firmware capability.
  {
    op: 'GET /api/v1/vendors/{vendorId}/campaign-orgs',
    allow: VA,
    req: ({ w }) => ({ url: `/api/v1/vendors/${w.vendorA}/campaign-orgs` }),
  },
  {
    op: 'GET /api/v1/vendors/{vendorId}/campaign-orgs/{orgId}/departments',
    allow: VA,
    req: ({ w }) => ({ url: `/api/v1/vendors/${w.vendorA}/campaign-orgs/${w.org1}/departments` }),
  },
  {
    op: 'GET /api/v1/devices/{sn}/campaigns',
    allow: VA,
    req: ({ w }) => ({ url: `/api/v1/devices/${w.sn.orgIn}/campaigns` }),
  },
];
