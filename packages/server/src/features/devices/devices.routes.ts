import { snKey } from '@bindery/protocol';
import type { FastifyInstance } from 'fastify';
import { principalOf } from '../../http/auth.js';
import type { Services } from '../../services.js';
import { DEVICE_STATES, type DeviceState } from './device-state.js';
import type { OwnerKind } from './devices.repo.js';
import type { DeviceAttributes } from './devices.service.js';
import { MAX_BULK_SNS } from './fleet.js';

const attrProps = {
  camera_sn: { type: 'string', maxLength: 64 },
  app_scene_code: { type: 'string' },
  operating_system: { type: 'string' },
} as const;

const str = { type: 'string' } as const;
const strOrNull = { type: 'string', nullable: true } as const;
/** A device as the vendor's routes answer it (DeviceView). */
const deviceSchema = {
  type: 'object',
  required: ['sn', 'model_id', 'vendor_id', 'hw_code', 'qr_code', 'label_content', 'state', 'registered_at', 'online', 'bound'],
  properties: {
    sn: str,
    model_id: str,
    vendor_id: str,
    batch_id: strOrNull,
    hw_code: str,
    qr_code: str,
    label_content: str,
    state: { type: 'string', enum: [...DEVICE_STATES] },
    registered_at: str,
    camera_sn: strOrNull,
    app_scene_code: strOrNull,
    operating_system: strOrNull,
    device_key: strOrNull,
    device_name: strOrNull,
    cert_fingerprint: strOrNull,
    paired_at: strOrNull,
    activated_at: strOrNull,
    online: { type: 'boolean' },
    last_seen_at: strOrNull,
    firmware_version: strOrNull,
    bound: { type: 'boolean' },
    owner_type: strOrNull,
    remark_name: strOrNull,
  },
} as const;

/** The fleet list's filters, shared by the list and its spreadsheet. */
const fleetFilters = {
  model_id: str,
  batch_id: str,
  q: { type: 'string', maxLength: 128, description: 'SN or device key (IMEI/MAC) prefix, or a hw_code / label URL' },
  state: { type: 'string', enum: [...DEVICE_STATES] },
  online: { type: 'boolean' },
  owner_kind: { type: 'string', enum: ['none', 'user', 'org'] },
  firmware_version: { type: 'string', maxLength: 64 },
} as const;

interface FleetQuery {
  model_id?: string;
  batch_id?: string;
  q?: string;
  state?: DeviceState;
  online?: boolean;
  owner_kind?: OwnerKind;
  firmware_version?: string;
}

const filtersOf = (q: FleetQuery) => ({
  modelId: q.model_id,
  batchId: q.batch_id,
  search: q.q,
  state: q.state,
  online: q.online,
  ownerKind: q.owner_kind,
  firmwareVersion: q.firmware_version,
});

