import type { FastifyInstance } from 'fastify';
import { AppError } from '../../errors.js';
import { principalOf } from '../../http/auth.js';
import type { Services } from '../../services.js';
import { KEY_MODES } from './merchant.service.js';

const mchidParam = { type: 'object', properties: { mchid: { type: 'string' } } } as const;
const shortname = { type: 'string', minLength: 1, maxLength: 64 } as const;

/**
 * Managing merchants, sub-merchants, API keys, key modes and inspections (Bindery's own /api/v1).
 * Operators manage every merchant; a merchant organisation's super admins their own mchid
 * (MerchantService.managed, docs/merchant.md).
 */
export function merchantAdminRoutes(s: Services) {
  return async function merchantAdmin(app: FastifyInstance) {
    // Inspection imports arrive as csv text; the parser lives in this plugin only.
    app.addContentTypeParser('text/csv', { parseAs: 'string', bodyLimit: 32 * 1024 * 1024 }, (_req, body, done) =>
      done(null, body),
    );

    app.post<{ Body: { org_id?: string; name?: string; mchid: string; merchant_shortname: string; key_mode?: string } }>(
      '/api/v1/merchants',
      {
        schema: {
          tags: ['merchants'],
          summary: 'Make an organisation a merchant (org_id), or create one (name) (operators)',
          body: {
            type: 'object',
            required: ['mchid', 'merchant_shortname'],
            properties: {
              org_id: { type: 'string' },
              name: { type: 'string', minLength: 1, maxLength: 128 },
              mchid: { type: 'string' },
              merchant_shortname: shortname,
              key_mode: { type: 'string', enum: [...KEY_MODES] },
            },
          },
        },
      },
      async (req, reply) => reply.status(201).send({ merchant: await s.merchant.createMerchant(principalOf(req), req.body) }),
    );

    app.get('/api/v1/merchants', { schema: { tags: ['merchants'], summary: 'List merchants (operators)' } }, async (req) => ({
      merchants: await s.merchant.list(principalOf(req)),
    }));

    app.get<{ Querystring: { format?: 'json' | 'pem' } }>(
      '/api/v1/merchants/platform-key',
      {
        schema: {
          tags: ['merchants'],
          summary: "The platform's public key (PUB_KEY_ID_…) and certificate that merchant clients verify replies with",
          querystring: { type: 'object', properties: { format: { type: 'string', enum: ['json', 'pem'] } } },
        },
      },
      async (req, reply) => {
        const k = await s.merchant.platformKey(principalOf(req));
        if (req.query.format === 'pem') {
          return reply
            .header('content-type', 'application/x-pem-file')
            .header('content-disposition', `attachment; filename="${k.pub_key_id}.pem"`)
            .send(k.public_key_pem);
        }
        return { platform_key: k };
      },
    );

    app.get<{ Params: { mchid: string } }>(
      '/api/v1/merchants/:mchid',
      {
        schema: {
          tags: ['merchants'],
          summary: "One merchant with its sub-merchants and keys (operators; the merchant organisation's super admins)",
          params: mchidParam,
        },
      },
      async (req) => ({ merchant: await s.merchant.get(principalOf(req), req.params.mchid) }),
    );

    app.get<{ Params: { orgId: string } }>(
      '/api/v1/orgs/:orgId/merchant',
      {
        schema: {
          tags: ['merchants'],
          summary: 'The merchant an organisation is, if it is one (operators; its super admins)',
          params: { type: 'object', properties: { orgId: { type: 'string' } } },
        },
      },
      async (req) => ({ merchant: await s.merchant.forOrg(principalOf(req), req.params.orgId) }),
    );

    app.patch<{ Params: { mchid: string }; Body: { merchant_shortname?: string; key_mode?: string } }>(
      '/api/v1/merchants/:mchid',
      {
        schema: {
          tags: ['merchants'],
          summary: "Change a merchant's key mode (public_key | platform_certificate) or, operators only, its short name",
          params: mchidParam,
          body: {
            type: 'object',
            properties: { merchant_shortname: shortname, key_mode: { type: 'string', enum: [...KEY_MODES] } },
          },
        },
      },
      async (req) => ({ merchant: await s.merchant.update(principalOf(req), req.params.mchid, req.body ?? {}) }),
    );

    app.put<{ Params: { mchid: string }; Body: { apiv3_key?: string } }>(
      '/api/v1/merchants/:mchid/apiv3-key',
      {
        schema: {
          tags: ['merchants'],
          summary: "Set the merchant's APIv3 key (32 bytes); without one, a key is generated and shown once",
          params: mchidParam,
          body: { type: 'object', properties: { apiv3_key: { type: 'string' } } },
        },
      },
      async (req) => s.merchant.setApiV3Key(principalOf(req), req.params.mchid, req.body?.apiv3_key),
    );

    app.post<{
      Params: { mchid: string };
      Body: { org_id?: string; name?: string; sub_mchid: string; sub_merchant_shortname: string };
    }>(
      '/api/v1/merchants/:mchid/sub-merchants',
      {
        schema: {
          tags: ['merchants'],
          summary: 'Attach an organisation (org_id) or a new child organisation (name) as a sub-merchant',
          params: mchidParam,
          body: {
            type: 'object',
            required: ['sub_mchid', 'sub_merchant_shortname'],
            properties: {
              org_id: { type: 'string' },
              name: { type: 'string', minLength: 1, maxLength: 128 },
              sub_mchid: { type: 'string' },
              sub_merchant_shortname: shortname,
            },
          },
        },
      },
      async (req, reply) =>
        reply.status(201).send({ merchant: await s.merchant.addSubMerchant(principalOf(req), req.params.mchid, req.body) }),
    );

    app.patch<{ Params: { mchid: string; subMchid: string }; Body: { sub_merchant_shortname: string } }>(
      '/api/v1/merchants/:mchid/sub-merchants/:subMchid',
      {
        schema: {
          tags: ['merchants'],
          summary: "Change a sub-merchant's short name",
          body: { type: 'object', required: ['sub_merchant_shortname'], properties: { sub_merchant_shortname: shortname } },
        },
      },
      async (req) => ({
        merchant: await s.merchant.updateSubMerchant(principalOf(req), req.params.mchid, req.params.subMchid, req.body),
      }),
    );

    app.delete<{ Params: { mchid: string; subMchid: string } }>(
      '/api/v1/merchants/:mchid/sub-merchants/:subMchid',
      { schema: { tags: ['merchants'], summary: "Detach a sub-merchant; its devices leave the merchant's list" } },
      async (req, reply) => {
        await s.merchant.removeSubMerchant(principalOf(req), req.params.mchid, req.params.subMchid);
        return reply.status(204).send();
      },
    );

    app.post<{
      Params: { mchid: string };
      Body: { certificate_pem?: string; public_key_pem?: string; serial_no?: string; name?: string };
    }>(
      '/api/v1/merchants/:mchid/keys',
      {
        schema: {
          tags: ['merchants'],
          summary: 'Register a merchant API key: its certificate PEM, or a public key PEM with serial_no',
          params: mchidParam,
          body: {
            type: 'object',
            properties: {
              certificate_pem: { type: 'string', maxLength: 16384 },
              public_key_pem: { type: 'string', maxLength: 16384 },
              serial_no: { type: 'string', maxLength: 64 },
              name: { type: 'string', maxLength: 128 },
            },
          },
        },
      },
      async (req, reply) =>
        reply.status(201).send({ key: await s.merchant.addKey(principalOf(req), req.params.mchid, req.body) }),
    );

    app.get<{ Params: { mchid: string }; Querystring: { include_revoked?: boolean } }>(
      '/api/v1/merchants/:mchid/keys',
      {
        schema: {
          tags: ['merchants'],
          summary: "A merchant's API keys",
          params: mchidParam,
          querystring: { type: 'object', properties: { include_revoked: { type: 'boolean' } } },
        },
      },
      async (req) => ({
        keys: await s.merchant.listKeys(principalOf(req), req.params.mchid, req.query.include_revoked === true),
      }),
    );

    app.delete<{ Params: { mchid: string; serialNo: string } }>(
      '/api/v1/merchants/:mchid/keys/:serialNo',
      { schema: { tags: ['merchants'], summary: 'Revoke a merchant API key by serial_no (any case)' } },
      async (req, reply) => {
        await s.merchant.revokeKey(principalOf(req), req.params.mchid, req.params.serialNo);
        return reply.status(204).send();
      },
    );

    app.post<{ Params: { mchid: string } }>(
      '/api/v1/merchants/:mchid/fleet/reindex',
      {
        schema: {
          tags: ['merchants'],
          summary: "Rebuild the merchant's device order from ownership (repairs drift; positions are kept)",
          params: mchidParam,
        },
      },
      async (req) => s.merchant.reindexFleet(principalOf(req), req.params.mchid),
    );

    app.post<{ Params: { mchid: string }; Body: string }>(
      '/api/v1/merchants/:mchid/inspections/import',
      {
        bodyLimit: 32 * 1024 * 1024,
        schema: {
          tags: ['merchants'],
          summary: "Import inspection records from csv for devices in the merchant's list (all-or-nothing; errors by line)",
          description: "The columns of POST /api/v1/inspections/import. Operators and the merchant organisation's super admins.",
          params: mchidParam,
        },
      },
      async (req) => {
        if (typeof req.body !== 'string') throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'Send the csv as text/csv');
        return s.inspections.importCsvForMerchant(principalOf(req), req.params.mchid, req.body);
      },
    );

    app.post<{ Body: { records: unknown[] } }>(
      '/api/v1/inspections',
      {
        schema: {
          tags: ['inspections'],
          summary: 'Import factory inspection records (JSON; all-or-nothing; errors by index)',
          body: { type: 'object', required: ['records'], properties: { records: { type: 'array' } } },
        },
      },
      async (req) => s.inspections.importRecords(principalOf(req), req.body.records),
    );

    app.post<{ Body: string }>(
      '/api/v1/inspections/import',
      {
        bodyLimit: 32 * 1024 * 1024,
        schema: {
          tags: ['inspections'],
          summary: 'Import factory inspection records from csv (all-or-nothing; errors by line)',
          description:
            'Columns: device_sn, wired_mac, wireless_mac, bluetooth_mac, app_version, camera_sn, imei, result, errors, warnings, inspect_time; errors/warnings are |-separated.',
        },
      },
      async (req) => {
        if (typeof req.body !== 'string') throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'Send the csv as text/csv');
        return s.inspections.importCsv(principalOf(req), req.body);
      },
    );

    app.get<{ Params: { sn: string } }>(
      '/api/v1/inspections/:sn',
      { schema: { tags: ['inspections'], summary: "A device's factory inspection record (its vendor or an operator)" } },
      async (req) => ({ inspection: await s.inspections.get(principalOf(req), req.params.sn) }),
    );
  };
}
