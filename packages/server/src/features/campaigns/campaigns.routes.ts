import type { FastifyInstance } from 'fastify';
import { principalOf } from '../../http/auth.js';
import type { Services } from '../../services.js';
import {
  type CampaignStatus,
  DEFAULT_ERROR_REPORT_THRESHOLD,
  EXEC_STATES,
  type ExecState,
  MAX_ERROR_REPORT_THRESHOLD,
} from './campaigns.model.js';
import type { CreateCampaignInput } from './campaigns.service.js';

const TAGS = ['campaigns'];
const int = { type: 'integer' } as const;
const pct = { type: ['number', 'null'], exclusiveMinimum: 0, maximum: 100 } as const;
const countsSchema = {
  type: 'object',
  required: [...EXEC_STATES],
  properties: Object.fromEntries(EXEC_STATES.map((s) => [s, int])),
} as const;
const stagesSchema = {
  type: 'object',
  required: ['rate_per_minute', 'factor', 'stage_size'],
  additionalProperties: false,
  properties: {
    canary_count: { type: 'integer', minimum: 0 },
    canary_percent: { type: 'number', exclusiveMinimum: 0, maximum: 100 },
    rate_per_minute: { type: 'integer', minimum: 1 },
    factor: { type: 'number', minimum: 1, maximum: 10 },
    stage_size: { type: 'integer', minimum: 1 },
    max_rate_per_minute: { type: 'integer', minimum: 1 },
  },
} as const;
const thresholdsSchema = {
  type: 'object',
  required: ['min_executions', 'failure_pct', 'timeout_pct', 'did_not_come_back_pct'],
  additionalProperties: false,
  properties: { min_executions: { type: 'integer', minimum: 1 }, failure_pct: pct, timeout_pct: pct, did_not_come_back_pct: pct },
} as const;
const targetSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    from_versions: { type: 'array', maxItems: 100, items: { type: ['string', 'null'], maxLength: 64 } },
    online_only: { type: 'boolean' },
    sns: { type: 'array', maxItems: 100_000, items: { type: 'string', maxLength: 128 } },
    org_id: { type: 'string', maxLength: 64 },
    department_id: {
      type: 'string',
      maxLength: 64,
      description: "Only the organisation's devices in this department or a sub-department",
    },
  },
} as const;
const windowSchema = {
  type: 'object',
  required: ['start', 'end'],
  additionalProperties: false,
  description:
    "Devices are notified only while their owner's local time (the organisation's time zone, else the instance's) is in [start, end); days (0 = Sunday) name the days it opens",
  properties: {
    start: { type: 'string', pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$' },
    end: { type: 'string', pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$' },
    days: { type: 'array', minItems: 1, maxItems: 7, items: { type: 'integer', minimum: 0, maximum: 6 } },
  },
} as const;
const figuresSchema = {
  type: ['object', 'null'],
  properties: {
    criterion: { type: ['string', 'null'] },
    executed: int,
    succeeded: int,
    failed: int,
    timed_out: int,
    did_not_come_back: int,
  },
} as const;
const campaignView = {
  type: 'object',
  required: ['id', 'vendor_id', 'model_id', 'version', 'name', 'status', 'total', 'stage', 'rate_per_minute', 'counts'],
  properties: {
    id: { type: 'string' },
    vendor_id: { type: 'string' },
    org_id: { type: ['string', 'null'] },
    maintenance_window: { ...windowSchema, type: ['object', 'null'] },
    model_id: { type: 'string' },
    firmware_id: { type: 'string' },
    version: { type: 'string' },
    name: { type: 'string' },
    status: { type: 'string', enum: ['running', 'paused', 'cancelled', 'completed'] },
    target: targetSchema,
    stages: stagesSchema,
    thresholds: thresholdsSchema,
    offline: { type: 'string', enum: ['skip', 'queue'] },
    queue_expiry_sec: int,
    window_sec: int,
    error_report_threshold: { ...int, description: 'error_reports a downloading device may send before its execution fails' },
    total: int,
    stage: int,
    rate_per_minute: int,
    counts: countsSchema,
    pause_reason: { type: ['string', 'null'] },
    pause_figures: figuresSchema,
    paused_at: { type: ['string', 'null'] },
    created_by: { type: 'string' },
    created_at: { type: 'string' },
    finished_at: { type: ['string', 'null'] },
  },
} as const;
const executionView = {
  type: 'object',
  required: ['campaign_id', 'sn', 'state'],
  properties: {
    campaign_id: { type: 'string' },
    sn: { type: 'string' },
    stage: { type: ['integer', 'null'] },
    state: { type: 'string', enum: [...EXEC_STATES] },
    detail: { type: ['string', 'null'] },
    from_version: { type: ['string', 'null'] },
    attempts: int,
    error_reports: {
      ...int,
      description:
        "error_reports received while downloading in this attempt; at the campaign's threshold the execution fails (detail error_reports)",
    },
    notified_at: { type: ['string', 'null'] },
    finished_at: { type: ['string', 'null'] },
    updated_at: { type: 'string' },
  },
} as const;
const createBody = {
  type: 'object',
  required: ['name', 'model_id', 'firmware_id', 'stages', 'thresholds'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', maxLength: 120 },
    model_id: { type: 'string', maxLength: 64 },
    firmware_id: { type: 'string', maxLength: 64 },
    target: targetSchema,
    stages: stagesSchema,
    thresholds: thresholdsSchema,
    offline: { type: 'string', enum: ['skip', 'queue'] },
    queue_expiry_sec: { type: 'integer', minimum: 60 },
    window_sec: { type: 'integer', minimum: 1 },
    error_report_threshold: {
      type: 'integer',
      minimum: 1,
      maximum: MAX_ERROR_REPORT_THRESHOLD,
      description: `error_reports a downloading device may send before its execution fails (default ${DEFAULT_ERROR_REPORT_THRESHOLD}: one report while firmware retries is not proof of a bad image)`,
    },
    maintenance_window: windowSchema,
  },
} as const;
const statusQuery = {
  type: 'object',
  properties: { status: { type: 'string', enum: ['running', 'paused', 'cancelled', 'completed'] } },
} as const;
const vendorParams = {
  type: 'object',
  required: ['vendorId'],
  properties: { vendorId: { type: 'string', maxLength: 64 } },
} as const;
const orgParams = { type: 'object', required: ['orgId'], properties: { orgId: { type: 'string', maxLength: 64 } } } as const;
const one = { 200: { type: 'object', required: ['campaign'], properties: { campaign: campaignView } } } as const;
const idParams = {
  type: 'object',
  required: ['campaignId'],
  properties: { campaignId: { type: 'string', maxLength: 64 } },
} as const;

/** Staged firmware campaigns (issue 14; docs/ota.md): the vendor's people with the firmware capability run them. */
export function campaignsRoutes(s: Services) {
  return async function campaigns(app: FastifyInstance) {
    app.post<{ Params: { vendorId: string }; Body: CreateCampaignInput }>(
      '/api/v1/vendors/:vendorId/campaigns',
      {
        schema: {
          tags: TAGS,
          summary: "Start a staged firmware campaign over a model's devices (canary, then growing rates; abort criteria)",
          body: createBody,
          response: { 201: one[200] },
        },
      },
      async (req, reply) =>
        reply.status(201).send({ campaign: await s.campaigns.create(principalOf(req), req.params.vendorId, req.body) }),
    );

    app.get<{ Params: { vendorId: string }; Querystring: { status?: CampaignStatus } }>(
      '/api/v1/vendors/:vendorId/campaigns',
      {
        schema: {
          tags: TAGS,
          summary: "A vendor's firmware campaigns (its organisations' too), newest first, with counts by execution state",
          querystring: statusQuery,
          response: {
            200: { type: 'object', required: ['campaigns'], properties: { campaigns: { type: 'array', items: campaignView } } },
          },
        },
      },
      async (req) => ({ campaigns: await s.campaigns.list(principalOf(req), req.params.vendorId, req.query) }),
    );

    // Owner targets for the vendor's form: organisations owning the vendor's devices, then one's departments.
    app.get<{ Params: { vendorId: string }; Querystring: { model_id?: string } }>(
      '/api/v1/vendors/:vendorId/campaign-orgs',
      {
        config: { access: 'authenticated' },
        schema: {
          tags: TAGS,
          summary:
            "Organisations owning devices of the vendor's models (of one model with model_id), with their device counts: a campaign's owner targets",
          params: vendorParams,
          querystring: { type: 'object', properties: { model_id: { type: 'string', maxLength: 64 } } },
          response: {
            200: {
              type: 'object',
              required: ['organisations'],
              properties: {
                organisations: {
                  type: 'array',
                  items: {
                    type: 'object',
                    required: ['id', 'name', 'devices'],
                    properties: { id: { type: 'string' }, name: { type: 'string' }, devices: int },
                  },
                },
              },
            },
          },
        },
      },
      async (req) => ({
        organisations: await s.campaigns.targets.orgs(principalOf(req), req.params.vendorId, req.query.model_id),
      }),
    );

    app.get<{ Params: { vendorId: string; orgId: string } }>(
      '/api/v1/vendors/:vendorId/campaign-orgs/:orgId/departments',
      {
        config: { access: 'authenticated' },
        schema: {
          tags: TAGS,
          summary:
            "The departments of an organisation owning the vendor's devices, for a campaign's department target (ORG_NOT_FOUND for any other)",
          params: {
            type: 'object',
            required: ['vendorId', 'orgId'],
            properties: { vendorId: { type: 'string', maxLength: 64 }, orgId: { type: 'string', maxLength: 64 } },
          },
          response: {
            200: {
              type: 'object',
              required: ['departments'],
              properties: {
                departments: {
                  type: 'array',
                  items: {
                    type: 'object',
                    required: ['id', 'parent_id', 'name'],
                    properties: { id: { type: 'string' }, parent_id: { type: ['string', 'null'] }, name: { type: 'string' } },
                  },
                },
              },
            },
          },
        },
      },
      async (req) => ({
        departments: await s.campaigns.targets.departments(principalOf(req), req.params.vendorId, req.params.orgId),
      }),
    );

    // An organisation's own campaigns (admins; a device admin's reach only their range; the model's vendor must allow it).
    app.post<{ Params: { orgId: string }; Body: CreateCampaignInput }>(
      '/api/v1/orgs/:orgId/campaigns',
      {
        schema: {
          tags: TAGS,
          summary:
            "Start a firmware campaign over the organisation's own devices of a model whose vendor allows it (admins; a device admin's covers only the devices in their range)",
          params: orgParams,
          body: createBody,
          response: { 201: one[200] },
        },
      },
      async (req, reply) =>
        reply.status(201).send({ campaign: await s.campaigns.createForOrg(principalOf(req), req.params.orgId, req.body) }),
    );

    app.get<{ Params: { orgId: string }; Querystring: { status?: CampaignStatus } }>(
      '/api/v1/orgs/:orgId/campaigns',
      {
        schema: {
          tags: TAGS,
          summary:
            "An organisation's firmware campaigns, newest first, with counts by execution state (super admins: all; a device admin: their own)",
          params: orgParams,
          querystring: statusQuery,
          response: {
            200: { type: 'object', required: ['campaigns'], properties: { campaigns: { type: 'array', items: campaignView } } },
          },
        },
      },
      async (req) => ({ campaigns: await s.campaigns.listForOrg(principalOf(req), req.params.orgId, req.query) }),
    );

    app.get<{ Params: { orgId: string } }>(
      '/api/v1/orgs/:orgId/campaign-models',
      {
        schema: {
          tags: TAGS,
          summary:
            "Models the organisation may run campaigns on (it owns devices of them, their vendor allows it), with their published images; a device admin's counts are of their range",
          params: orgParams,
          response: {
            200: {
              type: 'object',
              required: ['models'],
              properties: {
                models: {
                  type: 'array',
                  items: {
                    type: 'object',
                    required: ['model_id', 'name', 'vendor_name', 'devices', 'firmware'],
                    properties: {
                      model_id: { type: 'string' },
                      name: { type: 'string' },
                      vendor_name: { type: 'string' },
                      devices: int,
                      firmware: {
                        type: 'array',
                        items: {
                          type: 'object',
                          required: ['id', 'version', 'is_current'],
                          properties: { id: { type: 'string' }, version: { type: 'string' }, is_current: { type: 'boolean' } },
                        },
                      },
                    },
                  },
                },
              },
            },
          },
        },
      },
      async (req) => ({ models: await s.campaigns.orgOptions(principalOf(req), req.params.orgId) }),
    );

    app.get<{ Params: { campaignId: string } }>(
      '/api/v1/campaigns/:campaignId',
      {
        schema: {
          tags: TAGS,
          summary: 'A campaign: settings, stage, rate, counts by state and why it paused',
          params: idParams,
          response: one,
        },
      },
      async (req) => ({ campaign: await s.campaigns.get(principalOf(req), req.params.campaignId) }),
    );

    app.get<{ Params: { campaignId: string } }>(
      '/api/v1/campaigns/:campaignId/samples',
      {
        schema: {
          tags: TAGS,
          summary: "A campaign's counts by execution state over time (its progress chart)",
          params: idParams,
          response: {
            200: {
              type: 'object',
              required: ['samples'],
              properties: {
                samples: {
                  type: 'array',
                  items: {
                    type: 'object',
                    required: ['at', 'counts'],
                    properties: { at: { type: 'string' }, counts: countsSchema },
                  },
                },
              },
            },
          },
        },
      },
      async (req) => ({ samples: await s.campaigns.samples(principalOf(req), req.params.campaignId) }),
    );

    app.get<{ Params: { campaignId: string }; Querystring: { state?: ExecState; after?: number; limit?: number } }>(
      '/api/v1/campaigns/:campaignId/executions',
      {
        schema: {
          tags: TAGS,
          summary:
            "A campaign's per-device executions in dispatch order, a page at a time (next_after); a device admin sees only the devices in their range",
          params: idParams,
          querystring: {
            type: 'object',
            properties: {
              state: { type: 'string', enum: [...EXEC_STATES] },
              after: { type: 'integer', minimum: -1 },
              limit: { type: 'integer', minimum: 1, maximum: 500 },
            },
          },
          response: {
            200: {
              type: 'object',
              required: ['executions', 'next_after'],
              properties: { executions: { type: 'array', items: executionView }, next_after: { type: ['integer', 'null'] } },
            },
          },
        },
      },
      async (req) => s.campaigns.executions(principalOf(req), req.params.campaignId, req.query),
    );

    app.get<{ Params: { sn: string } }>(
      '/api/v1/devices/:sn/campaigns',
      {
        schema: {
          tags: TAGS,
          summary: "A device's firmware campaign executions, most recent first (the device page)",
          params: { type: 'object', required: ['sn'], properties: { sn: { type: 'string', maxLength: 128 } } },
          response: {
            200: {
              type: 'object',
              required: ['executions'],
              properties: { executions: { type: 'array', items: executionView } },
            },
          },
        },
      },
      async (req) => ({ executions: await s.campaigns.forDevice(principalOf(req), req.params.sn) }),
    );

    const actions = [
      ['pause', 'Pause a running campaign by hand (devices already told carry on and are still recorded)'],
      ['resume', 'Resume a paused campaign; abort criteria count again from now'],
      ['cancel', 'Cancel a campaign for good; devices not yet told are cancelled'],
      ['retry', 'Queue the failed and timed-out executions again'],
    ] as const;
    for (const [action, summary] of actions) {
      app.post<{ Params: { campaignId: string } }>(
        `/api/v1/campaigns/:campaignId/${action}`,
        { schema: { tags: TAGS, summary, params: idParams, response: one } },
        async (req) => {
          const actor = principalOf(req);
          const id = req.params.campaignId;
          const c =
            action === 'pause'
              ? await s.campaigns.pause(actor, id)
              : action === 'resume'
                ? await s.campaigns.resume(actor, id)
                : action === 'cancel'
                  ? await s.campaigns.cancel(actor, id)
                  : await s.campaigns.retryFailed(actor, id);
          return { campaign: c };
        },
      );
    }
  };
}