export function devicesRoutes(s: Services) {
  return async function devices(app: FastifyInstance) {
    app.post<{ Params: { modelId: string }; Body: { sn: string } & DeviceAttributes }>(
      '/api/v1/models/:modelId/devices',
      {
        schema: {
          tags: ['devices'],
          summary: 'Register one SN under a model; returns its SecretNo for flashing',
          body: { type: 'object', required: ['sn'], properties: { sn: { type: 'string' }, ...attrProps } },
        },
      },
      async (req, reply) => {
        const { sn, ...attrs } = req.body;
        return reply.status(201).send(await s.devices.register(principalOf(req), req.params.modelId, sn, attrs));
      },
    );

    app.post<{ Params: { modelId: string }; Body: { sns: string[] } }>(
      '/api/v1/models/:modelId/devices/bulk',
      {
        schema: {
          tags: ['devices'],
          summary:
            'Register a pasted list of SNs under a model, all or nothing (422 IMPORT_REJECTED lists each bad line: invalid_sn, duplicate_in_list, already_registered)',
          params: { type: 'object', required: ['modelId'], properties: { modelId: str } },
          body: {
            type: 'object',
            required: ['sns'],
            additionalProperties: false,
            properties: {
              sns: { type: 'array', minItems: 1, maxItems: MAX_BULK_SNS, items: { type: 'string', maxLength: 256 } },
            },
          },
          response: {
            201: {
              type: 'object',
              required: ['registered', 'sns'],
              properties: { registered: { type: 'integer' }, sns: { type: 'array', items: str } },
            },
          },
        },
      },
      async (req, reply) =>
        reply.status(201).send(await s.fleet.registerMany(principalOf(req), req.params.modelId, req.body.sns)),
    );

    app.get<{ Params: { vendorId: string }; Querystring: FleetQuery & { cursor?: string; limit?: number } }>(
      '/api/v1/vendors/:vendorId/devices',
      {
        schema: {
          tags: ['devices'],
          summary:
            "List a vendor's devices, ordered by SN and paged by cursor; q searches SN and device key (IMEI/MAC) by prefix, or a hw_code",
          params: { type: 'object', required: ['vendorId'], properties: { vendorId: str } },
          querystring: {
            type: 'object',
            properties: {
              ...fleetFilters,
              cursor: str,
              limit: { type: 'integer', minimum: 1, maximum: 500 },
            },
          },
          response: {
            200: {
              type: 'object',
              required: ['devices', 'next_cursor'],
              properties: { devices: { type: 'array', items: deviceSchema }, next_cursor: strOrNull },
            },
          },
        },
      },
      async (req) =>
        s.devices.list(principalOf(req), {
          vendorId: req.params.vendorId,
          ...filtersOf(req.query),
          cursor: req.query.cursor,
          limit: req.query.limit,
        }),
    );

    app.get<{ Params: { vendorId: string }; Querystring: FleetQuery & { format?: 'csv' | 'xlsx'; sns?: string } }>(
      '/api/v1/vendors/:vendorId/devices/qr-sheet',
      {
        schema: {
          tags: ['devices'],
          summary:
            'The static-QR spreadsheet (csv or xlsx) of a selection: sns (comma-separated) or the list filters; SN, model, PK, hw_code, static QR URL, label content, verification code',
          params: { type: 'object', required: ['vendorId'], properties: { vendorId: str } },
          querystring: {
            type: 'object',
            properties: {
              ...fleetFilters,
              format: { type: 'string', enum: ['csv', 'xlsx'], default: 'csv' },
              sns: { type: 'string', maxLength: 140_000, description: `Up to ${MAX_BULK_SNS} SNs, comma-separated` },
            },
          },
        },
      },
      async (req, reply) => {
        const format = req.query.format ?? 'csv';
        const snKeys = req.query.sns
          ?.split(',')
          .map((x) => x.trim())
          .filter(Boolean)
          .map(snKey);
        const stream = await s.fleet.qrSheet(
          principalOf(req),
          { vendorId: req.params.vendorId, ...filtersOf(req.query), ...(snKeys ? { snKeys } : {}) },
          format,
        );
        return reply
          .header(
            'content-type',
            format === 'csv' ? 'text/csv; charset=utf-8' : 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
          )
          .header('content-disposition', `attachment; filename="devices-qr-${req.params.vendorId}.${format}"`)
          .send(stream);
      },
    );

    app.get<{ Params: { sn: string } }>(
      '/api/v1/devices/:sn',
      { schema: { tags: ['devices'], summary: 'One device by SN (case-insensitive)' } },
      async (req) => ({ device: await s.devices.get(principalOf(req), req.params.sn) }),
    );

    app.get<{ Params: { sn: string } }>(
      '/api/v1/devices/:sn/secret-no',
      { schema: { tags: ['devices'], summary: "A device's SecretNo (audited)" } },
      async (req) => ({ secret_no: await s.devices.secretNo(principalOf(req), req.params.sn) }),
    );

    app.delete<{ Params: { sn: string } }>(
      '/api/v1/devices/:sn',
      { schema: { tags: ['devices'], summary: 'Unregister an SN that is not bound' } },
      async (req, reply) => {
        await s.devices.unregister(principalOf(req), req.params.sn);
        return reply.status(204).send();
      },
    );
  };
}
